#!/usr/bin/env bash
# CI's JMeter check: the real plan, tiny, against the local cluster. Loads a
# 2,000-product catalog into its own database (atelier_jmeter), serves it on
# 127.0.0.1:3999, runs jmeter/atelier.jmx with a few threads, and fails if
# any request failed. Expects `atelier cluster up` to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-catalog.sh atelier_jmeter
"$bin" cluster up --reset >/dev/null
"$bin" load --products 2000 --replace >/dev/null
"$bin" serve --listen 127.0.0.1:3999 >out/jmeter-smoke-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:3999/healthz >/dev/null && break; sleep 0.2; done
ATELIER_BIN="$bin" ATELIER_JMETER_IDS=2000 scripts/jmeter.sh -Jport=3999 \
    -Jget_threads=8 -Jget_iterations=25 -Jpost_threads=4 -Jpost_iterations=25 -Jrampup=1
echo "jmeter: 1 passed, 0 failed"
