// The resource server against a running authgraph, as CI runs it (scripts/test.sh):
//
//   AUTHGRAPH_URL=http://127.0.0.1:8000 JWT_ALGORITHM=ES256 npm run check
//
// AUTHGRAPH_URL is authgraph's base URL (not /graphql); JWT_ALGORITHM is what it signs with
// (ES256 or EdDSA). A new user's access token is accepted; the same token tampered with, a token
// signed by another key, an unsigned one and none at all are refused, and so is the genuine
// token by a service that expects another audience or algorithm. Prints `ok - …` per check;
// exits 1 listing the failures.
import { SignJWT, base64url, decodeJwt, decodeProtectedHeader, generateKeyPair } from "jose";
import { startResourceServer } from "./server.mjs";

const authgraph = (process.env.AUTHGRAPH_URL ?? "").replace(/\/+$/, "");
const algorithm = process.env.JWT_ALGORITHM ?? "ES256";
if (!/^https?:\/\/[^/]+$/.test(authgraph) || !["ES256", "EdDSA"].includes(algorithm)) {
  console.error("usage: AUTHGRAPH_URL=http://127.0.0.1:8000 JWT_ALGORITHM=ES256|EdDSA npm run check");
  process.exit(2);
}

const failures = [];
let passed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok - ${what}`);
  } else {
    failures.push(`${what}: ${detail}`);
    console.log(`not ok - ${what}: ${detail}`);
  }
}

const request = (url, init = {}) => fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });

async function graphql(query, variables, token) {
  const response = await request(`${authgraph}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

// GET /hello on a resource server, with `authorization` as the header (or none).
async function hello(server, authorization) {
  const response = await request(`http://127.0.0.1:${server.address().port}/hello`, {
    headers: authorization === undefined ? {} : { authorization },
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

const servers = [];
try {
  // What verifiers start from: the discovery document and the key set it points to.
  const found = await request(`${authgraph}/.well-known/openid-configuration`);
  if (!found.ok) throw new Error(`GET /.well-known/openid-configuration answered ${found.status}`);
  const discovery = await found.json();
  check(
    discovery.issuer === "authgraph" && discovery.jwks_uri === `${authgraph}/.well-known/jwks.json`,
    "the discovery document names the issuer and the JWKS's address",
    JSON.stringify(discovery),
  );
  const keysResponse = await request(discovery.jwks_uri);
  const { keys } = await keysResponse.json();
  const shape = algorithm === "ES256"
    ? (k) => k.kty === "EC" && k.crv === "P-256" && k.x && k.y
    : (k) => k.kty === "OKP" && k.crv === "Ed25519" && k.x && !("y" in k);
  check(
    keys.length > 0 && keys.every((k) => shape(k) && k.alg === algorithm && k.use === "sig" && k.kid && !("d" in k)),
    `the JWKS holds ${algorithm} public keys, and nothing private`,
    JSON.stringify(keys),
  );
  check(
    keysResponse.headers.get("cache-control") === "public, max-age=300",
    "the JWKS may be cached for 5 minutes",
    keysResponse.headers.get("cache-control"),
  );

  const options = { authgraph, algorithms: [algorithm], port: 0 };
  const other = algorithm === "ES256" ? "EdDSA" : "ES256";
  const [service, billing, pinnedElsewhere] = await Promise.all([
    startResourceServer(options),
    startResourceServer({ ...options, audience: "billing" }),
    startResourceServer({ ...options, algorithms: [other] }),
  ]);
  servers.push(service, billing, pinnedElsewhere);

  const email = `resource-server-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const registered = await graphql(
    "mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken user { id } } }",
    { i: { email, password: "correct horse battery staple" } },
  );
  const { accessToken: token, refreshToken, user } = registered.data?.register ?? {};
  if (!token) throw new Error(`register failed: ${JSON.stringify(registered)}`);
  const header = decodeProtectedHeader(token);
  const claims = decodeJwt(token);
  check(
    header.alg === algorithm && keys.some((k) => k.kid === header.kid),
    `the access token is ${algorithm}, signed by a published key`,
    JSON.stringify(header),
  );

  let answer = await hello(service, `Bearer ${token}`);
  check(
    answer.status === 200 && answer.body.user === user.id && answer.body.session === claims.sid,
    "a genuine token: 200 with the user's id (sub) and session (sid)",
    `${answer.status} ${JSON.stringify(answer.body)}, user ${user.id}`,
  );

  const [head, payload, signature] = token.split(".");
  const refused = async (what, authorization, server = service) => {
    const { status, body } = await hello(server, authorization);
    check(status === 401, `${what}: 401`, `${status} ${JSON.stringify(body)}`);
  };
  const otherSub = claims.sub.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
  const tamperedPayload = base64url.encode(JSON.stringify({ ...claims, sub: otherSub }));
  await refused("one character of sub changed, signature kept", `Bearer ${head}.${tamperedPayload}.${signature}`);
  const flip = (text, at) => text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
  await refused("one character of the payload changed", `Bearer ${head}.${flip(payload, 20)}.${signature}`);
  await refused("one character of the signature changed", `Bearer ${head}.${payload}.${flip(signature, 10)}`);

  // The same claims signed by a key authgraph never published: under the published key's kid,
  // and under a kid of its own.
  const { privateKey } = await generateKeyPair(algorithm);
  const forge = (kid) => new SignJWT(claims).setProtectedHeader({ alg: algorithm, typ: "JWT", kid }).sign(privateKey);
  await refused("the same claims signed by another key, under the published kid", `Bearer ${await forge(header.kid)}`);
  await refused("the same claims signed by another key, under its own kid", `Bearer ${await forge("not-published")}`);
  const unsigned = `${base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }))}.${payload}.`;
  await refused('an unsigned token (alg "none")', `Bearer ${unsigned}`);

  answer = await hello(service);
  check(
    answer.status === 401 && answer.headers.get("www-authenticate") === "Bearer",
    "no Authorization header: 401 with WWW-Authenticate: Bearer",
    `${answer.status} ${answer.headers.get("www-authenticate")}`,
  );
  await refused("a bearer that is no JWT", "Bearer not-a-token");
  await refused("the token sent as Basic", `Basic ${token}`);
  await refused("the genuine token at a service expecting audience billing", `Bearer ${token}`, billing);
  await refused(`the genuine token at a service pinned to ${other}`, `Bearer ${token}`, pinnedElsewhere);

  // What a stateless verifier gives up: after a sign-out, authgraph refuses the token at once,
  // while a signature check still accepts it until it expires.
  const logout = await graphql("mutation($i: LogoutInput) { logout(input: $i) }", { i: { refreshToken } });
  const me = await graphql("{ me { id } }", {}, token);
  check(
    logout.data?.logout === true && me.errors?.[0]?.extensions?.code === "UNAUTHENTICATED",
    "after logout, authgraph's me refuses the token at once",
    JSON.stringify({ logout, me }),
  );
  answer = await hello(service, `Bearer ${token}`);
  check(
    answer.status === 200,
    "after logout, the token still verifies here until it expires (stateless)",
    `${answer.status} ${JSON.stringify(answer.body)}`,
  );
} catch (error) {
  // fetch's own message ("fetch failed") hides the reason, e.g. ECONNREFUSED.
  const cause = error.cause?.code ?? error.cause?.message;
  const reason = `${error.message}${cause ? ` (${cause})` : ""}`;
  failures.push(`the check stopped: ${reason}\n${error.stack}`);
  console.log(`not ok - the check stopped: ${reason}`);
} finally {
  for (const server of servers) server.close();
}

if (failures.length > 0) {
  console.error(`resource server (${algorithm}): ${failures.length} failed, ${passed} passed:`);
  for (const failure of failures) console.error(`  - ${failure}`);
  process.exit(1);
}
console.log(`resource server (${algorithm}): all ${passed} checks passed against ${authgraph}`);
process.exit(0);
