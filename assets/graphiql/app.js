// GraphiQL for authgraph: the endpoint is this server, and the access token returned by
// register, login or refreshToken is sent automatically on later requests (unless the Headers
// tab sets Authorization itself), so "Register, then Me" works with no copying.
(function () {
  var TOKEN_KEY = "authgraph:accessToken";
  var endpoint = window.location.origin + "/graphql";

  var starter = [
    "# Welcome to authgraph. Pick an operation with the play button.",
    "#",
    "# 1. Register creates an account and signs it in.",
    "# 2. Me shows the signed-in user: the access token from",
    "#    Register or Login is sent for you. To send another,",
    "#    set it in the Headers tab below:",
    '#    { "Authorization": "Bearer <accessToken>" }',
    "",
    "mutation Register {",
    "  register(input: {",
    '    email: "ada@example.com"',
    '    password: "correct horse battery staple"',
    '    displayName: "Ada"',
    "  }) {",
    "    accessToken",
    "    refreshToken",
    "    expiresIn",
    "    user { id email displayName role }",
    "  }",
    "}",
    "",
    "mutation Login {",
    "  login(input: {",
    '    email: "ada@example.com"',
    '    password: "correct horse battery staple"',
    "  }) {",
    "    accessToken",
    "    refreshToken",
    "    expiresIn",
    "  }",
    "}",
    "",
    "query Me {",
    "  me { id email displayName role createdAt updatedAt }",
    "}",
    "",
  ].join("\n");

  function hasAuthorization(headers) {
    return Object.keys(headers).some(function (name) {
      return name.toLowerCase() === "authorization";
    });
  }

  function rememberToken(result) {
    var data = result && result.data;
    if (!data) return;
    ["register", "login", "refreshToken"].forEach(function (field) {
      if (data[field] && data[field].accessToken) {
        window.sessionStorage.setItem(TOKEN_KEY, data[field].accessToken);
      }
    });
  }

  function fetcher(params, options) {
    var headers = Object.assign(
      { "Content-Type": "application/json", Accept: "application/graphql-response+json, application/json" },
      (options && options.headers) || {}
    );
    var token = window.sessionStorage.getItem(TOKEN_KEY);
    if (token && !hasAuthorization(headers)) headers.Authorization = "Bearer " + token;
    return fetch(endpoint, { method: "POST", headers: headers, body: JSON.stringify(params) })
      .then(function (response) { return response.json(); })
      .then(function (result) { rememberToken(result); return result; });
  }

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: starter,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: true,
    })
  );
})();
