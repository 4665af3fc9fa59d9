#!/usr/bin/env bash
# The fault table of docs/benchmarks.md, re-run: faults injected into the
# local cluster while a release server is under open-loop load.
#
#   scripts/fault-table.sh            # every scenario
#   scripts/fault-table.sh frozen     # the scenarios whose name contains "frozen"
#   FLOOD_CPUS=0/1 scripts/fault-table.sh flood
#                                     # the floods with the server on CPU 0 and
#                                     # oha on CPU 1 (taskset lists), so the
#                                     # generator cannot take the server's core
#
# Expects `atelier cluster up` and a loaded catalog (`atelier load --replace`)
# in database `atelier`; run as root or as the user who runs the cluster (it
# signals PostgreSQL's processes). Load comes from `atelier stress` (open
# loop: latency counts from each request's scheduled send time, so a stall
# shows in full), and, for the connection flood, from `oha` when installed
# (cargo install oha). Each scenario writes its table under out/faults/ and
# ends with the cluster running and `atelier check` clean.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${1:-}
bin=${ATELIER_BIN:-target/release/atelier}
[ -n "${ATELIER_BIN:-}" ] || cargo build --locked --quiet --release --bin atelier
out=out/faults
mkdir -p "$out"
port=3100
addr=127.0.0.1:$port
pg_bin=${ATELIER_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}

# The data directory of a node, from `atelier cluster status`.
data_dir() { "$bin" cluster status 2>/dev/null | awk -v n="$1" '$1 == n { print $NF }'; }
# The postmaster and every child of a node.
pids() {
    local dir pm
    dir=$(data_dir "$1")
    pm=$(head -1 "$dir/postmaster.pid")
    echo "$pm" $(pgrep -P "$pm" || true)
}
freeze() { kill -STOP $(pids "$1") 2>/dev/null || true; echo "  $(date +%T.%3N) froze $1"; }
thaw() { kill -CONT $(pids "$1") 2>/dev/null || true; echo "  $(date +%T.%3N) thawed $1"; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
kill_node() { as_postgres "$pg_bin/pg_ctl" -D "$(data_dir "$1")" -m immediate -w stop >/dev/null; echo "  $(date +%T.%3N) killed $1"; }
start_node() { as_postgres "$pg_bin/pg_ctl" -D "$(data_dir "$1")" -l "$(data_dir "$1").log" -w start >/dev/null; echo "  $(date +%T.%3N) started $1"; }

server_pid=
# Commands that run the server and oha (taskset when FLOOD_CPUS is given).
server_run=()
oha_run=(oha)
serve() {
    # Another server on the address would answer every scenario in its
    # place (with its own settings), and this one would exit unseen.
    if curl -s -o /dev/null "http://$addr/healthz"; then echo "something already listens on $addr: stop it first" >&2; exit 1; fi
    ATELIER_ACCESS_LOG=false "${server_run[@]}" "$bin" serve --listen "$addr" "$@" >"$out/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || { cat "$out/server.log" >&2; echo "the server exited" >&2; exit 1; }
        curl -sf "http://$addr/healthz" >/dev/null && return
        sleep 0.1
    done
    echo "the server did not start" >&2; exit 1
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
cleanup() { for n in primary replica1 replica2; do thaw "$n" >/dev/null 2>&1 || true; done; stop_server; }
trap cleanup EXIT

stress() { "$bin" stress --server "$addr" --step-seconds "$1" --rates "$2" --routes "$3" --out-dir "$4"; }
metrics() { curl -s "http://$addr/metrics" | grep -E "^atelier_(read_|replica_|write_|requests_shed|pool_wait)" | grep -v " 0$" || true; }
ledger_rows() { psql "host=127.0.0.1 port=54320 user=postgres dbname=atelier" -Atc "select count(*) from stock_movement where reason = 'load test'"; }

# Floods URL $2 (label $1; oha's further flags after it) at 64 and then
# 3,000 connections, 10 s each, on the running server, and prints what
# each got and the ratio of their goodputs.
# Each run also says how much CPU the server and oha used per answer 200
# (the server's from /proc, oha's from bash's time): they share the cores,
# so a lower goodput at 3,000 with the server's cost per answer unchanged
# is the generator's share, not the server's.
flood() {
    local label=$1 url=$2 c file good good64=0 ticks0 ticks1 server_us server_us64=0 oha_s
    shift 2
    for c in 64 3000; do
        file="$out/flood-${label// /-}-$c.txt"
        ticks0=$(cpu_ticks "$server_pid")
        oha_s=$( { TIMEFORMAT='%U %S'; time "${oha_run[@]}" -c "$c" -z 10s --no-tui "$@" "$url" >"$file"; } 2>&1 | awk '{ print $1 + $2 }')
        ticks1=$(cpu_ticks "$server_pid")
        good=$(awk '/\[200\]/ { print $2 }' "$file")
        good=${good:-0}
        server_us=$(awk -v t=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" -v n="$good" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }')
        echo "  $label, $c connections: $good answered 200 in 10 s; p99 $(awk '/99.00%/ { print $3 " " $4; exit }' "$file"); $(grep -E '^ *\[[0-9]+\]' "$file" | tr -s ' ' | tr '\n' ';')"
        echo "    CPU per answer 200: server $server_us us, oha $(awk -v s="$oha_s" -v n="$good" 'BEGIN { printf "%.1f", (n > 0 ? s * 1e6 / n : 0) }') us"
        [ "$c" != 64 ] || { good64=$good; server_us64=$server_us; }
    done
    echo "  $label: goodput at 3,000 connections = $(awk -v a="$good" -v b="$good64" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')x that at 64; the server's CPU per answer $(awk -v a="$server_us" -v b="$server_us64" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')x"
}
# User and system CPU ticks a process has used (fields 14 and 15 of its stat).
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

scenario() {
    local name=$1
    [ -z "$only" ] || [[ "$name" == *"$only"* ]] || return 1
    echo "== $name"
}

if scenario "replica1 killed"; then
    serve
    ( sleep 3; kill_node replica1; sleep 6; start_node replica1 ) & fault=$!
    stress 15 500 product "$out/killed"
    wait "$fault"; metrics; stop_server
fi

if scenario "replica1 frozen 8 s"; then
    serve
    ( sleep 3; freeze replica1; sleep 8; thaw replica1 ) & fault=$!
    stress 15 500 product "$out/frozen-one"
    wait "$fault"; metrics; stop_server
fi

if scenario "both replicas frozen 5 s"; then
    serve
    ( sleep 3; freeze replica1; freeze replica2; sleep 5; thaw replica1; thaw replica2 ) & fault=$!
    stress 12 200 product "$out/frozen-both"
    wait "$fault"; metrics; stop_server
    echo "  again with ATELIER_READ_FALLBACK_PRIMARY=false"
    serve --read-fallback-primary false
    ( sleep 3; freeze replica1; freeze replica2; sleep 5; thaw replica1; thaw replica2 ) & fault=$!
    stress 12 200 product "$out/frozen-both-no-fallback"
    wait "$fault"; metrics; stop_server
fi

if scenario "primary frozen 5 s"; then
    serve
    before=$(ledger_rows)
    ( sleep 3; freeze primary; sleep 5; thaw primary ) & fault=$!
    stress 12 50 movement "$out/frozen-primary-writes" > "$out/frozen-primary-writes.txt" &
    writes=$!
    stress 12 300 product "$out/frozen-primary-reads"
    wait "$writes"; wait "$fault"
    cat "$out/frozen-primary-writes.txt" | grep "POST"
    sleep 2
    after=$(ledger_rows)
    accepted=$(grep -o "201: [0-9]*" "$out/frozen-primary-writes.txt" | head -1 | awk '{print $2}')
    echo "  movements answered 201: ${accepted:-0}; ledger rows added: $((after - before)) (a 503 whose outcome was unknown may have been applied too)"
    [ "$((after - before))" -ge "${accepted:-0}" ] || { echo "  an acknowledged write is missing" >&2; exit 1; }
    metrics; stop_server
fi

if scenario "connection flood"; then
    if command -v oha >/dev/null; then
        if [ -n "${FLOOD_CPUS:-}" ]; then
            server_run=(taskset -c "${FLOOD_CPUS%/*}")
            oha_run=(taskset -c "${FLOOD_CPUS#*/}" oha)
            echo "  the server on CPU ${FLOOD_CPUS%/*}, oha on CPU ${FLOOD_CPUS#*/}"
        fi
        serve
        id=$("$bin" export-ids --rows 1 --out /dev/stdout 2>/dev/null | sed -n 2p | cut -d, -f1)
        # One product (a cache hit after the first request), then ids drawn
        # over the whole catalog (mostly misses: the replicas answer).
        flood "one product" "http://$addr/products/$id"
        flood "any product" "http://$addr/products/[1-9][0-9]{5}" --rand-regex-url
        echo "  server peak memory: $(grep VmHWM /proc/$server_pid/status)"
        curl -s -o /dev/null -w "  afterwards: %{http_code} in %{time_total}s\n" "http://$addr/products/$id"
        stop_server
        server_run=(); oha_run=(oha)
    else
        echo "  oha is not installed (cargo install oha): skipped"
    fi
fi

if scenario "three times the sustainable rate"; then
    serve
    stress 10 "${SUSTAINABLE_RATE:-4000},$(( ${SUSTAINABLE_RATE:-4000} * 3 )),1000" product "$out/overload"
    echo "  server peak memory: $(grep VmHWM /proc/$server_pid/status)"
    metrics; stop_server
fi

echo "== consistency"
"$bin" check | tail -1
