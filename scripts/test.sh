#!/usr/bin/env bash
# The whole test suite: unit tests and the integration suite on SQLite, then the integration
# suite again on PostgreSQL and on MySQL/MariaDB when they are reachable.
#
#   POSTGRES_TEST_URL  admin URL of a PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test)
#   MYSQL_TEST_URL     admin URL of a MySQL/MariaDB server (default mysql://root@127.0.0.1:3306/test)
#   REDIS_TEST_URL     Redis for the shared rate-limit tests (default redis://127.0.0.1:6379)
#   REQUIRE_ALL_DATABASES=1  fail instead of skipping a server that is unreachable (CI)
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
