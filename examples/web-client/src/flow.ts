// A real session against a running server: register → login → me → refresh → logout, then
// the client's handling of SERVICE_UNAVAILABLE through a stand-in that refuses at first.
// AUTHGRAPH_URL points at /graphql (default http://127.0.0.1:8000/graphql).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { Authgraph, AuthgraphError } from "./client.js";
import { Logout, Me, Sessions } from "./operations.js";

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
console.log("flow passed");
