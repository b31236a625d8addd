import type { CodegenConfig } from "@graphql-codegen/cli";

// Types and typed documents for every operation in src/, from the server's published schema.
const config: CodegenConfig = {
  schema: "../../schema.graphql",
  // Imports with `.js` extensions, as Node's ES modules need.
  emitLegacyCommonJSImports: false,
  documents: ["src/**/*.ts", "!src/gql/**"],
  generates: {
    "src/gql/": {
      preset: "client",
      // Fragments spread their fields into the result types directly.
      presetConfig: { fragmentMasking: false },
      config: {
        scalars: { DateTime: "string" },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
