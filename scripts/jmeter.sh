#!/usr/bin/env bash
# Runs the JMeter plan headless against a running server and prints the
# per-group table (requests, throughput, mean, p50, p95, p99, max, errors).
#
#   scripts/jmeter.sh [-Jname=value ...]
#
# Exports fresh ids from the primary first (ATELIER_ADMIN_PRIMARY_URL). Any -J
# property of jmeter/atelier.jmx can be given: host, port, get_threads,
# get_iterations, post_threads, post_iterations, rampup. Results go to
# out/jmeter/results.jtl. Exits non-zero if any request failed. The POSTs'
# token is ATELIER_TOKEN, else the local cluster's development token; it
# reaches JMeter in a property file readable only by its owner, never on a
# command line.
# ATELIER_BIN names the atelier binary (default: cargo run, profile
# ATELIER_PROFILE or release).
set -euo pipefail
cd "$(dirname "$0")/.."
atelier() {
    if [ -n "${ATELIER_BIN:-}" ]; then "$ATELIER_BIN" "$@"; else cargo run --locked --quiet --profile "${ATELIER_PROFILE:-release}" --bin atelier -- "$@"; fi
}
scripts/ensure-jmeter.sh
mkdir -p out/jmeter
if [ -f out/jmeter/xstream-shim.jar ] && jmeter -v 2>/dev/null | grep -q "Version 2\."; then
    export JAVA_CLASSPATH="$PWD/out/jmeter/xstream-shim.jar"
fi
atelier export-ids --out out/jmeter/ids.csv --rows "${ATELIER_JMETER_IDS:-100000}"
token=${ATELIER_TOKEN:-$(atelier token local)}
secret=$(mktemp)
trap 'rm -f "$secret"' EXIT
chmod 600 "$secret"
printf 'token=%s\n' "$token" >"$secret"
rm -f out/jmeter/results.jtl
jmeter -n -t jmeter/atelier.jmx -l out/jmeter/results.jtl -j out/jmeter/jmeter.log -q "$secret" \
    -Jids="$PWD/out/jmeter/ids.csv" \
    -Jjmeter.save.saveservice.output_format=csv \
    -Jjmeter.save.saveservice.print_field_names=true \
    "$@"
atelier jtl-summary --fail-on-error out/jmeter/results.jtl
