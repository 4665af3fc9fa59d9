#!/usr/bin/env bash
# Serves the demo catalog (3,000 products, database atelier_binaries) with
# each binary given, one after the other, and measures the same reads
# against each with oha (closed loop, 64 connections, 10 s per route):
#
#   scripts/bench-binaries.sh target/release/atelier target/x86_64-unknown-linux-musl/release/atelier
#
# Routes: one cached styles document (the server's own path: parsing,
# routing, the cache, writing), and styles documents of random products
# with the document cache off (every read goes to a replica: the database
# client and its allocations). Used to compare the deployed static musl
# build with the glibc one (docs/benchmarks.md). Expects `atelier cluster
# up` to have run; oha from `cargo install oha --locked`. Traffic goes to
# 127.0.0.1 only and every run stops after 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
command -v oha >/dev/null || { echo "bench-binaries: needs oha (cargo install oha --locked)" >&2; exit 2; }
bin=$1
source scripts/local-catalog.sh atelier_binaries
"$bin" cluster up --reset >/dev/null
"$bin" load --products 3000 --replace >/dev/null
mkdir -p out
url=http://127.0.0.1:3998
for candidate in "$@"; do
    for cache in on off; do
        cache_bytes=$([ $cache = on ] && echo 67108864 || echo 0)
        ATELIER_CACHE_BYTES=$cache_bytes "$candidate" serve --listen 127.0.0.1:3998 >out/bench-binaries-server.log 2>&1 &
        server=$!
        for _ in $(seq 100); do curl -sf $url/readyz >/dev/null && break; sleep 0.2; done
        if [ $cache = on ]; then
            target=(--no-tui -c 64 -z 10s "$url/products/2999/styles")
        else
            target=(--no-tui -c 64 -z 10s --rand-regex-url "$url/products/[12][0-9]{3}/styles")
        fi
        curl -sf "$url/products/2999/styles" >/dev/null
        summary=$(oha "${target[@]}")
        kill $server
        wait $server 2>/dev/null || true
        rps=$(awk '/Requests\/sec:/ {print $2}' <<<"$summary")
        p50=$(awk '/50.00% in/ {print $3 $4}' <<<"$summary")
        p99=$(awk '/99.00% in/ {print $3 $4}' <<<"$summary")
        codes=$(sed -n '/Status code distribution:/,/^$/p' <<<"$summary" | tail -n +2 | tr -s ' ' | paste -sd ';')
        echo "binary=$candidate cache=$cache req_per_s=$rps p50=$p50 p99=$p99 status=[$codes]"
    done
done
