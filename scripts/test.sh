#!/usr/bin/env bash
# The whole test suite: unit tests and the integration suite on SQLite, then the integration
# suite again on PostgreSQL and on MySQL/MariaDB when they are reachable.
#
#   POSTGRES_TEST_URL  admin URL of a PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test)
#   MYSQL_TEST_URL     admin URL of a MySQL/MariaDB server (default mysql://root@127.0.0.1:3306/test)
#   REDIS_TEST_URL     Redis for the shared rate-limit tests (default redis://127.0.0.1:6379)
#   REQUIRE_ALL_DATABASES=1  fail instead of skipping a server that is unreachable (CI)
#   REQUIRE_FRONTEND=1       fail instead of skipping the frontend checks when Node.js or
#                            Chromium is missing (CI)
#
# Each test creates its own database on the server and drops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

POSTGRES_TEST_URL=${POSTGRES_TEST_URL:-postgres://postgres@127.0.0.1:5432/test}
MYSQL_TEST_URL=${MYSQL_TEST_URL:-mysql://root@127.0.0.1:3306/test}
REDIS_TEST_URL=${REDIS_TEST_URL:-redis://127.0.0.1:6379}

if cargo nextest --version >/dev/null 2>&1; then
  run() { cargo nextest run --no-fail-fast "$@"; }
else
  run() { cargo test --no-fail-fast "$@"; }
fi

# host:port of a database URL, default port given.
address() {
  local rest=${1#*://}
  rest=${rest#*@}
  rest=${rest%%/*}
  rest=${rest%%\?*}
  [[ $rest == *:* ]] && echo "$rest" || echo "$rest:$2"
}

reachable() {
  local hostport
  hostport=$(address "$1" "$2")
  timeout 3 bash -c "</dev/tcp/${hostport%:*}/${hostport##*:}" 2>/dev/null
}

# Redis backs the tests of shared rate limits; each test uses keys of its own.
if reachable "$REDIS_TEST_URL" 6379; then
  export TEST_REDIS_URL=$REDIS_TEST_URL
elif [[ ${REQUIRE_ALL_DATABASES:-} == 1 ]]; then
  echo "error: Redis at $(address "$REDIS_TEST_URL" 6379) is unreachable and REQUIRE_ALL_DATABASES=1" >&2
  exit 1
else
  echo "== Redis does not answer at $(address "$REDIS_TEST_URL" 6379): its tests will be skipped"
fi

echo "== unit and integration tests on SQLite"
TEST_DATABASE_URL= run --workspace

for backend in "PostgreSQL $POSTGRES_TEST_URL 5432" "MySQL/MariaDB $MYSQL_TEST_URL 3306"; do
  read -r name url port <<<"$backend"
  if reachable "$url" "$port"; then
    echo "== integration tests on $name"
    TEST_DATABASE_URL=$url run --test api
  elif [[ ${REQUIRE_ALL_DATABASES:-} == 1 ]]; then
    echo "error: $name at $(address "$url" "$port") is unreachable and REQUIRE_ALL_DATABASES=1" >&2
    exit 1
  else
    echo "== skipping $name: nothing answers at $(address "$url" "$port")"
  fi
done

# The frontend's view: typed client code generated from schema.graphql, a real session with
# urql, the GraphQL-over-HTTP audit, GraphiQL and a browser session in cookies in headless
# Chromium, and another service verifying access tokens with jose, against the server binary
# the tests just built.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  if [[ ${REQUIRE_FRONTEND:-} == 1 ]]; then
    echo "error: Node.js and npm are needed for the frontend checks" >&2
    exit 1
  fi
  echo "== skipping the frontend checks: no Node.js/npm"
  exit 0
fi
echo "== frontend checks (examples/web-client)"
# The binary the integration tests built (with their test hooks, which change nothing here).
server_bin=${CARGO_TARGET_DIR:-target}/debug/authgraph
[[ -x $server_bin ]] || cargo build --quiet --bin authgraph
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL="sqlite://$work/db.sqlite?mode=rwc" PORT=$port JWT_SECRET=frontend-checks-secret-frontend-checks-1 \
  MAILER=log METRICS_ADDR=127.0.0.1:0 RATE_LIMITS=false RUST_LOG=warn "$server_bin" >"$work/server.log" 2>&1 &
server=$!
cookie_server=
key_servers=
trap 'kill $server $cookie_server $key_servers 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/ready" && break; sleep 0.1; done
export AUTHGRAPH_URL="http://127.0.0.1:$port/graphql"
(
  cd examples/web-client
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent codegen >/dev/null
  npm run --silent typecheck
  echo "-- a session with the generated client"
  npm run --silent flow
  echo "-- GraphQL-over-HTTP audit"
  npm run --silent audit
  if [[ -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
    echo "-- GraphiQL in headless Chromium"
    OUT_DIR=${OUT_DIR:-test-output} npm run --silent graphiql
  elif [[ ${REQUIRE_FRONTEND:-} == 1 ]]; then
    echo "error: Chromium is needed for the GraphiQL check" >&2
    exit 1
  else
    echo "-- skipping GraphiQL in Chromium: no /usr/bin/chromium"
  fi
)

# Browser sessions in HttpOnly cookies: a second server with SESSION_COOKIES=true that allows
# credentials from the check's app page only, http://localhost:$app_port; the check serves that
# page and pages on other origins, and drives them in headless Chromium.
if [[ -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
  read -r app_port cookie_port < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
  DATABASE_URL="sqlite://$work/cookies.sqlite?mode=rwc" PORT=$cookie_port JWT_SECRET=frontend-checks-secret-frontend-checks-1 \
    MAILER=log METRICS_ADDR=127.0.0.1:0 RATE_LIMITS=false RUST_LOG=warn \
    SESSION_COOKIES=true CORS_ALLOWED_ORIGINS="http://localhost:$app_port" \
    "$server_bin" >"$work/cookie-server.log" 2>&1 &
  cookie_server=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$cookie_port/ready" && break; sleep 0.1; done
  if ! curl -sf -o /dev/null "http://127.0.0.1:$cookie_port/ready"; then
    echo "error: the server with SESSION_COOKIES=true did not start:" >&2
    cat "$work/cookie-server.log" >&2
    exit 1
  fi
  echo "-- cookie sessions in headless Chromium"
  (cd examples/web-client && AUTHGRAPH_URL="http://localhost:$cookie_port/graphql" APP_PORT=$app_port npm run --silent cookies)
elif [[ ${REQUIRE_FRONTEND:-} == 1 ]]; then
  echo "error: Chromium is needed for the cookie session check" >&2
  exit 1
else
  echo "-- skipping cookie sessions in Chromium: no /usr/bin/chromium"
fi

# Other services verifying access tokens themselves: a server per asymmetric algorithm, with no
# JWT_SECRET or private key, so development generates the key beside its database in $work
# (never in the repository); examples/resource-server verifies its tokens with jose against the
# published JWKS, and refuses tampered and foreign ones. Offline once npm ci has run.
echo "-- other services verifying tokens with jose (examples/resource-server)"
(cd examples/resource-server && npm ci --no-audit --no-fund --loglevel=error)
for algorithm in ES256 EdDSA; do
  keys_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir "$work/$algorithm"
  env -u JWT_SECRET -u JWT_PRIVATE_KEY -u JWT_PRIVATE_KEY_FILE -u JWT_PREVIOUS_KEYS \
    DATABASE_URL="sqlite://$work/$algorithm/db.sqlite?mode=rwc" PORT=$keys_port JWT_ALGORITHM=$algorithm \
    MAILER=log METRICS_ADDR=127.0.0.1:0 RATE_LIMITS=false RUST_LOG=warn \
    "$server_bin" >"$work/$algorithm/server.log" 2>&1 &
  key_servers+=" $!"
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$keys_port/ready" && break; sleep 0.1; done
  if ! curl -sf -o /dev/null "http://127.0.0.1:$keys_port/ready"; then
    echo "error: the server with JWT_ALGORITHM=$algorithm did not start:" >&2
    cat "$work/$algorithm/server.log" >&2
    exit 1
  fi
  if [[ ! -s $work/$algorithm/jwt-${algorithm,,}-key.pem ]]; then
    echo "error: the $algorithm server did not keep its generated key beside its database in $work/$algorithm" >&2
    exit 1
  fi
  (cd examples/resource-server && AUTHGRAPH_URL="http://127.0.0.1:$keys_port" JWT_ALGORITHM=$algorithm npm run --silent check)
done
