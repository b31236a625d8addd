// GraphiQL for authgraph: the endpoint is this server, and the access token returned by
// register, login, refreshToken, verifyMfa, reauthenticate or finishPasskeySignIn is sent
// automatically on later requests (unless the Headers tab sets Authorization itself), so
// "Register, then Me" works with no copying. With SESSION_COOKIES=true the answers carry no
// token (null): the session cookies, which this same-origin fetch sends, authenticate instead.
//
// Nothing is written to the browser's storage: not the token, not the Headers tab (where a
// pasted bearer token would sit), not the Variables tab (where passwords sit). GraphiQL's own
// state lives in memory for as long as the page is open.
(function () {
  var endpoint = window.location.origin + "/graphql";
  var accessToken = null;

  var memory = {};
  var storage = {
    getItem: function (key) { return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null; },
    setItem: function (key, value) { memory[key] = String(value); },
    removeItem: function (key) { delete memory[key]; },
    clear: function () { memory = {}; },
    get length() { return Object.keys(memory).length; },
  };

  var starter = [
    "# Welcome to authgraph. Pick an operation with the play button.",
    "#",
    "# 1. Register creates an account and signs it in.",
    "# 2. Me shows the signed-in user: the access token from",
    "#    Register or Login is sent for you. To send another,",
    "#    set it in the Headers tab below:",
    '#    { "Authorization": "Bearer <accessToken>" }',
    "#",
    "# Passwords go in the Variables tab, never in the document",
    "# (documents end up in logs and caches). Nothing you type",
    "# here is saved in the browser.",
    "",
    "mutation Register($register: RegisterInput!) {",
    "  register(input: $register) {",
    "    accessToken",
    "    refreshToken",
    "    expiresIn",
    "    user { id email displayName role }",
    "  }",
    "}",
    "",
    "mutation Login($login: LoginInput!) {",
    "  login(input: $login) {",
    "    accessToken",
    "    refreshToken",
    "    expiresIn",
    "  }",
    "}",
    "",
    "query Me {",
    "  me {",
    "    id email displayName role",
    "    mfaEnabled recoveryCodesRemaining",
    "  }",
    "}",
    "",
    "# A second factor (an authenticator app):",
    "# 3. EnrollTotp, within 10 minutes of signing in: type its",
    "#    secret into the app (a page of yours shows qrCodeSvg).",
    "# 4. ConfirmTotp with the app's 6 digits turns it on; keep",
    "#    the recovery codes it answers: they are shown once.",
    "# 5. From now on Login answers FORBIDDEN, with",
    "#    extensions.reason MFA_REQUIRED and an mfaTicket: put",
    "#    the ticket and a code (or a recovery code) in the",
    "#    verifyMfa variables and run VerifyMfa to sign in.",
    "# 6. A change refused with REAUTHENTICATION_REQUIRED: run",
    "#    Reauthenticate (password and code), then the change.",
    "",
    "mutation EnrollTotp {",
    "  enrollTotp { secret otpauthUri }",
    "}",
    "",
    "mutation ConfirmTotp($confirmTotp: ConfirmTotpInput!) {",
    "  confirmTotp(input: $confirmTotp) { recoveryCodes }",
    "}",
    "",
    "mutation VerifyMfa($verifyMfa: VerifyMfaInput!) {",
    "  verifyMfa(input: $verifyMfa) {",
    "    accessToken",
    "    refreshToken",
    "    expiresIn",
    "  }",
    "}",
    "",
    "mutation Reauthenticate(",
    "  $reauthenticate: ReauthenticateInput!",
    ") {",
    "  reauthenticate(input: $reauthenticate) {",
    "    accessToken",
    "    expiresIn",
    "  }",
    "}",
    "",
    "# Passkeys: each start... answers options for the browser's",
    "# navigator.credentials.create / get (a page of yours runs",
    "# them: examples/web-client/src/webauthn.ts); its finish",
    "# takes the challengeId and credential.toJSON(). An account",
    "# with a passkey answers MFA_REQUIRED to Login: StartPasskeyMfa",
    "# with the ticket, then VerifyMfa with passkey instead of code.",
    "",
    "query Passkeys {",
    "  me { passkeys { id name createdAt lastUsedAt backedUp } }",
    "}",
    "",
    "mutation StartPasskeyRegistration {",
    "  startPasskeyRegistration { challengeId options }",
    "}",
    "",
    "mutation StartPasskeySignIn {",
    "  startPasskeySignIn { challengeId options }",
    "}",
    "",
    "mutation StartPasskeyMfa($startPasskeyMfa: StartPasskeyMfaInput!) {",
    "  startPasskeyMfa(input: $startPasskeyMfa) { challengeId options }",
    "}",
    "",
    "mutation StartPasskeyReauthentication {",
    "  startPasskeyReauthentication { challengeId options }",
    "}",
    "",
    "mutation RenamePasskey($renamePasskey: RenamePasskeyInput!) {",
    "  renamePasskey(input: $renamePasskey) { id name }",
    "}",
    "",
    "mutation RemovePasskey($removePasskey: RemovePasskeyInput!) {",
    "  removePasskey(input: $removePasskey)",
    "}",
    "",
  ].join("\n");

  var starterVariables = JSON.stringify(
    {
      register: { email: "ada@example.com", password: "correct horse battery staple", displayName: "Ada" },
      login: { email: "ada@example.com", password: "correct horse battery staple" },
      confirmTotp: { code: "123456" },
      verifyMfa: { ticket: "the mfaTicket from Login's error", code: "123456" },
      reauthenticate: { password: "correct horse battery staple", code: "123456" },
      startPasskeyMfa: { ticket: "the mfaTicket from Login's error" },
      renamePasskey: { id: "a passkey id from Passkeys", name: "Work laptop" },
      removePasskey: { id: "a passkey id from Passkeys" },
    },
    null,
    2
  );

  function hasAuthorization(headers) {
    return Object.keys(headers).some(function (name) {
      return name.toLowerCase() === "authorization";
    });
  }

  function rememberToken(result) {
    var data = result && result.data;
    if (!data) return;
    ["register", "login", "refreshToken", "verifyMfa", "reauthenticate", "finishPasskeySignIn"].forEach(function (field) {
      if (data[field] && data[field].accessToken) {
        accessToken = data[field].accessToken;
      }
    });
  }

  function fetcher(params, options) {
    var headers = Object.assign(
      { "Content-Type": "application/json", Accept: "application/graphql-response+json, application/json" },
      (options && options.headers) || {}
    );
    if (accessToken && !hasAuthorization(headers)) headers.Authorization = "Bearer " + accessToken;
    return fetch(endpoint, { method: "POST", headers: headers, body: JSON.stringify(params) })
      .then(function (response) { return response.json(); })
      .then(function (result) { rememberToken(result); return result; });
  }

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: starter,
      variables: starterVariables,
      storage: storage,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: true,
    })
  );
})();
