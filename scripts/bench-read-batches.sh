#!/usr/bin/env bash
# Issue 26's JMeter figures: the brief's full plan against the catalog
# already loaded in the local cluster's `atelier` database (for the
# targets: `atelier load --products 1000000 --replace` first), once per
# setting given, each on a freshly started server (cold cache):
#
#   scripts/bench-read-batches.sh "ATELIER_READ_BATCH_MAX=1" "" ...
#
# An argument is a space-separated list of VAR=value for `atelier serve`
# ("" is the defaults). For each run it prints the plan's table, then one
# line: errors, the p99s, and the read path's counters from /metrics
# (batches, attempt timeouts, fallbacks to the primary, the cache's hits
# and fills, the mean wait at the read door). The server is `atelier serve` on 127.0.0.1:3999; JMeter
# sends to loopback only and stops by itself (the plan's fixed counts).
# Expects `atelier cluster up` to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${bin:-$(scripts/build-bin.sh release)}
mkdir -p out
server=
stop() { [ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=; }; }
trap stop EXIT
serve() {
    stop
    # shellcheck disable=SC2086 # the setting is a list of words on purpose
    env $1 "$bin" serve --listen 127.0.0.1:3999 >out/bench-read-batches-server.log 2>&1 &
    server=$!
    for _ in $(seq 150); do curl -sf http://127.0.0.1:3999/readyz >/dev/null && return 0; sleep 0.2; done
    echo "bench-read-batches: the server did not get ready" >&2
    exit 1
}
counters() {
    curl -s http://127.0.0.1:3999/metrics | awk '
        /^atelier_read_batches_total / { b = $2 } /^atelier_reads_batched_total / { r = $2 }
        /^atelier_read_attempt_timeouts_total / { t = $2 } /^atelier_read_fallbacks_total / { f = $2 }
        /^atelier_cache_hits_total / { h = $2 } /^atelier_cache_misses_total / { m = $2 }
        /^atelier_cache_fills_total / { fl = $2 } /^atelier_cache_fills_refused_total / { fr = $2 }
        /^atelier_admission_queue_seconds_sum\{queue="read"\}/ { ws = $2 } /^atelier_admission_queue_seconds_count\{queue="read"\}/ { wc = $2 }
        END { printf "%d reads in %d batches; %d attempt timeouts; %d fallbacks; cache hits %.0f%% (%d fills kept, %d refused); mean door wait %.1f ms", r, b, t, f, 100 * h / (h + m + 1e-9), fl, fr, 1000 * ws / (wc + 1e-9) }'
}
for setting in "$@"; do
    echo "== ${setting:-defaults}"
    serve "$setting"
    status=0
    ATELIER_BIN=$bin ATELIER_JMETER_IDS=100000 scripts/jmeter.sh -Jport=3999 >out/bench-read-batches-run.txt 2>&1 || status=$?
    grep -E '^(CPU|\|)' out/bench-read-batches-run.txt || true
    p99=$(awk -F'|' '/^\| (GET|POST)/ { gsub(/ /, "", $8); printf "%s%s", sep, $8; sep = " / " }' out/bench-read-batches-run.txt)
    echo "result: jmeter exit $status; p99 ms (detail / styles / POST) $p99; $(counters)"
    stop
done
