#!/usr/bin/env bash
# The whole test suite: unit tests and the integration suite on SQLite, then the integration
# suite again on PostgreSQL and on MySQL/MariaDB when they are reachable.
#
#   POSTGRES_TEST_URL  admin URL of a PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test)
#   MYSQL_TEST_URL     admin URL of a MySQL/MariaDB server (default mysql://root@127.0.0.1:3306/test)
#   REDIS_TEST_URL     Redis for the shared rate-limit tests (default redis://127.0.0.1:6379)
#   REQUIRE_ALL_DATABASES=1  fail instead of skipping a server that is unreachable, or a test
#                            that needs one (CI)
#   REQUIRE_FRONTEND=1       fail instead of skipping the frontend checks when Node.js or
#                            Chromium is missing (CI)
#
# With Node.js, a real OpenID provider (tests/oidc-provider) runs beside the passes for the
# social sign-in tests (OIDC_TEST_ISSUER).
#
# Each test creates its own database on the server and drops it afterwards.
#
# The last line is the count over every pass, 'summary: N passed, N failed, N skipped', where
# a skipped test is one that did not run for want of a server (tests/api/helpers.rs,
# skip_unless); the lines just before it are warnings (a pass or check that did not run) and
# the error that stopped the script, if one did. CI needs cargo-nextest: its per-test hang
# limit (.config/nextest.toml) is what ends a test that never returns.
set -euo pipefail
cd "$(dirname "$0")/.."

POSTGRES_TEST_URL=${POSTGRES_TEST_URL:-postgres://postgres@127.0.0.1:5432/test}
MYSQL_TEST_URL=${MYSQL_TEST_URL:-mysql://root@127.0.0.1:3306/test}
REDIS_TEST_URL=${REDIS_TEST_URL:-redis://127.0.0.1:6379}
ci() { [[ ${REQUIRE_ALL_DATABASES:-} == 1 || -n ${CI:-} ]]; }

passed=0 failed=0 skipped=0
warnings=()
# What the frontend checks start, ended and removed however the script ends.
pids=()
finished=
work=$(mktemp -d)
# Tests that returned without running write a line here (tests/api/helpers.rs).
export TEST_SKIPS_FILE=$work/skips

finish() {
  local code=$?
  ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
  if [[ -s $TEST_SKIPS_FILE ]]; then
    # They returned early, so the runner counted them as passed.
    passed=$((passed - $(wc -l <"$TEST_SKIPS_FILE")))
    skipped=$((skipped + $(grep -c '^skipped' "$TEST_SKIPS_FILE" || true)))
    while read -r count what; do
      warnings+=("$count test(s) skipped for want of $what")
    done < <(awk -F'\t' '$1 == "skipped" { print $3 }' "$TEST_SKIPS_FILE" | sort | uniq -c)
  fi
  rm -rf "$work"
  if ((code != 0)) && [[ -z $finished ]]; then
    # Stopped by something other than a failed test (a build, a server, a frontend check):
    # the summary must not read as a success.
    failed=$((failed + 1))
    warnings+=("error: stopped before the end with status $code (see the first error above)")
  fi
  local warning
  for warning in "${warnings[@]}"; do
    [[ $warning == error:* ]] && echo "$warning" || echo "warning: $warning"
  done
  echo "summary: $passed passed, $failed failed, $skipped skipped"
}
trap finish EXIT

if cargo nextest --version >/dev/null 2>&1; then
  runner=nextest
  run() { cargo nextest run --no-fail-fast "$@"; }
elif ci; then
  echo "error: cargo-nextest is missing; without it nothing ends a test that hangs (install it: cargo install cargo-nextest --locked)" >&2
  exit 1
else
  runner=cargo
  warnings+=("cargo-nextest is missing: cargo test ran with no per-test hang limit")
  run() { cargo test --no-fail-fast "$@"; }
fi

# Adds a pass's counts from the runner's output ($1) to the totals; fails when there are none.
count() {
  local line n word
  # Without colours, which CARGO_TERM_COLOR=always would put between the words.
  if [[ $runner == nextest ]]; then
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^ *Summary \[.*\] [0-9]+ tests? run:' | tail -n1) || return 1
  else
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^test result: ') || return 1
  fi
  while read -r n word; do
    case $word in
      passed) passed=$((passed + n)) ;;
      failed | timed | not) failed=$((failed + n)) ;; # "timed out", "not run"
      skipped | ignored) skipped=$((skipped + n)) ;;
    esac
  done < <(grep -oE '[0-9]+ (passed|failed|timed out|not run|skipped|ignored)' <<<"$line")
}

# One run of the runner (its arguments after the label); a failed test does not stop the
# script, so every pass reports, but output without a count (a build error) does.
pass() {
  local label=$1 log=$work/pass.log status=0 failed_before=$failed
  shift
  echo "== $label"
  run "$@" 2>&1 | tee "$log" || status=$?
  if ! count "$log"; then
    echo "error: the $label ended without a count of tests" >&2
    exit 1
  fi
  if ((status != 0 && failed == failed_before)); then
    echo "error: the $label failed (status $status) with no failed test" >&2
    failed=$((failed + 1))
  fi
}

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
  unset TEST_REDIS_URL
fi

# A real OpenID provider for the social sign-in tests (tests/oidc-provider: npm oidc-provider
# with static clients and sign-in by login_hint), one for every pass; the tests find its
# issuer in OIDC_TEST_ISSUER, and are skipped without it (CI: they fail).
if command -v node >/dev/null && command -v npm >/dev/null; then
  (cd tests/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
  # The Standard Webhooks reference (npm standardwebhooks) that checks the claims hook's
  # signatures (tests/api/claims.rs); that test is skipped without it.
  (cd tests/claims-hook && npm ci --no-audit --no-fund --loglevel=error)
  PORT=0 node tests/oidc-provider/server.js >"$work/oidc-provider.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^ready ' "$work/oidc-provider.log" && break; sleep 0.1; done
  OIDC_TEST_ISSUER=$(awk '/^ready /{ print $2 }' "$work/oidc-provider.log")
  if [[ -z $OIDC_TEST_ISSUER ]]; then
    echo "error: the OpenID provider of the tests did not start:" >&2
    cat "$work/oidc-provider.log" >&2
    exit 1
  fi
  export OIDC_TEST_ISSUER
elif [[ ${REQUIRE_ALL_DATABASES:-} == 1 || ${REQUIRE_FRONTEND:-} == 1 ]]; then
  echo "error: Node.js and npm are needed for the OpenID provider of the social sign-in tests" >&2
  exit 1
else
  echo "== no Node.js/npm: the social sign-in tests against a real OpenID provider will be skipped"
  unset OIDC_TEST_ISSUER
fi

# The servers the suite runs on besides SQLite. A test for one backend only is left out of the
# other passes when one of them is its backend (TEST_SUITE_BACKENDS), and skipped otherwise.
servers=()
export TEST_SUITE_BACKENDS=sqlite
for backend in "postgres PostgreSQL $POSTGRES_TEST_URL 5432" "mysql MySQL/MariaDB $MYSQL_TEST_URL 3306"; do
  read -r key name url port <<<"$backend"
  if reachable "$url" "$port"; then
    servers+=("$name $url")
    TEST_SUITE_BACKENDS+=" $key"
  elif [[ ${REQUIRE_ALL_DATABASES:-} == 1 ]]; then
    echo "error: $name at $(address "$url" "$port") is unreachable and REQUIRE_ALL_DATABASES=1" >&2
    exit 1
  else
    echo "== skipping $name: nothing answers at $(address "$url" "$port")"
    warnings+=("the integration tests did not run on $name: nothing answers at $(address "$url" "$port")")
  fi
done

TEST_DATABASE_URL= pass "unit and integration tests on SQLite" --workspace
for server in "${servers[@]}"; do
  read -r name url <<<"$server"
  TEST_DATABASE_URL=$url pass "integration tests on $name" --test api
done

# The frontend's view: typed client code generated from schema.graphql, a real session with
# urql, the GraphQL-over-HTTP audit, GraphiQL, a browser session in cookies and passkeys in
# headless Chromium, and another service verifying access tokens with jose, against the server
# binary the tests just built.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  if [[ ${REQUIRE_FRONTEND:-} == 1 ]]; then
    echo "error: Node.js and npm are needed for the frontend checks" >&2
    exit 1
  fi
  echo "== skipping the frontend checks: no Node.js/npm"
  warnings+=("the frontend checks did not run: no Node.js/npm")
  finished=1
  exit $((failed > 0))
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium && ${REQUIRE_FRONTEND:-} != 1 ]]; then
  warnings+=("GraphiQL, cookie sessions and passkeys in Chromium did not run: no $chromium")
fi
echo "== frontend checks (examples/web-client)"
# The binary the integration tests built (with their test hooks, which change nothing here).
server_bin=${CARGO_TARGET_DIR:-target}/debug/authgraph
[[ -x $server_bin ]] || cargo build --quiet --bin authgraph
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL="sqlite://$work/db.sqlite?mode=rwc" PORT=$port JWT_SECRET=frontend-checks-secret-frontend-checks-1 \
  MAILER=log METRICS_ADDR=127.0.0.1:0 RATE_LIMITS=false RUST_LOG=warn "$server_bin" >"$work/server.log" 2>&1 &
pids+=($!)
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
  if [[ -x $chromium ]]; then
    echo "-- GraphiQL in headless Chromium"
    OUT_DIR=${OUT_DIR:-test-output} npm run --silent graphiql
  elif [[ ${REQUIRE_FRONTEND:-} == 1 ]]; then
    echo "error: Chromium is needed for the GraphiQL check" >&2
    exit 1
  else
    echo "-- skipping GraphiQL in Chromium: no $chromium"
  fi
)

# Browser sessions in HttpOnly cookies: a second server with SESSION_COOKIES=true that allows
# credentials from the check's app page only, http://localhost:$app_port; the check serves that
# page and pages on other origins, and drives them in headless Chromium; then passkeys from
# that page (its origin is the server's WebAuthn origin too), signing in to cookies.
if [[ -x $chromium ]]; then
  read -r app_port cookie_port < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
  DATABASE_URL="sqlite://$work/cookies.sqlite?mode=rwc" PORT=$cookie_port JWT_SECRET=frontend-checks-secret-frontend-checks-1 \
    MAILER=log METRICS_ADDR=127.0.0.1:0 RATE_LIMITS=false RUST_LOG=warn \
    SESSION_COOKIES=true CORS_ALLOWED_ORIGINS="http://localhost:$app_port" \
    WEBAUTHN_RP_ID=localhost WEBAUTHN_ORIGINS="http://localhost:$app_port" \
    "$server_bin" >"$work/cookie-server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$cookie_port/ready" && break; sleep 0.1; done
  if ! curl -sf -o /dev/null "http://127.0.0.1:$cookie_port/ready"; then
    echo "error: the server with SESSION_COOKIES=true did not start:" >&2
    cat "$work/cookie-server.log" >&2
    exit 1
  fi
  echo "-- cookie sessions in headless Chromium"
  (cd examples/web-client && AUTHGRAPH_URL="http://localhost:$cookie_port/graphql" APP_PORT=$app_port npm run --silent cookies)
  echo "-- passkeys with cookie sessions in headless Chromium"
  (cd examples/web-client && SESSION=cookies AUTHGRAPH_URL="http://localhost:$cookie_port/graphql" APP_PORT=$app_port npm run --silent webauthn)
elif [[ ${REQUIRE_FRONTEND:-} == 1 ]]; then
  echo "error: Chromium is needed for the cookie session check" >&2
  exit 1
else
  echo "-- skipping cookie sessions in Chromium: no $chromium"
fi

# Passkeys: a server whose relying party is localhost and whose passkey and CORS origin is the
# check's page, http://localhost:$app_port (Chromium takes no IP address as an RP id); the check
# serves the page and drives it in headless Chromium with a DevTools virtual authenticator.
if [[ -x $chromium ]]; then
  read -r app_port webauthn_port < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
  DATABASE_URL="sqlite://$work/webauthn.sqlite?mode=rwc" PORT=$webauthn_port JWT_SECRET=frontend-checks-secret-frontend-checks-1 \
    MAILER=log METRICS_ADDR=127.0.0.1:0 RATE_LIMITS=false RUST_LOG=warn \
    CORS_ALLOWED_ORIGINS="http://localhost:$app_port" \
    WEBAUTHN_RP_ID=localhost WEBAUTHN_ORIGINS="http://localhost:$app_port" \
    "$server_bin" >"$work/webauthn-server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$webauthn_port/ready" && break; sleep 0.1; done
  if ! curl -sf -o /dev/null "http://127.0.0.1:$webauthn_port/ready"; then
    echo "error: the server with WEBAUTHN_RP_ID=localhost did not start:" >&2
    cat "$work/webauthn-server.log" >&2
    exit 1
  fi
  echo "-- the passkey harness (the browser half) in headless Chromium"
  (cd examples/web-client && npm run --silent webauthn-harness)
  echo "-- passkeys with bearer tokens in headless Chromium"
  (cd examples/web-client && AUTHGRAPH_URL="http://localhost:$webauthn_port/graphql" APP_PORT=$app_port npm run --silent webauthn)
elif [[ ${REQUIRE_FRONTEND:-} == 1 ]]; then
  echo "error: Chromium is needed for the passkey check" >&2
  exit 1
else
  echo "-- skipping passkeys in Chromium: no $chromium"
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
  pids+=($!)
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

finished=1
((failed == 0))
