// Browser sessions in HttpOnly cookies, end to end in headless Chromium, against a server with
// SESSION_COOKIES=true. An app page on an allowed origin runs the client in cookie mode
// (src/client.ts compiled to dist/, its packages served from node_modules through an import
// map: no bundler) and signs in, reloads, loses its access cookie, signs out; pages on other
// origins try to use its session, and requests with forged headers try the same from Node.
// Last, a second account with a second factor signs in through verifyMfa and reauthenticates.
// No answer the page reads carries a token: login, refreshToken, verifyMfa and reauthenticate
// answer null tokens, and no body the page received holds a JWT or a token field with a value.
//
//   AUTHGRAPH_URL  the server's /graphql on localhost (default http://localhost:8000/graphql)
//   APP_PORT       the app page is served at http://localhost:APP_PORT, which must be one of
//                  the server's CORS_ALLOWED_ORIGINS (default 5173)
//   CHROMIUM       the browser (default /usr/bin/chromium)
//
// The app and the API on localhost: one site (ports do not count), as a browser app and its API
// usually are, and a secure context for Chromium, unlike http://127.0.0.1, which here serves as
// a cross-site attacker.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { freshCodes } from "../dist/src/totp.js";

const api = process.env.AUTHGRAPH_URL ?? "http://localhost:8000/graphql";
const appOrigin = `http://localhost:${process.env.APP_PORT ?? 5173}`;
const ACCESS = "authgraph-access";
const REFRESH = "authgraph-refresh";
const email = `cookies-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
const password = "correct horse battery staple";

const failures = [];
const check = (condition, what, detail) => {
  if (condition) console.log(`ok - ${what}`);
  else
    failures.push(detail === undefined ? what : `${what}: ${JSON.stringify(detail).slice(0, 600)}`);
};
// A server that never answers must not hang the test run.
setTimeout(() => {
  console.log(["timed out after 120 s", ...failures].join("\n"));
  process.exit(1);
}, 120_000).unref();

// The packages the compiled client imports by bare name, mapped to the files Node resolves.
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

const appPage = `<!doctype html>
<meta charset="utf-8">
<title>authgraph cookie session</title>
<script>
  // What a bundler does: urql's ES module reads process.env.NODE_ENV.
  globalThis.process = { env: { NODE_ENV: "production" } };
</script>
<script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module">
  import { Authgraph } from "/dist/src/client.js";
  import { ConfirmTotp, EnrollTotp, Me, RefreshFromCookie, Sessions } from "/dist/src/operations.js";

  const api = new Authgraph(${JSON.stringify(api)}, { session: "cookies" });
  const user = ${JSON.stringify({ email, password })};
  // Each call answers { ok } or { code, reason, ticket }, for the check to read through
  // page.evaluate.
  const call = (f) =>
    f().then(
      (ok) => ({ ok }),
      (error) => ({
        code: error.code ?? String(error),
        reason: error.reason,
        ticket: error.ticket,
      }),
    );
  // What script in the page can read of a sign-in's answer.
  const signedIn = (payload) => ({
    email: payload.user.email,
    accessToken: payload.accessToken,
    refreshToken: payload.refreshToken,
  });
  window.app = {
    register: () => call(async () => signedIn(await api.register(user.email, user.password))),
    login: () => call(async () => signedIn(await api.login(user.email, user.password))),
    refresh: () =>
      call(async () => signedIn((await api.run(RefreshFromCookie, {}, false)).refreshToken)),
    me: () => call(async () => (await api.run(Me, {})).me.email),
    sessions: () => call(async () => (await api.run(Sessions, { first: 10 })).sessions.totalCount),
    logout: () => call(() => api.logout()),
    kept: () => api.tokens,
    // For an account with a second factor; the codes come from the check.
    mfa: {
      register: (email) => call(async () => signedIn(await api.register(email, user.password))),
      enroll: () => call(async () => (await api.run(EnrollTotp, {})).enrollTotp.secret),
      confirm: (code) =>
        call(async () => (await api.run(ConfirmTotp, { input: { code } })).confirmTotp),
      login: (email) => call(async () => signedIn(await api.login(email, user.password))),
      verify: (ticket, code) => call(async () => signedIn(await api.verifyMfa(ticket, code))),
      reauthenticate: (code) =>
        call(async () => {
          const { accessToken, refreshToken } = await api.reauthenticate(user.password, code);
          return { accessToken, refreshToken };
        }),
    },
  };
</script>
<p>A page that signs in with HttpOnly cookies.</p>`;

// Another origin's page: it tries to end the user's sessions and to read who they are.
const attackerPage = `<!doctype html>
<meta charset="utf-8">
<title>another origin</title>
<script>
  window.attack = async (api) => {
    const post = (query, init = {}) =>
      fetch(api, {
        method: "POST",
        credentials: "include",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query }),
        ...init,
      });
    const read = async (what, request) => {
      try {
        const response = await request;
        return what + ": " + response.type + " " + response.status + " " + (await response.text());
      } catch (error) {
        return what + ": " + error;
      }
    };
    return [
      // JSON needs a CORS preflight, which the server grants no other origin.
      await read("logoutAll as JSON", post("mutation { logoutAll }")),
      // A "simple" request is sent without a preflight, cookies and all: only the server can
      // refuse it (the browser merely hides the answer).
      await read(
        "logoutAll as text/plain",
        post("mutation { logoutAll }", {
          mode: "no-cors",
          headers: { "content-type": "text/plain" },
        }),
      ),
      await read("me", post("{ me { email } }")),
      await read(
        "me by GET",
        fetch(api + "?query=" + encodeURIComponent("{ me { email } }"), { credentials: "include" }),
      ),
    ];
  };
  // Sends {"query":"mutation { logoutAll }","x":"="} as text/plain: no preflight, no script.
  window.submitForm = (api) => {
    const form = document.createElement("form");
    form.method = "POST";
    form.action = api;
    form.enctype = "text/plain";
    const input = document.createElement("input");
    input.name = '{"query":"mutation { logoutAll }","x":"';
    input.value = '"}';
    form.append(input);
    document.body.append(form);
    form.submit();
  };
</script>`;

// Serves the page at / and, for the app, the compiled client and its packages.
function serve(page, files) {
  return createServer(async (request, response) => {
    const path = new URL(request.url, "http://localhost").pathname;
    if (path === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return response.end(page);
    }
    const file = resolve(root, "." + path);
    if (files && /^\/(dist|node_modules)\//.test(path) && file.startsWith(root)) {
      try {
        const body = await readFile(file);
        response.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
        return response.end(body);
      } catch {}
    }
    response.writeHead(404);
    response.end();
  });
}
const listen = (server, port) =>
  new Promise((done, fail) => server.once("error", fail).listen(port, "127.0.0.1", done));
const appServer = serve(appPage, true);
await listen(appServer, Number(new URL(appOrigin).port));
// One server, two origins: http://localhost:PORT is same-site with the app (the browser sends
// SameSite=Lax cookies along) but not an allowed origin; http://127.0.0.1:PORT is cross-site.
const attackerServer = serve(attackerPage, false);
await listen(attackerServer, 0);
const attackerPort = attackerServer.address().port;

// Requests from Node with a browser's cookies and forged headers.
async function forged(headers, query, cookies) {
  const response = await fetch(api, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      cookie: cookies.map((c) => `${c.name}=${c.value}`).join("; "),
      ...headers,
    },
    body: JSON.stringify({ query }),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}
const refusal = (answer) => answer.body?.errors?.[0]?.extensions ?? {};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
});
try {
  const context = await browser.newContext();
  const sessionCookies = async () =>
    (await context.cookies(api)).filter((c) => c.name === ACCESS || c.name === REFRESH);
  const cookie = async (name) => (await sessionCookies()).find((c) => c.name === name);

  const app = await context.newPage();
  app.on("pageerror", (error) => failures.push(`app page error: ${error.message}`));
  app.on("requestfailed", (request) => {
    const url = request.url().split("?")[0];
    failures.push(`app request failed: ${request.method()} ${url} ${request.failure()?.errorText}`);
  });
  // Every answer the app page received from the API, as the page's script could read it.
  const bodies = [];
  app.on("response", (response) => {
    if (response.url().startsWith(api) && response.request().method() === "POST") {
      bodies.push(response.text().catch((error) => `unreadable: ${error.message}`));
    }
  });
  let refreshes = 0;
  app.on("request", (request) => {
    if (request.url().startsWith(api) && (request.postData() ?? "").includes("RefreshFromCookie")) {
      refreshes += 1;
    }
  });
  const open = async () => {
    await app.waitForFunction(() => window.app !== undefined, null, { timeout: 10_000 });
  };
  await app.goto(appOrigin);
  await open();
  const call = (name) => app.evaluate((name) => window.app[name](), name);

  // Signing in.
  const registered = await call("register");
  check(registered.ok?.email === email, "register from the allowed origin", registered);
  check(registered.ok?.refreshToken === null, "the body holds no refresh token", registered);
  check(registered.ok?.accessToken === null, "the body holds no access token", registered);
  const loggedIn = await call("login");
  check(loggedIn.ok?.email === email, "login from the allowed origin", loggedIn);
  check(
    loggedIn.ok?.accessToken === null && loggedIn.ok.refreshToken === null,
    "login's body holds no token",
    loggedIn,
  );
  const refreshed = await call("refresh");
  check(
    refreshed.ok?.email === email &&
      refreshed.ok.accessToken === null &&
      refreshed.ok.refreshToken === null,
    "refreshToken from the page renews the cookies; its body holds no token",
    refreshed,
  );
  let sessions = await call("sessions");
  check(sessions.ok === 1, "login ended the session of the refresh cookie it replaced", sessions);
  let me = await call("me");
  check(me.ok === email, "me with the cookies alone", me);
  check((await app.evaluate(() => window.app.kept())) === null, "the client keeps no token");

  // The cookies: there, HttpOnly and SameSite=Lax, and nothing of them visible to script.
  const cookies = await sessionCookies();
  for (const name of [ACCESS, REFRESH]) {
    const c = cookies.find((c) => c.name === name);
    check(
      c?.httpOnly === true &&
        c.sameSite === "Lax" &&
        c.path === "/" &&
        c.expires > Date.now() / 1000,
      `${name} is an HttpOnly, SameSite=Lax cookie with a lifetime`,
      c,
    );
  }
  const visible = await app.evaluate(() =>
    JSON.stringify({ cookie: document.cookie, ...localStorage, ...sessionStorage }),
  );
  check(
    !visible.includes("authgraph") &&
      !visible.includes("eyJ") &&
      cookies.every((c) => !visible.includes(c.value)),
    "no token in document.cookie, localStorage or sessionStorage",
    visible,
  );

  // A reload: a fresh client that knows nothing is still signed in.
  await app.reload();
  await open();
  me = await call("me");
  check(me.ok === email, "still signed in after a reload", me);

  // The access cookie gone (as when it expires): the client refreshes from the refresh cookie.
  const oldRefresh = await cookie(REFRESH);
  refreshes = 0;
  await context.clearCookies({ name: ACCESS });
  me = await call("me");
  check(
    me.ok === email && refreshes === 1,
    "without the access cookie, me refreshes once and works",
    { me, refreshes },
  );
  const newRefresh = await cookie(REFRESH);
  check(
    (await cookie(ACCESS)) !== undefined && newRefresh && newRefresh.value !== oldRefresh?.value,
    "the refresh set a new access cookie and rotated the refresh cookie",
  );

  // Pages on other origins: they cannot read the user, and their logoutAll does not happen.
  for (const [origin, reason] of [
    [`http://localhost:${attackerPort}`, "ORIGIN_NOT_ALLOWED"],
    [`http://127.0.0.1:${attackerPort}`, "CROSS_SITE_REQUEST"],
  ]) {
    const page = await context.newPage();
    // The server's answers to the page's fetches, hidden from the page. Playwright sees the
    // status of an opaque (no-cors) answer but not its body, and no answer CORS blocked.
    const statuses = [];
    page.on("response", (response) => {
      const request = response.request();
      if (request.url().startsWith(api) && request.method() !== "OPTIONS") {
        statuses.push(`${request.method()} ${response.status()}`);
      }
    });
    await page.goto(origin);
    const results = await page.evaluate((api) => window.attack(api), api);
    check(
      results.every((result) => !result.includes(email)),
      `a page on ${origin} cannot read the user`,
      results,
    );
    // The classic CSRF: a form posting a JSON-looking text/plain body. The answer replaces the
    // page, so here the server's refusal can be read whole.
    const [answer] = await Promise.all([
      page.waitForResponse(
        (r) => r.url().startsWith(api) && r.request().resourceType() === "document",
      ),
      page.evaluate((api) => window.submitForm(api), api),
    ]);
    const text = await answer.text().catch(() => "");
    check(
      answer.status() === 403 && text.includes('"FORBIDDEN"') && text.includes(`"${reason}"`),
      `a form on ${origin} posting logoutAll is refused: 403 FORBIDDEN ${reason}`,
      { status: answer.status(), text },
    );
    check(
      statuses.length > 1 && statuses.every((status) => status.endsWith(" 403")),
      `the server answered all of ${origin}'s requests it saw 403`,
      statuses,
    );
    await page.close();
  }
  me = await call("me");
  sessions = await call("sessions");
  check(
    me.ok === email && sessions.ok === 1,
    "the app is still signed in: the other origins' logoutAll did not run",
    { me, sessions },
  );

  // Forged headers from Node, with the browser's cookies.
  const jar = await sessionCookies();
  const allowed = await forged({ origin: appOrigin }, "{ me { email } }", jar);
  check(
    allowed.body?.data?.me?.email === email,
    "control: the cookies work from the allowed origin",
    allowed,
  );
  const evil = await forged({ origin: "http://evil.example" }, "mutation { logoutAll }", jar);
  check(
    evil.status === 403 &&
      refusal(evil).code === "FORBIDDEN" &&
      refusal(evil).reason === "ORIGIN_NOT_ALLOWED",
    "Origin: http://evil.example with the cookies is 403 ORIGIN_NOT_ALLOWED",
    evil,
  );
  const crossSite = await forged({ "sec-fetch-site": "cross-site" }, "mutation { logoutAll }", jar);
  check(
    crossSite.status === 403 &&
      refusal(crossSite).code === "FORBIDDEN" &&
      refusal(crossSite).reason === "CROSS_SITE_REQUEST",
    "Sec-Fetch-Site: cross-site with the cookies is 403 CROSS_SITE_REQUEST",
    crossSite,
  );
  me = await call("me");
  check(me.ok === email, "and the app is still signed in", me);

  // Signing out: the cookies are cleared, the session ends on the server.
  const beforeLogout = await sessionCookies();
  const loggedOut = await call("logout");
  check(loggedOut.ok === true, "logout from the app", loggedOut);
  check(
    (await sessionCookies()).length === 0,
    "logout cleared both cookies",
    await sessionCookies(),
  );
  await app.reload();
  await open();
  me = await call("me");
  check(me.code === "UNAUTHENTICATED", "signed out after a reload: me is UNAUTHENTICATED", me);
  const replayed = await forged(
    { origin: appOrigin },
    "mutation { refreshToken { accessToken } }",
    beforeLogout.filter((c) => c.name === REFRESH),
  );
  check(
    refusal(replayed).code === "UNAUTHENTICATED",
    "the refresh cookie from before logout no longer works",
    replayed,
  );

  // A second factor: the password alone sets no cookie; verifyMfa sets both, as login does;
  // reauthenticate replaces the access cookie and leaves the refresh cookie as it is.
  const mfa = (name, ...args) =>
    app.evaluate(([name, args]) => window.app.mfa[name](...args), [name, args]);
  const mfaEmail = email.replace("cookies-", "cookies-mfa-");
  const mfaUser = await mfa("register", mfaEmail);
  check(mfaUser.ok?.email === mfaEmail, "a second account registers", mfaUser);
  const enrolled = await mfa("enroll");
  check(typeof enrolled.ok === "string", "enrollTotp with the cookies", enrolled);
  const nextCode = freshCodes(enrolled.ok ?? "");
  const confirmed = await mfa("confirm", await nextCode());
  check(confirmed.ok?.recoveryCodes?.length === 10, "confirmTotp turns it on", confirmed);
  await call("logout");
  const required = await mfa("login", mfaEmail);
  check(
    required.code === "FORBIDDEN" && required.reason === "MFA_REQUIRED" && required.ticket,
    "login answers FORBIDDEN MFA_REQUIRED with a ticket",
    required,
  );
  check(
    (await sessionCookies()).length === 0,
    "and sets no session cookie",
    await sessionCookies(),
  );
  const verified = await mfa("verify", required.ticket, await nextCode());
  check(
    verified.ok?.email === mfaEmail &&
      verified.ok.accessToken === null &&
      verified.ok.refreshToken === null,
    "verifyMfa signs in; the body holds no token",
    verified,
  );
  const [access, refresh] = [await cookie(ACCESS), await cookie(REFRESH)];
  check(access?.httpOnly && refresh?.httpOnly, "verifyMfa set both HttpOnly cookies", {
    access,
    refresh,
  });
  check(
    (await app.evaluate(() => window.app.kept())) === null,
    "the client keeps no token after verifyMfa",
  );
  me = await call("me");
  check(me.ok === mfaEmail, "me with the cookies verifyMfa set", me);
  const code = await nextCode();
  const [answer, proved] = await Promise.all([
    app.waitForResponse((r) => r.url().startsWith(api) && r.request().method() === "POST"),
    mfa("reauthenticate", code),
  ]);
  const setCookie = (await answer.headerValue("set-cookie")) ?? "";
  check(
    proved.ok?.accessToken === null && proved.ok.refreshToken === null,
    "reauthenticate with the password and a code; the body holds no token",
    proved,
  );
  check(
    setCookie.includes(`${ACCESS}=`) &&
      !setCookie.includes(`${REFRESH}=`) &&
      (await cookie(REFRESH))?.value === refresh?.value,
    "reauthenticate set a new access cookie and kept the refresh cookie",
    setCookie.replace(/=[^;\n]+/g, "=…"),
  );
  me = await call("me");
  check(me.ok === mfaEmail, "me after reauthenticate", me);

  const received = await Promise.all(bodies);
  const leaking = received.filter(
    (body) =>
      /eyJ[\w-]+\.[\w-]+\.[\w-]+/.test(body) || /"(accessToken|refreshToken)"\s*:\s*"/.test(body),
  );
  check(
    received.length >= 8 && leaking.length === 0,
    `no token in any of the ${received.length} answers the app page received`,
    leaking,
  );
} catch (error) {
  failures.push(`stopped: ${error.message}`);
} finally {
  await browser.close();
  appServer.close();
  attackerServer.close();
}
if (failures.length > 0) {
  console.log(failures.join("\n"));
  process.exit(1);
}
console.log(
  "cookie sessions work: sign-in, reload, refresh, other origins refused, sign-out, a second " +
    "factor; no token in JS",
);
