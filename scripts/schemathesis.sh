#!/usr/bin/env bash
# The OpenAPI document against the live server: schemathesis (from PyPI,
# pinned, in a virtualenv under out/) generates requests for every
# operation from /openapi.json and checks every answer (status documented,
# schema, headers, content type, no 5xx, invalid input refused, valid input
# accepted, deleted resources gone). The server runs on a catalog of its own
# (database atelier_schemathesis, 200 products) on 127.0.0.1:3997.
# Expects `atelier cluster up` to have run. Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.32.5
venv=out/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$version"
fi
source scripts/local-catalog.sh atelier_schemathesis
"$bin" cluster up --reset >/dev/null
"$bin" load --products 200 --replace >/dev/null
mkdir -p out
# Writes carry the development token (every scope), in the environment only;
# the ignored_auth check's 401s must not lock the fuzzer out with 429s.
ATELIER_TOKEN=${ATELIER_TOKEN:-$("$bin" token local)}
export ATELIER_TOKEN
ATELIER_AUTH_FAILURES_BURST=1000000 ATELIER_ACCESS_LOG=false "$bin" serve --listen 127.0.0.1:3997 >out/schemathesis-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:3997/readyz >/dev/null && break; sleep 0.2; done
# The token must work, or the fuzzer would only ever see 401s on writes. The
# header goes to curl in a file, not on its command line.
auth=$(mktemp)
chmod 600 "$auth"
printf 'Authorization: Bearer %s\n' "$ATELIER_TOKEN" >"$auth"
status=$(curl -s -o /dev/null -w '%{http_code}' -H @"$auth" -H 'Content-Type: application/json' \
    -d '{"delta": 1, "reason": "schemathesis token check"}' http://127.0.0.1:3997/skus/1/movements)
rm -f "$auth"
[ "$status" = 201 ] || { echo "schemathesis: a write with ATELIER_TOKEN answered $status, not 201" >&2; exit 1; }
SCHEMATHESIS_HOOKS=scripts/schemathesis/hooks.py "$venv/bin/schemathesis" \
    --config-file scripts/schemathesis/schemathesis.toml \
    run http://127.0.0.1:3997/openapi.json \
    --checks all --max-examples "${ATELIER_SCHEMATHESIS_EXAMPLES:-25}" --workers 1 \
    --seed "${ATELIER_SCHEMATHESIS_SEED:-20261122}" --report junit --report-dir out/schemathesis
echo "schemathesis: no findings"
