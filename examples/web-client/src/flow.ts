// A real session against a running server: register → login → me → refresh → logout.
// AUTHGRAPH_URL points at /graphql (default http://127.0.0.1:8000/graphql).
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
console.log("flow passed");
