#!/usr/bin/env bash
# One run, one table (issue 14): how close the read path comes to what this
# machine can do. Each HTTP row is driven by the same load generator (oha,
# closed loop, the same connections and duration) against:
#   - nginx serving the very same bytes from files (the HTTP limit);
#   - this service with the document cache warm, and with it off;
# and beside them pgbench runs the same primary-key lookup (and the same
# list query) on a replica (the database limit). Then the ratios the issue
# sets targets for, a latency-versus-rate sweep (`atelier stress`, which
# draws the plot), and a cross-check of `atelier stress` against
# `oha -q R --latency-correction` at one rate.
#
#   scripts/bench-ratios.sh
#
# Settings (environment): BENCH_PRODUCTS (100000; the catalog in database
# atelier_bench is loaded when its size differs), BENCH_SECONDS (15 per
# row), BENCH_CONNECTIONS (64), BENCH_PGBENCH_CLIENTS (16, the read pool's
# size), BENCH_RATE (1000: the list route's p99 target rate and the
# cross-check rate), BENCH_SWEEP (500,1000,2000,4000,8000).
# Results go to out/bench/ (ratios.md, the raw outputs, stress-*.svg).
# Everything here shares this machine's cores; read the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
products=${BENCH_PRODUCTS:-100000}
seconds=${BENCH_SECONDS:-15}
connections=${BENCH_CONNECTIONS:-64}
clients=${BENCH_PGBENCH_CLIENTS:-16}
rate=${BENCH_RATE:-1000}
sweep=${BENCH_SWEEP:-500,1000,2000,4000,8000}
# Product ids read: a hot set that fits the default cache (9,000 products'
# detail and styles documents: 30 MB at 100,000 products, measured).
lo=1000 hi=9999
out=out/bench
mkdir -p "$out"

command -v oha >/dev/null || cargo install --locked oha --version 1.16.0
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install -y nginx" >&2; exit 1; }
scripts/ensure-postgres.sh >/dev/null
cargo build --release --locked --quiet --bin atelier
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/atelier"
# shellcheck source=scripts/local-catalog.sh
source scripts/local-catalog.sh atelier_bench
export ATELIER_ACCESS_LOG=false

"$bin" cluster up >/dev/null
psql_on() { psql -X -q -At -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$1 user=postgres dbname=atelier_bench" "${@:2}"; }
have=$(psql_on 54320 -c "select count(*) from product" 2>/dev/null || echo 0)
if [ "$have" != "$products" ]; then
    echo "loading $products products into atelier_bench (has $have)"
    "$bin" load --products "$products" --replace | tail -3
fi
psql_on 54321 -c "vacuum analyze" >/dev/null

pids=()
www=$(mktemp -d /tmp/atelier-bench-www.XXXXXX)
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$www/nginx.pid" ] && kill "$(cat "$www/nginx.pid")" 2>/dev/null || true
    rm -rf "$www"
}
trap cleanup EXIT

# The same bytes as files, for nginx: each styles document of the hot set.
chmod 755 "$www"
mkdir -p "$www/styles"
psql_on 54321 -F $'\t' -c "select product_id, doc from product_styles where product_id between $lo and $hi" |
    while IFS=$'\t' read -r id doc; do printf '%s' "$doc" >"$www/styles/$id.json"; done
cat >"$www/nginx.conf" <<EOF
worker_processes 2;
pid $www/nginx.pid;
error_log $www/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/json;
    server {
        listen 127.0.0.1:3103;
        root $www;
        location ~ ^/products/([0-9]+)/styles\$ { try_files /styles/\$1.json =404; }
    }
}
EOF
nginx -c "$www/nginx.conf" -p "$www" -e "$www/error.log"

# The service twice: cache on (3101) and off (3102).
ATELIER_LISTEN=127.0.0.1:3101 "$bin" serve >"$out/serve-cache-on.log" 2>&1 &
pids+=($!)
ATELIER_LISTEN=127.0.0.1:3102 ATELIER_CACHE_BYTES=0 "$bin" serve >"$out/serve-cache-off.log" 2>&1 &
pids+=($!)
for port in 3101 3102 3103; do
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/products/$lo/styles" && break
        sleep 0.2
    done
done

# URL lists: the hot set's ids, and list pages near the start and at the
# deepest tenth of the catalog.
urls() { python3 -c "import sys; [print(sys.argv[1].format(i)) for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1)]" "$@"; }
pages=$(((products + 4) / 5))
for port in 3101 3102 3103; do
    urls "http://127.0.0.1:$port/products/{}/styles" $lo $hi >"$out/styles-$port.urls"
    urls "http://127.0.0.1:$port/products/{}" $lo $hi >"$out/detail-$port.urls"
    urls "http://127.0.0.1:$port/products?page={}&count=5" 1000 9999 >"$out/list-$port.urls"
    urls "http://127.0.0.1:$port/products?page={}&count=5" $((pages - pages / 10)) $pages >"$out/deep-$port.urls"
done

# One closed-loop oha row: name, URL file, [extra oha flags].
row() {
    local name=$1 file=$2
    shift 2
    oha --no-tui --output-format json -z "${seconds}s" -c "$connections" --urls-from-file "$file" "$@" \
        >"$out/$name.json" 2>"$out/$name.err"
    echo "$name oha $out/$name.json"
}
# One pgbench row: name, SQL (with :id / :off).
pgrow() {
    local name=$1
    printf '%s\n' "$2" >"$out/$name.sql"
    pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$out/$name.sql" \
        "host=127.0.0.1 port=54321 user=postgres dbname=atelier_bench" >"$out/$name.txt" 2>&1
    echo "$name pgbench $out/$name.txt"
}

warm() { oha --no-tui -z 3s -c "$connections" --urls-from-file "$1" >/dev/null 2>&1; }
{
    row nginx-styles "$out/styles-3103.urls"
    warm "$out/styles-3101.urls"
    row cache-on-styles "$out/styles-3101.urls"
    row cache-off-styles "$out/styles-3102.urls"
    warm "$out/detail-3101.urls"
    row cache-on-detail "$out/detail-3101.urls"
    row cache-off-detail "$out/detail-3102.urls"
    warm "$out/list-3101.urls"
    row cache-on-list "$out/list-3101.urls"
    row cache-off-list "$out/list-3102.urls"
    row cache-off-deep "$out/deep-3102.urls"
    pgrow pgbench-styles "\\set id random($lo, $hi)
select doc, version from api_product_styles where product_id = :id;"
    pgrow pgbench-list "\\set off random(5000, 49995)
select products_page(:off, 5);"
    # The list route at a fixed rate (open loop, corrected for coordinated
    # omission): the p99 target.
    row cache-off-deep-at-rate "$out/deep-3102.urls" -q "$rate" --latency-correction
    # Cross-check of the project's open-loop generator at the same rate.
    row cross-oha-styles "$out/styles-3102.urls" -q "$rate" --latency-correction
} >"$out/rows.txt"
"$bin" stress --server 127.0.0.1:3102 --routes styles --rates "$rate" --step-seconds "$seconds" \
    --out-dir "$out/cross-stress" >/dev/null
# Latency against rate, cache on and off (the plots).
"$bin" stress --server 127.0.0.1:3101 --routes product,styles,list --rates "$sweep" --step-seconds 5 \
    --out-dir "$out/sweep-cache-on" >/dev/null
"$bin" stress --server 127.0.0.1:3102 --routes product,styles,list --rates "$sweep" --step-seconds 5 \
    --out-dir "$out/sweep-cache-off" >/dev/null

python3 scripts/bench-ratios/table.py "$out" "$products" "$seconds" "$connections" "$clients" "$rate" | tee "$out/ratios.md"
