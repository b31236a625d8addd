// Passkeys end to end in headless Chromium, against a real server: the page (src/client.ts and
// src/webauthn.ts compiled to dist/, its packages served from node_modules through an import
// map, as in scripts/cookies.mjs) registers an account with a password, enrols a passkey with
// the browser's own WebAuthn API and a DevTools virtual authenticator
// (scripts/virtual-authenticator.mjs), signs out, signs in with no email typed (a modal
// navigator.credentials.get, then the autofill kind, mediation "conditional"), and steps up
// with the passkey (startPasskeyReauthentication, reauthenticate). Then the attacks: a
// replayed assertion, an assertion for another ceremony, and an authenticator whose user fails
// verification, with the page honest (the browser refuses) and with a page that lowers
// userVerification in the options (the browser answers without UV: the server refuses).
//
//   AUTHGRAPH_URL  the server's /graphql on localhost (default http://localhost:8000/graphql);
//                  the server runs with WEBAUTHN_RP_ID=localhost and
//                  WEBAUTHN_ORIGINS=http://localhost:APP_PORT, and allows that origin in
//                  CORS_ALLOWED_ORIGINS
//   APP_PORT       the page is served at http://localhost:APP_PORT (default 5173); Chromium
//                  refuses http://127.0.0.1 as an RP id
//   CHROMIUM       the browser (default /usr/bin/chromium)
//   SESSION        "cookies" for a server with SESSION_COOKIES=true: the page keeps no token,
//                  and the passkey sign-in and step-up answer in HttpOnly cookies (default:
//                  bearer tokens)
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { addVirtualAuthenticator } from "./virtual-authenticator.mjs";

const api = process.env.AUTHGRAPH_URL ?? "http://localhost:8000/graphql";
const appOrigin = `http://localhost:${process.env.APP_PORT ?? 5173}`;
const password = "correct horse battery staple";
const cookies = process.env.SESSION === "cookies";
const unique = () => `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

const failures = [];
const check = (condition, what, detail) => {
  if (condition) console.log(`ok - ${what}`);
  else
    failures.push(detail === undefined ? what : `${what}: ${JSON.stringify(detail).slice(0, 600)}`);
};
// Generous for a loaded 2-core machine; a server or browser that never answers must not hang
// the test run.
setTimeout(() => {
  console.log(["timed out after 180 s", ...failures.map((f) => `not ok - ${f}`)].join("\n"));
  process.exit(1);
}, 180_000).unref();

const started = Date.now();
const root = fileURLToPath(new URL("..", import.meta.url));
const imports = Object.fromEntries(
  ["@urql/core", "wonka", "@0no-co/graphql.web"].map((name) => [
    name,
    "/" +
      relative(root, fileURLToPath(import.meta.resolve(name)))
        .split(sep)
        .join("/"),
  ]),
);

const page = `<!doctype html>
<meta charset="utf-8">
<title>authgraph passkeys</title>
<script>
  // What a bundler does: urql's ES module reads process.env.NODE_ENV.
  globalThis.process = { env: { NODE_ENV: "production" } };
</script>
<script type="importmap">${JSON.stringify({ imports })}</script>
<form>
  <input name="username" autocomplete="username webauthn">
</form>
<script type="module">
  import { Authgraph } from "/dist/src/client.js";
  import {
    FinishPasskeyRegistration,
    Me,
    MyPasskeys,
    StartPasskeyReauthentication,
    StartPasskeyRegistration,
    StartPasskeySignIn,
  } from "/dist/src/operations.js";
  import * as webauthn from "/dist/src/webauthn.js";

  const api = new Authgraph(${JSON.stringify(api)}, ${JSON.stringify({ session: cookies ? "cookies" : "bearer" })});
  const password = ${JSON.stringify(password)};
  // Each call answers { ok } or the error's name, code, reason and field, for the check to
  // read through page.evaluate.
  const call = (f) =>
    f().then(
      (ok) => ({ ok }),
      (error) => ({
        error: error.name,
        code: error.code,
        reason: error.reason,
        field: error.field,
        message: error.message,
      }),
    );
  // A page that asks the browser for less than the server did: user verification lowered to
  // "discouraged", so an authenticator that cannot verify the user still answers.
  // (Chromium refuses a credential protection policy that needs UV along with it.)
  const lowered = ({ extensions, ...options }) => {
    const { credentialProtectionPolicy, enforceCredentialProtectionPolicy, ...rest } =
      extensions ?? {};
    return {
      ...options,
      extensions: rest,
      userVerification: "discouraged",
      authenticatorSelection: options.authenticatorSelection && {
        ...options.authenticatorSelection,
        userVerification: "discouraged",
      },
    };
  };
  // A step-up with a passkey of the account.
  const stepUp = async (tamper) => {
    const { challengeId, options } = (await api.run(StartPasskeyReauthentication, {}))
      .startPasskeyReauthentication;
    const credential = await webauthn.getPasskey(tamper ? lowered(options) : options);
    const payload = await api.reauthenticateWithPasskey(challengeId, credential);
    return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, options };
  };
  const startRegistration = async () => {
    try {
      return (await api.run(StartPasskeyRegistration, {})).startPasskeyRegistration;
    } catch (error) {
      // The step-up the server asks for when the sign-in is not recent.
      if (error.reason !== "REAUTHENTICATION_REQUIRED") throw error;
      try {
        await api.reauthenticate(password);
        window.steppedUp = "password";
      } catch (refused) {
        // An account whose second factor is a passkey steps up with it.
        if (refused.field !== "passkey") throw refused;
        await stepUp();
        window.steppedUp = "passkey";
      }
      return (await api.run(StartPasskeyRegistration, {})).startPasskeyRegistration;
    }
  };
  const signIn = async (mediation, tamper) => {
    const { challengeId, options } = (await api.run(StartPasskeySignIn, {}, false)).startPasskeySignIn;
    const credential = await webauthn.getPasskey(tamper ? lowered(options) : options, { mediation });
    window.lastAssertion = { challengeId, credential };
    const payload = await api.signInWithPasskey(challengeId, credential);
    return { email: payload.user.email, accessToken: payload.accessToken, options };
  };
  window.app = {
    supported: () => webauthn.passkeysSupported(),
    conditional: () => webauthn.conditionalUiAvailable(),
    register: (email) =>
      call(async () => (await api.register(email, password)).user.email),
    enrol: (name, tamper) =>
      call(async () => {
        const { challengeId, options } = await startRegistration();
        const credential = await webauthn.createPasskey(tamper ? lowered(options) : options);
        const passkey = (
          await api.run(FinishPasskeyRegistration, { input: { challengeId, name, credential } })
        ).finishPasskeyRegistration;
        return { passkey, options, credential };
      }),
    passkeys: () => call(async () => (await api.run(MyPasskeys, {})).me.passkeys),
    me: () => call(async () => (await api.run(Me, {})).me.email),
    logout: () => call(() => api.logout()),
    signedOut: () => api.tokens === null,
    signIn: (mediation, tamper) => call(() => signIn(mediation, tamper)),
    // The last assertion, sent again to the ceremony it answered, or to a new one.
    replay: () =>
      call(async () => {
        const { challengeId, credential } = window.lastAssertion;
        return (await api.signInWithPasskey(challengeId, credential)).user.email;
      }),
    crossCeremony: () =>
      call(async () => {
        const { challengeId } = (await api.run(StartPasskeySignIn, {}, false)).startPasskeySignIn;
        return (await api.signInWithPasskey(challengeId, window.lastAssertion.credential)).user.email;
      }),
    stepUp: (tamper) => call(() => stepUp(tamper)),
    accessToken: () => api.tokens?.accessToken,
  };
  window.ready = true;
</script>`;

const server = createServer(async (request, response) => {
  const path = new URL(request.url, "http://localhost").pathname;
  if (path === "/") {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    return response.end(page);
  }
  const file = resolve(root, "." + path);
  if (/^\/(dist|node_modules)\//.test(path) && file.startsWith(root)) {
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
  server.once("error", fail).listen(Number(new URL(appOrigin).port), "127.0.0.1", done),
);

// The claims of an access token (its signature is the server's business).
const claims = (token) =>
  token ? JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8")) : undefined;
// authenticatorData: rpIdHash (32), flags (1: bit 0 user present, bit 2 user verified), …
const flags = (credential) =>
  Buffer.from(credential.response.authenticatorData ?? "", "base64url")[32];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
});
// A fresh browser profile with its own authenticator, on the page.
// The session's access token: in its cookie with cookie sessions, else as the page keeps it.
// Either way the page's answers must carry none with cookies.
const accessTokenOf = async (tab, fromPage) => {
  if (!cookies) return fromPage;
  check(fromPage == null, "with cookie sessions the page's answer carries no access token", fromPage);
  return (await tab.context().cookies()).find((c) => c.name === "authgraph-access")?.value;
};
const open = async (authenticatorOptions) => {
  const context = await browser.newContext();
  const tab = await context.newPage();
  tab.setDefaultTimeout(60_000);
  tab.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  await tab.goto(appOrigin);
  await tab.waitForFunction(() => window.ready === true);
  const authenticator = await addVirtualAuthenticator(tab, authenticatorOptions);
  const app = (name, ...args) => tab.evaluate(([n, a]) => window.app[n](...a), [name, args]);
  return { context, tab, authenticator, app };
};

try {
  // --- The user's own browser: a platform authenticator that verifies them.
  const { tab, authenticator, app } = await open();
  const email = `passkeys-${unique()}@example.com`;
  check(await app("supported"), "http://localhost is a secure context with WebAuthn");
  const conditional = await app("conditional");
  console.log(`# conditional mediation (autofill) available in headless Chromium: ${conditional}`);

  const registered = await app("register", email);
  check(registered.ok === email, "an account is registered with a password", registered);

  const enrolled = await app("enrol", "Laptop");
  const steppedUp = await tab.evaluate(() => window.steppedUp);
  console.log(`# step-up before the first enrolment: ${steppedUp ?? "not needed (fresh sign-in)"}`);
  check(enrolled.ok?.passkey?.name === "Laptop", "a passkey is enrolled through the page", enrolled);
  const selection = enrolled.ok?.options?.authenticatorSelection;
  check(
    selection?.userVerification === "required" && selection?.residentKey === "required",
    "the server asked for a discoverable, user-verified credential",
    enrolled.ok?.options,
  );
  check(
    enrolled.ok?.options?.rp?.id === "localhost",
    "the options name the RP id localhost",
    enrolled.ok?.options?.rp,
  );
  const held = await authenticator.credentials();
  check(
    held.length === 1 && held[0].isResidentCredential === true && held[0].rpId === "localhost",
    "the authenticator holds it as a resident key for localhost",
    held,
  );
  const listed = await app("passkeys");
  check(
    listed.ok?.length === 1 && listed.ok[0].id === enrolled.ok?.passkey?.id && listed.ok[0].lastUsedAt === null,
    "the account lists the passkey, never used yet",
    listed,
  );

  // A second enrolment: the account's second factor is now the passkey, so the page steps
  // up with it, and the server's options exclude it from the same authenticator.
  const again = await app("enrol", "Laptop again");
  console.log(`# step-up before the second enrolment: ${await tab.evaluate(() => window.steppedUp)}`);
  check(
    again.error === "InvalidStateError",
    "enrolling the same authenticator twice is excluded by the server's options",
    again,
  );

  const out = await app("logout");
  check(out.ok === true && (cookies || (await app("signedOut"))), "signed out", out);
  const meOut = await app("me");
  check(meOut.code === "UNAUTHENTICATED", "signed out means no session", meOut);

  // Sign-in with no email typed: the options name no credential, the passkey names the user.
  const modal = await app("signIn");
  check(modal.ok?.email === email, "a sign-in with no email is answered by the passkey", modal);
  check(
    Array.isArray(modal.ok?.options?.allowCredentials) && modal.ok.options.allowCredentials.length === 0,
    "the sign-in options name no account",
    modal.ok?.options,
  );
  const signedIn = claims(await accessTokenOf(tab, modal.ok?.accessToken));
  check(
    JSON.stringify(signedIn?.amr) === JSON.stringify(["webauthn"]),
    "the session's access token says it was a passkey (amr webauthn)",
    signedIn,
  );
  const meIn = await app("me");
  check(meIn.ok === email, "the session is the account's", meIn);
  const afterSignIn = await app("passkeys");
  check(afterSignIn.ok?.[0]?.lastUsedAt != null, "the passkey's last use is recorded", afterSignIn);

  // Attacks on the sign-in: the same assertion again, and for a new ceremony.
  const replayed = await app("replay");
  check(
    replayed.code === "BAD_USER_INPUT" && replayed.field === "challengeId",
    "a replayed assertion is refused: the ceremony finished",
    replayed,
  );
  const crossed = await app("crossCeremony");
  check(
    crossed.code === "UNAUTHENTICATED",
    "an assertion for another ceremony's challenge is refused",
    crossed,
  );

  // The autofill kind: the browser offers the passkey in the username field.
  if (conditional) {
    await app("logout");
    const autofill = await app("signIn", "conditional");
    check(autofill.ok?.email === email, "a sign-in by autofill (conditional mediation)", autofill);
  } else {
    console.log("# skipped: sign-in by autofill (this Chromium offers no conditional mediation)");
  }

  // Step-up with the passkey: the session's authentication time moves to now.
  const before = claims(await accessTokenOf(tab, await app("accessToken")));
  // auth_time has a resolution of a second: wait out the one the sign-in had.
  await tab.waitForFunction(
    (t) => Date.now() / 1000 >= t + 1.05,
    before?.auth_time ?? 0,
    { polling: 100 },
  );
  const stepUp = await app("stepUp");
  const after = claims(await accessTokenOf(tab, stepUp.ok?.accessToken));
  check(
    stepUp.ok && stepUp.ok.refreshToken === null && after?.auth_time > before?.auth_time,
    "a step-up with the passkey moves the session's authentication time",
    { stepUp, before, after },
  );
  check(
    stepUp.ok?.options?.userVerification === "required" &&
      stepUp.ok?.options?.allowCredentials?.length === 1,
    "the step-up asks for a user-verified assertion of the account's passkey",
    stepUp.ok?.options,
  );

  // --- The same authenticator, now failing user verification.
  await authenticator.setUserVerified(false);
  const honestStepUp = await app("stepUp");
  check(
    honestStepUp.error === "NotAllowedError",
    "user not verified: the browser answers no step-up the server requires UV for",
    honestStepUp,
  );
  const loweredStepUp = await app("stepUp", true);
  check(
    loweredStepUp.code === "UNAUTHENTICATED" || loweredStepUp.code === "BAD_USER_INPUT",
    "a page that lowers userVerification: the server refuses the step-up without UV",
    loweredStepUp,
  );
  await app("logout");
  const honestSignIn = await app("signIn");
  check(
    honestSignIn.error === "NotAllowedError",
    "user not verified: the browser answers no sign-in",
    honestSignIn,
  );
  const loweredSignIn = await app("signIn", undefined, true);
  const loweredAssertion = await tab.evaluate(() => window.lastAssertion?.credential);
  check(
    loweredAssertion && (flags(loweredAssertion) & 0b101) === 0b001,
    "with the options lowered, the browser answers without UV (user present only)",
    loweredAssertion && flags(loweredAssertion),
  );
  check(
    loweredSignIn.code === "UNAUTHENTICATED",
    "the server refuses a sign-in without user verification",
    loweredSignIn,
  );
  check((await app("me")).code === "UNAUTHENTICATED", "and no session came of it");

  // --- Another browser whose authenticator fails to verify its user: no passkey is made.
  const other = await open({ isUserVerified: false });
  const otherEmail = `passkeys-nouv-${unique()}@example.com`;
  const otherRegistered = await other.app("register", otherEmail);
  check(otherRegistered.ok === otherEmail, "a second account is registered", otherRegistered);
  const honestEnrol = await other.app("enrol", "No UV");
  check(
    honestEnrol.error === "NotAllowedError",
    "user not verified: the browser makes no passkey the server requires UV for",
    honestEnrol,
  );
  // A CTAP 2.1 authenticator with user verification set up verifies for every discoverable
  // credential it makes, whatever the page asks.
  const loweredFailing = await other.app("enrol", "No UV", true);
  check(
    loweredFailing.error === "NotAllowedError",
    "nor with the options lowered: the authenticator insists on verifying its user",
    loweredFailing,
  );
  // An authenticator with no user verification at all (a plain security key) answers the
  // lowered options with a credential made without UV: the server refuses it.
  await other.authenticator.remove();
  await addVirtualAuthenticator(other.tab, { hasUserVerification: false, isUserVerified: false });
  const honestNoUv = await other.app("enrol", "No UV");
  check(
    honestNoUv.error === "NotAllowedError",
    "an authenticator that cannot verify its user: the browser makes no passkey for the server's options",
    honestNoUv,
  );
  const loweredEnrol = await other.app("enrol", "No UV", true);
  check(
    loweredEnrol.code === "BAD_USER_INPUT" && loweredEnrol.field === "credential",
    "a page that lowers userVerification: the server refuses the passkey made without UV",
    loweredEnrol,
  );
  console.log(`# the server's answer: ${loweredEnrol.message}`);
  const none = await other.app("passkeys");
  check(none.ok?.length === 0, "and the account holds no passkey", none);
  await other.context.close();
  await authenticator.remove();
} finally {
  await browser.close();
  server.close();
}

console.log(`# ran in ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (failures.length > 0) {
  console.log(failures.map((f) => `not ok - ${f}`).join("\n"));
  process.exit(1);
}
console.log(`passkeys in Chromium (${cookies ? "cookie" : "bearer"} sessions): all checks passed`);
