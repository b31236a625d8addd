// A small authgraph client on urql: keeps the tokens, sends the access token, and on
// UNAUTHENTICATED refreshes once and retries — the pattern the README recommends.
import { Client, fetchExchange, type AnyVariables, type TypedDocumentNode } from "@urql/core";

import type { TokenFieldsFragment } from "./gql/graphql.js";
import { Login, RefreshToken, Register } from "./operations.js";

export type Tokens = { accessToken: string; refreshToken: string };

export class AuthgraphError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export class Authgraph {
  tokens: Tokens | null = null;
  private readonly client: Client;

  constructor(url: string) {
    this.client = new Client({
      url,
      exchanges: [fetchExchange],
      requestPolicy: "network-only",
      fetchOptions: () =>
        this.tokens ? { headers: { authorization: `Bearer ${this.tokens.accessToken}` } } : {},
    });
  }

  /** Runs an operation; throws an AuthgraphError carrying `extensions.code`. */
  async run<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
    retry = true,
  ): Promise<Data> {
    const definition = document.definitions.find((d) => d.kind === "OperationDefinition");
    const isMutation = definition?.kind === "OperationDefinition" && definition.operation === "mutation";
    const result = await (
      isMutation ? this.client.mutation(document, variables) : this.client.query(document, variables)
    ).toPromise();
    const error = result.error?.graphQLErrors[0];
    if (error) {
      const code = error.extensions["code"] as string | undefined;
      if (code === "UNAUTHENTICATED" && retry && this.tokens && (await this.refresh())) {
        return this.run(document, variables, false);
      }
      throw new AuthgraphError(error.message, code);
    }
    if (result.error) throw new AuthgraphError(result.error.message, undefined);
    if (!result.data) throw new AuthgraphError("no data", undefined);
    return result.data;
  }

  async register(email: string, password: string, displayName?: string) {
    const data = await this.run(Register, { input: { email, password, displayName } });
    return this.keep(data.register);
  }

  async login(email: string, password: string) {
    const data = await this.run(Login, { input: { email, password } });
    return this.keep(data.login);
  }

  /** Exchanges the refresh token; false when the session has ended. */
  async refresh(): Promise<boolean> {
    if (!this.tokens) return false;
    const result = await this.client
      .mutation(RefreshToken, { input: { refreshToken: this.tokens.refreshToken } })
      .toPromise();
    if (!result.data) {
      this.tokens = null;
      return false;
    }
    this.keep(result.data.refreshToken);
    return true;
  }

  private keep(payload: TokenFieldsFragment) {
    this.tokens = { accessToken: payload.accessToken, refreshToken: payload.refreshToken };
    return payload;
  }
}
