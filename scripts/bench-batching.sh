#!/usr/bin/env bash
# Issue 25's figures, in one run on the catalog already loaded in the local
# cluster's `atelier` database (for the targets: `atelier load --products
# 1000000 --replace` first):
#
#   scripts/bench-batching.sh [EVENTS]      # mixed events, default 500,000
#
#   1. pgbench, the single-movement function from 64 clients (30 s): the
#      database's ceiling for one commit per movement;
#   2. HTTP restocks from 64 clients (60,000), batching off
#      (ATELIER_MOVEMENT_BATCH_MAX=1), then with the defaults;
#   3. the mixed write load (70% sales, 30% restocks) with the defaults:
#      its duration, rate, latency and replication lag;
#   4. `atelier check`: differences on every node.
#
# Each server is `atelier serve` on 127.0.0.1:3996 with the defaults but
# the setting named; traffic to loopback only; every step is bounded by its
# event count. Expects `atelier cluster up` to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-500000}
bin=${bin:-$(scripts/build-bin.sh release)}
mkdir -p out
server=
stop() { [ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=; }; }
trap stop EXIT
serve() {
    stop
    env "$@" "$bin" serve --listen 127.0.0.1:3996 >out/bench-batching-server.log 2>&1 &
    server=$!
    for _ in $(seq 150); do curl -sf http://127.0.0.1:3996/readyz >/dev/null && return 0; sleep 0.2; done
    echo "bench-batching: the server did not get ready" >&2
    exit 1
}
batches() { curl -s http://127.0.0.1:3996/metrics | awk '/^atelier_movement_batches_total / {b=$2} /^atelier_movements_batched_total / {m=$2} END {printf "%d movements in %d batches", m, b}'; }
say() { echo "== $*"; }

say "1. pgbench, api_record_movement, 64 clients, 30 s"
scripts/bench-movements.sh 30 64 2>&1 | grep -E '^(tps|latency average|number of transactions actually processed)'

say "2a. HTTP restocks, 64 clients, batching off (ATELIER_MOVEMENT_BATCH_MAX=1)"
serve ATELIER_MOVEMENT_BATCH_MAX=1
"$bin" write-load --server 127.0.0.1:3996 --restock-only --events 60000 --concurrency 64 2>&1 | grep -vE '^\s*$'

say "2b. HTTP restocks, 64 clients, batching with the defaults"
serve
"$bin" write-load --server 127.0.0.1:3996 --restock-only --events 60000 --concurrency 64 2>&1 | grep -vE '^\s*$'
echo "batching: $(batches)"

say "3. the mixed write load, $events events, 64 clients, defaults"
serve
started=$(date +%s.%N)
"$bin" write-load --server 127.0.0.1:3996 --events "$events" --concurrency 64 2>&1 | grep -vE '^\s*$'
printf 'elapsed: %.1f s\n' "$(echo "$(date +%s.%N) - $started" | bc)"
echo "batching: $(batches)"
stop

say "4. atelier check"
"$bin" check 2>&1 | tail -3
