// The passkey harness, checked on its own: headless Chromium with a DevTools virtual
// authenticator (scripts/virtual-authenticator.mjs) runs the page code of src/webauthn.ts on
// http://localhost:APP_PORT with options shaped as the server's (webauthn-rs's, with a
// resident key required), and the JSON that comes back is what the server reads. No server
// is involved: this proves the browser half, the passkey checks of the server come on top.
//
//   APP_PORT  the page's port (default: any free one)
//   CHROMIUM  the browser (default /usr/bin/chromium)
//   CAPTURE   a file to write the options and the browser's answers to, as JSON: the fixture
//             of the server's test that Chromium's credentials verify
//             (src/infrastructure/security/webauthn/chromium.json)
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { addVirtualAuthenticator, base64url } from "./virtual-authenticator.mjs";

const failures = [];
const check = (condition, what, detail) => {
  if (condition) console.log(`ok - ${what}`);
  else
    failures.push(detail === undefined ? what : `${what}: ${JSON.stringify(detail).slice(0, 600)}`);
};
setTimeout(() => {
  console.log(["timed out after 60 s", ...failures].join("\n"));
  process.exit(1);
}, 60_000).unref();

const root = fileURLToPath(new URL("..", import.meta.url));
const page = `<!doctype html>
<meta charset="utf-8">
<title>passkeys</title>
<input name="username" autocomplete="username webauthn">
<script type="module">
  import * as webauthn from "/dist/src/webauthn.js";
  const call = (f) =>
    f().then(
      (ok) => ({ ok }),
      (error) => ({ error: error.name ?? String(error), message: error.message }),
    );
  window.passkeys = {
    supported: () => webauthn.passkeysSupported(),
    conditional: () => webauthn.conditionalUiAvailable(),
    create: (options) => call(() => webauthn.createPasskey(options)),
    get: (options, mediation) => call(() => webauthn.getPasskey(options, { mediation })),
  };
</script>`;
const server = createServer(async (request, response) => {
  const path = new URL(request.url, "http://localhost").pathname;
  if (path === "/") {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    return response.end(page);
  }
  const file = resolve(root, "." + path);
  if (path.startsWith("/dist/") && file.startsWith(root)) {
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      return response.end(body);
    } catch {}
  }
  response.writeHead(404);
  response.end();
});
await new Promise((done, fail) =>
  server.once("error", fail).listen(Number(process.env.APP_PORT ?? 0), "127.0.0.1", done),
);
const origin = `http://localhost:${server.address().port}`;

const challenge = () => base64url(randomBytes(32).toString("base64"));
const userId = base64url(randomBytes(16).toString("base64"));
const fromB64url = (text) => Buffer.from(text, "base64url");
const clientData = (credential) =>
  JSON.parse(fromB64url(credential.response.clientDataJSON).toString("utf8"));
// authenticatorData: rpIdHash (32), flags (1), signCount (4, big-endian), …
const flags = (credential) => fromB64url(credential.response.authenticatorData)[32];
const signCount = (credential) => fromB64url(credential.response.authenticatorData).readUInt32BE(33);

// What the server's startPasskeyRegistration answers (webauthn-rs 0.6 passkey registration
// with the resident key raised to required), for the RP id localhost.
const creationOptions = (exclude = []) => ({
  rp: { id: "localhost", name: "authgraph" },
  user: { id: userId, name: "ada@example.com", displayName: "Ada" },
  challenge: challenge(),
  pubKeyCredParams: [
    { type: "public-key", alg: -7 },
    { type: "public-key", alg: -257 },
  ],
  timeout: 300000,
  attestation: "none",
  excludeCredentials: exclude.map((id) => ({ type: "public-key", id })),
  authenticatorSelection: {
    residentKey: "required",
    requireResidentKey: true,
    userVerification: "required",
  },
  extensions: {
    credentialProtectionPolicy: "userVerificationRequired",
    enforceCredentialProtectionPolicy: false,
    uvm: true,
    credProps: true,
  },
});
// What startPasskeySignIn answers (discoverable: no credential named).
const requestOptions = (allow = []) => ({
  challenge: challenge(),
  timeout: 300000,
  rpId: "localhost",
  allowCredentials: allow.map((id) => ({ type: "public-key", id })),
  userVerification: "required",
  extensions: { uvm: true },
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
});
try {
  const tab = await browser.newPage();
  tab.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  await tab.goto(origin);
  await tab.waitForFunction(() => window.passkeys !== undefined, null, { timeout: 10_000 });
  const authenticator = await addVirtualAuthenticator(tab);
  const run = (name, options, mediation) =>
    tab.evaluate(([n, o, m]) => window.passkeys[n](o, m), [name, options, mediation]);

  check(await tab.evaluate(() => window.passkeys.supported()), "http://localhost is a secure context with WebAuthn");
  console.log(`# conditional mediation available: ${await tab.evaluate(() => window.passkeys.conditional())}`);

  // Enrolment.
  const registration = creationOptions();
  const created = await run("create", registration);
  const credential = created.ok;
  check(credential?.type === "public-key" && credential.id === credential.rawId, "a passkey is created", created);
  check(
    typeof credential?.response?.attestationObject === "string" &&
      typeof credential.response.clientDataJSON === "string",
    "its JSON carries the attestation object and the client data, base64url",
    credential,
  );
  const created_data = credential && clientData(credential);
  check(
    created_data?.type === "webauthn.create" &&
      created_data.challenge === registration.challenge &&
      created_data.origin === origin,
    "the client data names the ceremony, its challenge and the page's origin",
    created_data,
  );
  check(
    credential?.clientExtensionResults?.credProps?.rk === true,
    "the browser reports a discoverable credential (credProps.rk)",
    credential?.clientExtensionResults,
  );
  const held = await authenticator.credentials();
  check(
    held.length === 1 &&
      held[0].isResidentCredential === true &&
      held[0].rpId === "localhost" &&
      base64url(held[0].userHandle) === userId &&
      base64url(held[0].credentialId) === credential?.id,
    "the authenticator keeps it as a resident key with the user handle",
    held,
  );

  const again = await run("create", creationOptions([credential?.id]));
  check(again.error === "InvalidStateError", "a second passkey on the same authenticator is excluded", again);

  // Signing in with no credential named: the resident key answers with its user handle.
  const signIn = requestOptions();
  const got = await run("get", signIn);
  const assertion = got.ok;
  check(assertion?.id === credential?.id, "a discoverable sign-in is answered by the passkey", got);
  check(assertion?.response?.userHandle === userId, "with the user handle", assertion?.response);
  const got_data = assertion && clientData(assertion);
  check(
    got_data?.type === "webauthn.get" && got_data.challenge === signIn.challenge && got_data.origin === origin,
    "its client data names the sign-in's challenge and origin",
    got_data,
  );
  check(assertion && (flags(assertion) & 0b101) === 0b101, "user present and verified (flags)", assertion && flags(assertion));
  const firstCount = assertion ? signCount(assertion) : undefined;
  const second = (await run("get", requestOptions([credential?.id]))).ok;
  check(
    second && firstCount !== undefined && signCount(second) > firstCount,
    "the signature counter moves forward with each use",
    [firstCount, second && signCount(second)],
  );
  console.log(`# counters: ${held[0]?.signCount} at creation, then ${firstCount}, ${second && signCount(second)}`);

  // Conditional mediation (the passkey offered in the username field's autofill): the
  // virtual authenticator, present and verifying, picks it at once.
  const autofill = await run("get", requestOptions(), "conditional");
  check(
    autofill.ok?.id === credential?.id && autofill.ok.response.userHandle === userId,
    "a sign-in by autofill (conditional mediation) is answered by the passkey",
    autofill,
  );

  // The user fails verification: the browser refuses to answer a ceremony that requires it.
  await authenticator.setUserVerified(false);
  const unverifiedGet = await run("get", requestOptions());
  check(unverifiedGet.error === "NotAllowedError", "no sign-in when the user is not verified", unverifiedGet);
  await authenticator.clear();
  const unverifiedCreate = await run("create", creationOptions());
  check(unverifiedCreate.error === "NotAllowedError", "no enrolment when the user is not verified", unverifiedCreate);
  if (process.env.CAPTURE) {
    const capture = {
      origin,
      userId,
      registration: { options: registration, credential },
      signIn: { options: signIn, credential: assertion },
    };
    await writeFile(process.env.CAPTURE, JSON.stringify(capture, null, 2) + "\n");
  }
  await authenticator.remove();
} finally {
  await browser.close();
  server.close();
}

if (failures.length > 0) {
  console.log(failures.map((f) => `not ok - ${f}`).join("\n"));
  process.exit(1);
}
console.log("passkey harness: all checks passed");
