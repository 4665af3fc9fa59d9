#!/usr/bin/env bash
# CI's JMeter run: the brief's plan at full size (its defaults: two GET
# groups of 128 threads x 500, a POST group of 64 x 250, 144,000 requests)
# against the demo catalog (3,000 products, in its own database
# atelier_jmeter) served by `atelier serve` with its defaults on
# 127.0.0.1:3999. Fails on any error: 320 clients at once are concurrency
# to be served, not an overload to refuse. Prints the per-group table and
# the server's admission figures. Expects `atelier cluster up` to have run.
# Part of the README's test command. Runs the release binary (built here
# unless bin= names one): the plan measures the server, and a debug build
# spends the shared cores on itself (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${bin:-$(scripts/build-bin.sh release)}
source scripts/local-catalog.sh atelier_jmeter
"$bin" cluster up --reset >/dev/null
"$bin" load --products 3000 --replace >/dev/null
mkdir -p out
"$bin" serve --listen 127.0.0.1:3999 >out/jmeter-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:3999/readyz >/dev/null && break; sleep 0.2; done
status=0
ATELIER_BIN="$bin" ATELIER_JMETER_IDS=3000 scripts/jmeter.sh -Jport=3999 "$@" || status=$?
curl -s http://127.0.0.1:3999/metrics | grep -E '^atelier_(admission_(refused_total|queue_seconds_(count|sum|bucket))|requests_shed_total|read_deadline_expiries_total|write_deadline_expiries_total|read_fallbacks_total)' || true
[ "$status" = 0 ] || { echo "jmeter: 0 passed, 1 failed"; exit "$status"; }
echo "jmeter: 1 passed, 0 failed"
