"""The hostile figures of scripts/bench.sh: how long the server takes to refuse 1 MiB hostile
documents, and its peak memory while 100 clients each send a 1 MiB body at once.

    python3 bench/hostile.py URL SERVER_PID ROUNDS [MAX_BODY_BYTES]

MAX_BODY_BYTES is the server's HTTP_MAX_BODY_BYTES (default 32 KiB): the worst document of
a valid size is one just under it, which the server parses and then refuses.

Prints one line per figure, `RESULT name=value`. A hostile request that is answered with a
5xx other than 503 (load shed), or not at all, fails the run.
"""

import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

URL, PID, ROUNDS = sys.argv[1], sys.argv[2], int(sys.argv[3])
MAX_BODY = int(sys.argv[4]) if len(sys.argv) > 4 else 32 * 1024
MIB = 1024 * 1024


def post(body: bytes) -> int:
    request = urllib.request.Request(
        URL + "/graphql", data=body, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def document(text: str) -> bytes:
    return json.dumps({"query": text}).encode()


def fill(pattern: str, size: int) -> str:
    return pattern * (size // len(pattern))


def fan_out(count: int) -> str:
    parts = ["query { ...F0 }"]
    for i in range(count):
        parts.append(f"fragment F{i} on Query {{ __typename ...F{i + 1} ...F{i + 1} }}")
    parts.append(f"fragment F{count} on Query {{ __typename }}")
    return " ".join(parts)


HOSTILE = {
    # Refused by the token limit before parsing.
    "fields_1mib_ms": document("{ " + fill("a ", MIB - 4096) + "}"),
    # Parsed, then refused by validation: one huge string.
    "string_1mib_ms": document('{ user(id: "' + fill("x", MIB - 4096) + '") { id } }'),
    # 2^40 fields once expanded.
    "fan_out_ms": document(fan_out(40)),
    # The worst documents within the body limit: parsed, then refused.
    "fields_budget_ms": document("{ " + fill("a ", MAX_BODY - 64) + "}"),
    "string_budget_ms": document('{ user(id: "' + fill("x", MAX_BODY - 64) + '") { id } }'),
}


def refusal_ms(body: bytes) -> float:
    times = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        status = post(body)
        times.append((time.perf_counter() - began) * 1000)
        if status >= 500:
            sys.exit(f"a hostile document was answered {status}")
    return statistics.median(times)


def peak_rss_kib() -> int:
    with open(f"/proc/{PID}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def flood() -> dict:
    body = document('{ user(id: "' + fill("x", MIB - 4096) + '") { id } }')
    statuses = []

    def send():
        statuses.append(post(body))

    threads = [threading.Thread(target=send) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bad = [s for s in statuses if s >= 500 and s != 503]
    if bad or len(statuses) != 100:
        sys.exit(f"the flood got {bad or 'no answer'}")
    return {"flood_shed": statuses.count(503)}


for name, body in HOSTILE.items():
    print(f"RESULT {name}={refusal_ms(body):.1f}")
before = peak_rss_kib()
shed = flood()
print(f"RESULT rss_before_flood_mib={before // 1024}")
print(f"RESULT peak_rss_flood_mib={peak_rss_kib() // 1024}")
print(f"RESULT flood_shed={shed['flood_shed']}")
