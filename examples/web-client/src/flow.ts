// A real session against a running server: register → login → me → refresh → logout, then
// the client's handling of SERVICE_UNAVAILABLE through a stand-in that refuses at first, then
// a second factor: enrol an authenticator, sign in with its codes and with recovery codes,
// reauthenticate, turn it off.
// AUTHGRAPH_URL points at /graphql (default http://127.0.0.1:8000/graphql).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { Authgraph, AuthgraphError, MfaRequired } from "./client.js";
import {
  ConfirmTotp,
  DisableTotp,
  EnrollTotp,
  Logout,
  Me,
  RegenerateRecoveryCodes,
  SecuritySettings,
  Sessions,
} from "./operations.js";
import { freshCodes, stepAt, totp } from "./totp.js";

const url = process.env["AUTHGRAPH_URL"] ?? "http://127.0.0.1:8000/graphql";
const email = `web-client-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
const password = "correct horse battery staple";

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`flow failed: ${what}`);
  console.log(`ok - ${what}`);
}

const api = new Authgraph(url);
const registered = await api.register(email, password, "Web Client");
check(registered.tokenType === "Bearer", "register returns bearer tokens");
check(registered.user.email === email, "register returns the user");

const signedIn = await api.login(email, password);
check(signedIn.expiresIn > 0, "login returns an access token with a lifetime");

const { me } = await api.run(Me, {});
check(me.email === email && me.role === "USER", "me is the signed-in user");

const sessions = await api.run(Sessions, { first: 10 });
check(sessions.sessions.totalCount === 2, "two sessions: register and login");

const before = api.tokens!.refreshToken;
check(await api.refresh(), "refreshToken rotates the tokens");
check(api.tokens!.refreshToken !== before, "the refresh token changed");

await api.run(Logout, { input: { refreshToken: api.tokens!.refreshToken } });
const stale = api.tokens!.accessToken;
try {
  await api.run(Me, {}, false);
  check(false, "me fails after logout");
} catch (error) {
  check(
    error instanceof AuthgraphError && error.code === "UNAUTHENTICATED",
    `me fails after logout with UNAUTHENTICATED (token ${stale.slice(0, 8)}…)`,
  );
}
// A server whose database is briefly unreachable: the stand-in answers the first `refusals`
// requests as authgraph does then (503, SERVICE_UNAVAILABLE, retryAfter) and passes the
// others through.
let refusals = 0;
const standIn = createServer(async (request, response) => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  if (refusals > 0) {
    refusals--;
    response.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
    response.end(
      JSON.stringify({
        data: null,
        errors: [
          {
            message: "The service is briefly unavailable; try again in 1 seconds.",
            extensions: { code: "SERVICE_UNAVAILABLE", retryAfter: 1 },
          },
        ],
      }),
    );
    return;
  }
  const authorization = request.headers.authorization;
  const upstream = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: Buffer.concat(chunks),
  });
  response.writeHead(upstream.status, {
    "content-type": upstream.headers.get("content-type") ?? "application/json",
  });
  response.end(await upstream.text());
});
await new Promise<void>((resolve) => standIn.listen(0, "127.0.0.1", resolve));
const standInUrl = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}/graphql`;

const patient = new Authgraph(standInUrl);
refusals = 1;
const started = Date.now();
const again = await patient.login(email, password);
check(
  again.user.email === email && Date.now() - started >= 900,
  "SERVICE_UNAVAILABLE is sent again after retryAfter, and then succeeds",
);

const impatient = new Authgraph(standInUrl, { unavailableRetries: 1, maxRetryAfterSeconds: 0 });
await impatient.login(email, password);
const kept = impatient.tokens!.refreshToken;
refusals = 2;
try {
  await impatient.refresh();
  check(false, "a refresh that stays unavailable throws");
} catch (error) {
  check(
    error instanceof AuthgraphError && error.code === "SERVICE_UNAVAILABLE" && error.retryAfter === 1,
    "a refresh that stays unavailable throws SERVICE_UNAVAILABLE with retryAfter",
  );
}
check(impatient.tokens?.refreshToken === kept, "and keeps the session's tokens");
check(await impatient.refresh(), "the kept refresh token works once the server is back");
standIn.close();

// A second factor, on an account of its own. The codes an authenticator app would show come
// from src/totp.ts, checked first against the test vectors of RFC 6238 (appendix B).
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // base32 of "12345678901234567890"
check(
  [59, 1111111109, 1234567890, 2000000000].map((t) => totp(rfcSecret, stepAt(t))).join() ===
    "287082,081804,005924,279037",
  "TOTP codes match RFC 6238's test vectors",
);
const mfaEmail = email.replace("web-client-", "web-client-mfa-");
const user = new Authgraph(url);
await user.register(mfaEmail, password);
let { me: settings } = await user.run(SecuritySettings, {});
check(
  !settings.mfaEnabled && settings.recoveryCodesRemaining === null,
  "a new account has no second factor",
);

// A fresh sign-in is a recent authentication: enrolment may start.
const { enrollTotp } = await user.run(EnrollTotp, {});
const { secret } = enrollTotp;
check(/^[A-Z2-7]{16,}$/.test(secret), "enrollTotp returns a base32 secret");
check(
  enrollTotp.otpauthUri.startsWith("otpauth://totp/") &&
    new URL(enrollTotp.otpauthUri).searchParams.get("secret") === secret,
  "and an otpauth://totp/ URI with the same secret",
);
check(
  enrollTotp.qrCodeSvg.includes("<svg") && enrollTotp.qrCodeSvg.trimEnd().endsWith("</svg>"),
  "and a QR code as an SVG document",
);

// Each step's code is accepted once: every proof below takes a later step than the one before.
const freshCode = freshCodes(secret, (seconds) =>
  console.log(`   (waiting ${seconds} s for the next TOTP step: each is accepted once)`),
);

const { confirmTotp } = await user.run(ConfirmTotp, { input: { code: await freshCode() } });
const recoveryCodes = confirmTotp.recoveryCodes;
check(
  recoveryCodes.length === 10 &&
    new Set(recoveryCodes).size === 10 &&
    recoveryCodes.every((c) => /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/.test(c)),
  "confirmTotp with a code turns the factor on and returns 10 recovery codes (XXXX-XXXX-XXXX-XXXX)",
);
({ me: settings } = await user.run(SecuritySettings, {}));
check(
  settings.mfaEnabled && settings.recoveryCodesRemaining === 10,
  "me: mfaEnabled, 10 recovery codes remaining",
);
await user.logout();

/** Signs in with the password, expecting MFA_REQUIRED. */
async function passwordStep(): Promise<MfaRequired> {
  try {
    await user.login(mfaEmail, password);
  } catch (error) {
    if (error instanceof MfaRequired) return error;
    throw error;
  }
  throw new Error("flow failed: login signed in without the second factor");
}
/** The AuthgraphError an operation throws, or null when it succeeds. */
async function refusal(operation: Promise<unknown>): Promise<AuthgraphError | null> {
  try {
    await operation;
    return null;
  } catch (error) {
    if (error instanceof AuthgraphError) return error;
    throw error;
  }
}
// A function, not `user.tokens` itself: a check asserts its condition, and TypeScript would
// keep the property narrowed to null after the sign-ins that follow.
const holdsTokens = () => user.tokens !== null;
const wrongCode = (error: AuthgraphError | null) =>
  error?.code === "BAD_USER_INPUT" && error.field === "code";
/** The claims of a JWT, to read what the access token says of the sign-in. */
const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as {
    auth_time: number;
    amr: string[];
  };

const { code, reason, ticket } = await passwordStep();
check(
  code === "FORBIDDEN" && reason === "MFA_REQUIRED" && ticket.length > 0 && !holdsTokens(),
  "login now answers FORBIDDEN MFA_REQUIRED with an mfaTicket, and no tokens",
);
const totpCode = await freshCode();
const verified = await user.verifyMfa(ticket, totpCode);
check(
  verified.user.mfaEnabled && holdsTokens(),
  "verifyMfa with the ticket and a TOTP code signs in",
);
check(
  claims(user.tokens!.accessToken).amr.includes("otp"),
  `the access token says both factors (amr ${JSON.stringify(claims(user.tokens!.accessToken).amr)})`,
);
check((await user.run(Me, {})).me.email === mfaEmail, "me works in that session");
await user.logout();

const { ticket: second } = await passwordStep();
check(
  wrongCode(await refusal(user.verifyMfa(second, totpCode))),
  "the same TOTP code again is refused: BAD_USER_INPUT on code",
);
// Case, spaces and dashes do not matter in a recovery code, as a user types it.
const [firstRecovery, secondRecovery] = recoveryCodes as [string, string];
await user.verifyMfa(second, firstRecovery.toLowerCase().replaceAll("-", " "));
check(
  holdsTokens(),
  "the same ticket takes another try: a recovery code (as typed: lower case, spaces) signs in",
);
({ me: settings } = await user.run(SecuritySettings, {}));
check(settings.recoveryCodesRemaining === 9, "recoveryCodesRemaining is 9");
const spent = await refusal(user.verifyMfa(second, secondRecovery));
check(spent?.code === "UNAUTHENTICATED", "a ticket that signed in once is UNAUTHENTICATED");
({ me: settings } = await user.run(SecuritySettings, {}));
check(
  settings.recoveryCodesRemaining === 9,
  "and the recovery code sent with the spent ticket was not used up",
);

// Reauthenticate: proof again, in the same session.
const refreshBefore = user.tokens!.refreshToken;
const startedProof = Math.floor(Date.now() / 1000);
check(
  wrongCode(await refusal(user.reauthenticate(password, firstRecovery))),
  "reauthenticate with a used recovery code is refused: BAD_USER_INPUT on code",
);
const proved = await user.reauthenticate(password, await freshCode());
check(
  proved.refreshToken === null && user.tokens!.refreshToken === refreshBefore,
  "reauthenticate with the password and a code: no new refresh token, the session stays",
);
const { auth_time, amr } = claims(user.tokens!.accessToken);
check(
  auth_time >= startedProof && amr.includes("otp"),
  "the new access token says the user proved both factors just now (auth_time, amr)",
);
check((await user.run(Me, {})).me.email === mfaEmail, "and it is the one the client sends");

const { regenerateRecoveryCodes } = await user.run(RegenerateRecoveryCodes, {});
({ me: settings } = await user.run(SecuritySettings, {}));
check(
  regenerateRecoveryCodes.length === 10 &&
    !regenerateRecoveryCodes.some((c) => recoveryCodes.includes(c)) &&
    settings.recoveryCodesRemaining === 10,
  "regenerateRecoveryCodes: 10 new codes, 10 remaining",
);
check(
  wrongCode(await refusal(user.reauthenticate(password, secondRecovery))),
  "an earlier recovery code no longer works",
);

const { disableTotp } = await user.run(DisableTotp, { input: { code: await freshCode() } });
({ me: settings } = await user.run(SecuritySettings, {}));
check(
  disableTotp && !settings.mfaEnabled && settings.recoveryCodesRemaining === null,
  "disableTotp with a fresh code turns the factor off",
);
await user.logout();
const plain = await user.login(mfaEmail, password);
check(!plain.user.mfaEnabled, "login needs the password alone again");
console.log("flow passed");
