#!/usr/bin/env bash
# The benchmark: builds the release server, starts it on a fresh SQLite database (and on each
# server database BENCH_DATABASE_URL names), drives it over loopback with wrk, stops
# everything it started, and prints a table per database.
#
#   scripts/bench.sh            about 2 minutes per database
#   scripts/bench.sh --quick    a second or two per figure (CI runs this to keep it working)
#   scripts/bench.sh --write    also writes the tables to bench/RESULTS.md
#   scripts/bench.sh --scale N  instead: the admin directory at N accounts, on each
#                               BENCH_DATABASE_URL (loaded with one INSERT … SELECT), each
#                               query's p50/p99 and the database's plan for it; with --write,
#                               replaces the "Admin directory at scale" section of RESULTS.md
#
# BENCH_DATABASE_URL: one or more postgres://… or mysql://… URLs (MySQL or MariaDB),
# separated by spaces; an empty database each is best, as registrations accumulate.
#
# BENCH_PROFILE=dev benchmarks the debug build instead: CI does that with --quick, to prove the
# script works without a second, ten-minute build; its figures mean nothing. BENCH_BIN=path
# benchmarks that binary instead of building one (to compare two builds with one script).
#
# Rate limits are turned off (RATE_LIMITS=false): the figures measure the server, not its
# abuse protection. A response other than 200, or one whose body has "errors", counts as a
# failure, never as a served request; each table lists the failed answers by operation and
# code (from the server's /metrics). Traffic goes to 127.0.0.1 only, and every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0 WRITE=0 SCALE=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --write) WRITE=1 ;;
    --scale) SCALE=${2:?--scale needs a number of accounts}; shift ;;
    *) echo "usage: $0 [--quick] [--write] [--scale N]" >&2; exit 2 ;;
  esac
  shift
done
SECONDS_PER=$([[ $QUICK == 1 ]] && echo 2 || echo 10)
CORES=$(nproc)

if ! command -v wrk >/dev/null; then
  echo "== installing wrk (Debian package)"
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi

PROFILE=${BENCH_PROFILE:-release}
if [[ -n ${BENCH_BIN:-} ]]; then
  # Another build of the server, e.g. an earlier commit's, to compare with the same script.
  BIN=$BENCH_BIN
  PROFILE="$PROFILE ($BIN)"
else
  echo "== building the server ($PROFILE profile)"
  cargo build --profile "$PROFILE" --quiet
  BIN=${CARGO_TARGET_DIR:-target}/$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")/authgraph
fi
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

PASSWORD="correct horse battery staple"
export JWT_SECRET=bench-secret-bench-secret-bench-secret-1234
export MFA_ENCRYPTION_KEY=YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMTI=
export MAILER=log METRICS_ADDR=127.0.0.1:0 RATE_LIMITS=false RUST_LOG=warn LOG_FORMAT=json
export REFRESH_TOKEN_REUSE_GRACE=0s

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
now_ms() { date +%s%3N; }

# start DATABASE_URL -> sets SERVER_PID, URL and READY_MS (milliseconds from spawn to /ready).
start() {
  local port
  port=$(free_port)
  URL="http://127.0.0.1:$port"
  local began
  began=$(now_ms)
  DATABASE_URL=$1 PORT=$port "$BIN" >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 2000); do
    if curl -sf -o /dev/null "$URL/ready"; then
      READY_MS=$(($(now_ms) - began))
      return
    fi
    sleep 0.002
  done
  echo "error: the server did not become ready; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
}

stop() {
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

gql() { # query-json [token]
  curl -sf "$URL/graphql" -H 'content-type: application/json' ${2:+-H "authorization: Bearer $2"} -d "$1"
}

register() { # email -> prints the AuthPayload JSON
  gql "{\"query\":\"mutation(\$i: RegisterInput!) { register(input: \$i) { accessToken refreshToken } }\",\"variables\":{\"i\":{\"email\":\"$1\",\"password\":\"$PASSWORD\"}}}"
}

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['data']['register']['$1'])"; }

# wrk -> "RESULT ..." line. THREADS overrides the number of wrk threads (one per core by
# default); refresh.lua needs one per connection, as each thread keeps one rotation chain.
load() { # script connections duration [env...]
  local script=$1 connections=$2 duration=$3
  shift 3
  local threads=${THREADS:-$((connections < CORES ? connections : CORES))}
  env "$@" wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "bench/wrk/$script" "$URL/graphql" |
    grep '^RESULT' || echo "RESULT requests=0 ok_rps=0 p50_us=0 p99_us=0 failures=0 errors=0"
}

# The answers the server counted as failed, by operation and code: "operation code count" lines.
failed_answers() {
  curl -sf "$URL/metrics" |
    sed -nE 's/^authgraph_graphql_requests_total\{operation="([^"]*)",outcome="([^"]*)"\} ([0-9]+).*/\1 \2 \3/p' |
    awk '$2 != "ok" && $3 > 0' || true
}

# Slices of one load -> one "RESULT ..." line: requests/s over all of them, the median slice's
# p50, the worst slice's p99, failures summed.
combine() { # result-line...
  local p50
  p50=$(printf '%s\n' "$@" | sed -E 's/.* p50_us=([0-9]+).*/\1/' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  printf '%s\n' "$@" | awk -v p50="$p50" '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2] }
      p = $0; sub(/.* p99_us=/, "", p); sub(/ .*/, "", p); if (p + 0 > p99) p99 = p + 0 }
    END {
      printf "RESULT requests=%d ok_rps=%.1f p50_us=%d p99_us=%d failures=%d errors=%d\n",
        v["requests"], v["ok_rps"] / NR, p50, p99, v["failures"], v["errors"]
    }'
}

get() { # result-line key
  sed -E "s/.* $2=([0-9.]+).*/\1/" <<<"$1"
}

ROWS=()
BROKEN=()
CURRENT=""
row() { # name result
  ROWS+=("| $1 | $(get "$2" ok_rps) | $(get "$2" p50_us) | $(get "$2" p99_us) | $(get "$2" failures) |")
  # Speed is never asserted, but a figure with no successful request or with failures means
  # the benchmark (or the server) is broken.
  if [[ $(get "$2" failures) != 0 ]] || awk -v r="$(get "$2" ok_rps)" 'BEGIN { exit !(r <= 0) }'; then
    BROKEN+=("$CURRENT: $1")
  fi
}

# The machine's plain argon2 verify rate on all cores: at normal priority, without the
# server's yielding, for one second.
raw_hash_rate() {
  PASSWORD_HASH_PRIORITY=normal "$BIN" hash-rate --duration 1s |
    sed -E 's/.*: ([0-9.]+) verifications.*/\1/'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "n/a" }'; }

bench() { # label database-url
  local label=$1 database=$2
  CURRENT=$label
  echo "== $label: migrating"
  start "$database"
  stop
  echo "== $label: start to /ready"
  start "$database"
  local ready_ms=$READY_MS
  sleep 0.5
  local rss_idle
  rss_idle=$(rss_kib)

  local me_token
  me_token=$(register "me-$RANDOM$RANDOM@example.com" | field accessToken)
  local login_email="login-$RANDOM$RANDOM@example.com"
  register "$login_email" >/dev/null
  # One session per refreshing connection: $CORES for the plain figure, $((CORES * 4)) for
  # the one under contention.
  local refresh_tokens="" busy_refresh_tokens=""
  for i in $(seq 1 "$CORES"); do
    refresh_tokens+=$(register "refresh-$i-$RANDOM$RANDOM@example.com" | field refreshToken),
  done
  for i in $(seq 1 $((CORES * 4))); do
    busy_refresh_tokens+=$(register "busy-refresh-$i-$RANDOM$RANDOM@example.com" | field refreshToken),
  done

  echo "== $label: static query ceiling"
  local static me me_idle login register_result refresh busy_refresh storm_me rss_me rss_storm
  static=$(load post.lua 64 "$SECONDS_PER" BODY='{"query":"{ __typename }"}')
  echo "== $label: me"
  load post.lua 64 "$SECONDS_PER" BODY='{"query":"{ me { id email role } }"}' TOKEN="$me_token" >"$WORK/me" &
  local loading=$!
  sleep "$((SECONDS_PER / 2))"
  rss_me=$(rss_kib)
  wait "$loading"
  me=$(cat "$WORK/me")
  me_idle=$(load post.lua 1 "$SECONDS_PER" BODY='{"query":"{ me { id email role } }"}' TOKEN="$me_token")

  local login_body="{\"query\":\"mutation(\$i: LoginInput!) { login(input: \$i) { accessToken } }\",\"variables\":{\"i\":{\"email\":\"$login_email\",\"password\":\"$PASSWORD\"}}}"
  # A VM's speed can drift by a tenth within seconds, so the logins run in slices of two
  # seconds with a second of the raw argon2 rate before, between and after them: both see the
  # same machine. Requests still running when a slice ends are not counted (a hash or so per
  # slice, under 1 % of the login rate): the ratio errs against the server.
  echo "== $label: login, alternating with the raw argon2 verify rate"
  local slices=$((SECONDS_PER / 2)) slice rates logins=()
  rates=$(raw_hash_rate)
  for slice in $(seq 1 "$slices"); do
    logins+=("$(load post.lua $((CORES * 4)) 2 BODY="$login_body")")
    rates+=" $(raw_hash_rate)"
  done
  login=$(combine "${logins[@]}")
  local hash_rate
  hash_rate=$(tr ' ' '\n' <<<"$rates" | awk '{ sum += $1 } END { printf "%.1f", sum / NR }')
  local rate_range
  rate_range=$(tr ' ' '\n' <<<"$rates" | sort -n | sed -n '1p;$p' | paste -sd- | sed 's/-/ – /')
  echo "== $label: register"
  register_result=$(load register.lua $((CORES * 4)) "$SECONDS_PER" RUN="$RANDOM")
  echo "== $label: refreshToken"
  refresh=$(THREADS=$CORES load refresh.lua "$CORES" "$SECONDS_PER" TOKENS="$refresh_tokens")
  echo "== $label: refreshToken, $((CORES * 4)) sessions at once"
  busy_refresh=$(THREADS=$((CORES * 4)) load refresh.lua $((CORES * 4)) "$SECONDS_PER" TOKENS="$busy_refresh_tokens")

  # A reset request must cost the same whether the email has an account or not: the link is
  # written and sent later, off the request's path. Measured one after the other, alike.
  echo "== $label: requestPasswordReset, known and unknown email"
  local reset_query="mutation(\$i: RequestPasswordResetInput!) { requestPasswordReset(input: \$i) }"
  local reset_known reset_unknown
  reset_known=$(load post.lua 1 "$SECONDS_PER" BODY="{\"query\":\"$reset_query\",\"variables\":{\"i\":{\"email\":\"$login_email\"}}}")
  reset_unknown=$(load post.lua 1 "$SECONDS_PER" BODY="{\"query\":\"$reset_query\",\"variables\":{\"i\":{\"email\":\"nobody-$RANDOM@example.com\"}}}")

  echo "== $label: me during a login storm"
  load post.lua $((CORES * 8)) "$((SECONDS_PER + 2))" BODY="$login_body" >/dev/null &
  local storm=$!
  sleep 1
  load post.lua 1 "$SECONDS_PER" BODY='{"query":"{ me { id email role } }"}' TOKEN="$me_token" >"$WORK/storm_me" &
  local measuring=$!
  sleep "$((SECONDS_PER / 2))"
  rss_storm=$(rss_kib)
  wait "$measuring" "$storm"
  storm_me=$(cat "$WORK/storm_me")
  local failed
  failed=$(failed_answers)
  stop

  # On a fresh process, so its peak memory is the flood's.
  echo "== $label: hostile documents and a flood of 1 MiB bodies"
  start "$database"
  local hostile
  hostile=$(python3 bench/hostile.py "$URL" "$SERVER_PID" "$([[ $QUICK == 1 ]] && echo 3 || echo 20)" "${HTTP_MAX_BODY_BYTES:-32768}")
  stop
  hostile_figure() { sed -nE "s/^RESULT $1=([0-9.]+)$/\1/p" <<<"$hostile"; }

  ROWS=()
  row "\`{ __typename }\` (64 connections)" "$static"
  row "\`me\` (64 connections)" "$me"
  row "\`me\` (1 connection, idle)" "$me_idle"
  row "\`me\` (1 connection, during a login storm)" "$storm_me"
  row "\`login\` ($((CORES * 4)) connections)" "$login"
  row "\`register\` ($((CORES * 4)) connections)" "$register_result"
  row "\`refreshToken\` ($CORES connections)" "$refresh"
  row "\`refreshToken\` ($((CORES * 4)) connections)" "$busy_refresh"
  row "\`requestPasswordReset\`, known email (1 connection)" "$reset_known"
  row "\`requestPasswordReset\`, unknown email (1 connection)" "$reset_unknown"

  {
    echo
    echo "### $label"
    echo
    echo "| operation | requests/s | p50 µs | p99 µs | failures |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "| figure | value |"
    echo "|---|---:|"
    echo "| \`me\` / \`{ __typename }\` | $(ratio "$(get "$me" ok_rps)" "$(get "$static" ok_rps)") |"
    echo "| raw argon2id verify rate, $CORES threads (mean of $((slices + 1)) seconds around the logins; range) | $hash_rate /s ($rate_range) |"
    echo "| \`login\` / raw argon2 rate | $(ratio "$(get "$login" ok_rps)" "$hash_rate") |"
    echo "| \`me\` p99 during the storm / idle | $(ratio "$(get "$storm_me" p99_us)" "$(get "$me_idle" p99_us)") |"
    echo "| \`requestPasswordReset\` p50, known / unknown email | $(ratio "$(get "$reset_known" p50_us)" "$(get "$reset_unknown" p50_us)") |"
    echo "| RSS idle | $((rss_idle / 1024)) MiB |"
    echo "| RSS under \`me\` load | $((rss_me / 1024)) MiB |"
    echo "| RSS during the login storm | $((rss_storm / 1024)) MiB |"
    echo "| start to \`/ready\` (migrations applied) | $ready_ms ms |"
    echo "| hostile: refuse the worst document within the body limit, fields (token limit), median | $(hostile_figure fields_budget_ms) ms |"
    echo "| hostile: refuse the worst document within the body limit, one string (validation), median | $(hostile_figure string_budget_ms) ms |"
    echo "| hostile: refuse 1 MiB of fields (token limit, or 413 past the body limit), median | $(hostile_figure fields_1mib_ms) ms |"
    echo "| hostile: refuse a 1 MiB string (validation, or 413 past the body limit), median | $(hostile_figure string_1mib_ms) ms |"
    echo "| hostile: refuse 40 fragments that expand to 2⁴⁰ fields, median | $(hostile_figure fan_out_ms) ms |"
    echo "| hostile: peak RSS, 100 concurrent 1 MiB bodies (from $(hostile_figure rss_before_flood_mib) MiB; $(hostile_figure flood_shed) shed with 503) | $(hostile_figure peak_rss_flood_mib) MiB |"
    echo
    if [[ -n $failed ]]; then
      echo "Failed answers by operation and code (the server's count):"
      echo
      echo "| operation | code | answers |"
      echo "|---|---|---:|"
      awk '{ printf "| `%s` | `%s` | %s |\n", $1, $2, $3 }' <<<"$failed"
    else
      echo "Failed answers by operation and code (the server's count): none."
    fi
  } >>"$WORK/table"
}

# The section title of a database URL.
backend() {
  case $1 in
    postgres:* | postgresql:*) echo "PostgreSQL" ;;
    mysql:* | mariadb:*) echo "MySQL/MariaDB" ;;
    *) echo "error: BENCH_DATABASE_URL must hold postgres:// or mysql:// URLs, not $1" >&2; exit 2 ;;
  esac
}

# The admin directory at $SCALE accounts: see scripts/bench-scale.sh.
if [[ $SCALE != 0 ]]; then
  [[ -n ${BENCH_DATABASE_URL:-} ]] || { echo "error: --scale needs BENCH_DATABASE_URL" >&2; exit 2; }
  # shellcheck source=scripts/bench-scale.sh
  source scripts/bench-scale.sh
  exit 0
fi

for url in ${BENCH_DATABASE_URL:-}; do
  backend "$url" >/dev/null
done
bench "SQLite" "sqlite://$WORK/bench.db?mode=rwc"
for url in ${BENCH_DATABASE_URL:-}; do
  bench "$(backend "$url")" "$url"
done

{
  echo "## Benchmark results"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM,"
  echo "$([[ $QUICK == 1 ]] && echo 'quick run (2 s per figure)' || echo "$SECONDS_PER s per figure"), $PROFILE build; wrk and the server share the machine."
  cat "$WORK/table"
  echo
  echo "Why each special path (and scheduling choice) is kept or was removed, with paired runs: FAST-PATHS.md."
} >"$WORK/results"
cat "$WORK/results"
if [[ ${#BROKEN[@]} -gt 0 ]]; then
  echo "error: failed requests or none served in: ${BROKEN[*]}; the server log:" >&2
  tail -n 50 "$WORK/server.log" >&2
  exit 1
fi
if [[ $WRITE == 1 ]]; then
  cp "$WORK/results" bench/RESULTS.md
  echo "== written to bench/RESULTS.md"
fi
