// A real OpenID Provider for the social sign-in tests (npm oidc-provider), on 127.0.0.1 only.
//
//   PORT=0 node server.js      prints "ready <issuer>" once it listens (PORT=0: any free port)
//
// Two issuers in one process, signing with keys made at start:
//   <base>          conformIdTokenClaims: false, so the ID token carries email and
//                   email_verified (what most public providers do)
//   <base>/conform  conformIdTokenClaims: true, so those claims come from the userinfo
//                   endpoint only (what a strict provider does)
//
// Static clients (both confidential, `client_secret_basic`, PKCE S256 required, and "native"
// so that a loopback redirect URI matches on any port, RFC 8252 §7.3):
//   authgraph / authgraph-test-secret    the service under test
//   other-app / other-app-test-secret    another relying party, for tokens meant for others
// Redirect URIs: http://127.0.0.1/auth/oidc/callback and http://localhost/auth/oidc/callback.
//
// No human is needed: the login page signs in whoever `login_hint` names (or
// DEFAULT_LOGIN_HINT, when the request has none), and the consent page grants what was asked. A hint is `<kind>` or `<kind>:<email>`; the account's subject is the whole hint, so
// each test can have identities of its own:
//   verified[:email]     email_verified true (email alice@example.com by default)
//   unverified[:email]   the same address by default, email_verified false
//   stringly[:email]     email_verified as the string "true" (some providers send that)
//   mfa[:email]          verified, and signed in with two factors (amr ["pwd", "otp"])
//   noemail              no email claim at all
// Any other hint is refused with access_denied, as a user cancelling would be.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const KINDS = new Set(['verified', 'unverified', 'stringly', 'mfa', 'noemail']);
const DEFAULT_EMAIL = 'alice@example.com';

function parseHint(hint) {
  if (typeof hint !== 'string' || hint.length === 0 || hint.length > 200) return undefined;
  const colon = hint.indexOf(':');
  const kind = colon === -1 ? hint : hint.slice(0, colon);
  const email = colon === -1 ? DEFAULT_EMAIL : hint.slice(colon + 1);
  if (!KINDS.has(kind) || !/^[^\s@]+@[^\s@]+$/u.test(email)) return undefined;
  return { kind, email };
}

function claimsOf(sub) {
  const { kind, email } = parseHint(sub);
  const claims = { sub, name: `Test ${kind}` };
  if (kind !== 'noemail') {
    claims.email = email;
    claims.email_verified = kind === 'unverified' ? false : kind === 'stringly' ? 'true' : true;
  }
  return claims;
}

function signingKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: `rsa-${randomUUID()}`, use: 'sig', alg: 'RS256' },
    { ...ec, kid: `ec-${randomUUID()}`, use: 'sig', alg: 'ES256' },
  ];
}

const redirectUris = ['http://127.0.0.1/auth/oidc/callback', 'http://localhost/auth/oidc/callback'];
const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  application_type: 'native',
  redirect_uris: redirectUris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

function makeProvider(issuer, mountPath, conform) {
  return new Provider(issuer, {
    clients: [client('authgraph', 'authgraph-test-secret'), client('other-app', 'other-app-test-secret')],
    jwks: { keys: signingKeys() },
    cookies: { keys: [randomUUID()] },
    pkce: { required: () => true },
    claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: conform,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      if (!parseHint(sub)) return undefined;
      return { accountId: sub, claims: async () => claimsOf(sub) };
    },
  });
}

// The login page: no form, the hint decides. Every client is trusted: what it asks for is
// granted without a consent page.
async function interaction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (prompt.name !== 'login') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: `unexpected prompt ${prompt.name}`,
    });
  }
  const hint = params.login_hint ?? process.env.DEFAULT_LOGIN_HINT;
  const account = parseHint(hint);
  if (!account) {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'the test provider knows no such login_hint',
    });
  }
  const amr = account.kind === 'mfa' ? ['pwd', 'otp'] : ['pwd'];
  return provider.interactionFinished(
    req,
    res,
    { login: { accountId: hint, amr } },
    { mergeWithLastSubmission: false },
  );
}

const server = http.createServer();
server.listen(Number(process.env.PORT ?? 0), HOST, () => {
  const base = `http://${HOST}:${server.address().port}`;
  const mounts = [
    { path: '/conform', provider: makeProvider(`${base}/conform`, '/conform', true) },
    { path: '', provider: makeProvider(base, '', false) },
  ].map((mount) => ({ ...mount, handle: mount.provider.callback() }));
  server.on('request', async (req, res) => {
    const mount = mounts.find(({ path }) => path === '' || req.url === path || req.url.startsWith(`${path}/`));
    const { provider, path, handle } = mount;
    req.originalUrl = req.url;
    req.url = req.url.slice(path.length) || '/';
    try {
      if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
        await interaction(provider, req, res);
      } else {
        await handle(req, res);
      }
    } catch (error) {
      console.error(error);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  console.log(`ready ${base}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
