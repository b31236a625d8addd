// Another service of yours that accepts authgraph's access tokens without calling authgraph:
// it checks each token's signature against the public keys authgraph publishes (JWKS), and its
// claims. `npm start` (AUTHGRAPH_URL: authgraph's base URL; PORT), then
// `curl -H "authorization: Bearer $TOKEN" http://127.0.0.1:4000/hello`.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { createRemoteJWKSet, errors, jwtVerify } from "jose";

// What jose throws when the key set cannot be fetched or read (not the token's fault).
const UNAVAILABLE = ["ERR_JOSE_GENERIC", "ERR_JWKS_TIMEOUT", "ERR_JWKS_INVALID"];

export async function startResourceServer({
  authgraph = process.env.AUTHGRAPH_URL ?? "http://127.0.0.1:8000",
  // Configured here, never taken from a token: JWT_ISSUER, JWT_AUDIENCE and JWT_ALGORITHM of
  // the auth server. Accepting the algorithm a token names is how forgeries get in.
  issuer = process.env.JWT_ISSUER ?? "authgraph",
  audience = process.env.JWT_AUDIENCE ?? "authgraph",
  algorithms = (process.env.JWT_ALGORITHM ?? "ES256").split(","),
  port = Number(process.env.PORT ?? 4000),
} = {}) {
  const found = await fetch(`${authgraph}/.well-known/openid-configuration`);
  if (!found.ok) throw new Error(`no discovery document at ${authgraph} (HTTP ${found.status})`);
  const discovery = await found.json();
  if (discovery.issuer !== issuer) throw new Error(`${authgraph} issues as ${discovery.issuer}`);
  // Fetched on first use, and again when a token names a kid not in the cache (a rotation),
  // at most every 30 s. Kept 5 min, as the server's Cache-Control says (jose's default is 10),
  // so a key withdrawn from the set stops verifying here within that.
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), { cacheMaxAge: 5 * 60_000 });

  const server = createServer(async (request, response) => {
    const answer = (status, body, headers = {}) => {
      response.writeHead(status, { "content-type": "application/json", ...headers });
      response.end(JSON.stringify(body));
    };
    if (request.method !== "GET" || request.url !== "/hello") return answer(404, { error: "not_found" });
    const token = /^Bearer ([\w.-]+)$/i.exec(request.headers.authorization ?? "")?.[1];
    if (!token) return answer(401, { error: "missing_token" }, { "www-authenticate": "Bearer" });
    try {
      // The signature, by the published key the token's kid names, with one of `algorithms`
      // (a token that says "none" or HS256 is refused); then iss, aud and exp (required, no
      // leeway).
      const { payload } = await jwtVerify(token, jwks, {
        issuer, audience, algorithms, requiredClaims: ["exp", "sub", "sid"],
      });
      // A valid token proves authgraph issued it within ACCESS_TOKEN_TTL (15 min), not that
      // its session is still open: a verifier like this one cannot see a sign-out, revocation
      // or suspension until the token expires. Where that matters (payments, admin actions),
      // ask authgraph: `{ me { id } }` with the same token fails at once for an ended session.
      // `auth_time` and `amr` say when and how the user signed in, for step-up decisions.
      answer(200, { user: payload.sub, session: payload.sid });
    } catch (error) {
      // Keys that cannot be fetched are this service's trouble, not the caller's.
      if (!(error instanceof errors.JOSEError) || UNAVAILABLE.includes(error.code)) {
        return answer(503, { error: "keys_unavailable" }, { "retry-after": "5" });
      }
      answer(401, { error: "invalid_token" }, { "www-authenticate": 'Bearer error="invalid_token"' });
    }
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startResourceServer();
  console.log(`resource server on http://127.0.0.1:${server.address().port}/hello`);
}
