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
# It also prints where the machine's CPU went during the run: JMeter (its
# process tree, waited for), the atelier servers and PostgreSQL (their
# processes that lived through the run) and the rest, since here they all
# share the cores.
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
# CPU seconds used so far by each process name (fields 14 and 15 of each
# /proc/PID/stat), and by the whole machine (/proc/stat: all but idle and
# iowait), and by this shell's waited-for children (fields 16 and 17).
cpu_by_name() {
    for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null || true; done | awk -v hz="$(getconf CLK_TCK)" '
        { n = $0; sub(/^[0-9]+ \(/, "", n); sub(/\) .*/, "", n); gsub(/ /, "_", n); r = $0; sub(/.*\) /, "", r); split(r, a, " "); t[n] += a[12] + a[13] }
        END { for (k in t) printf "%s %.2f\n", k, t[k] / hz }'
}
machine_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
children_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($14 + $15) / hz }' "/proc/$$/stat"; }
rm -f out/jmeter/results.jtl
names0=$(cpu_by_name); busy0=$(machine_busy); kids0=$(children_cpu); wall0=$(date +%s.%N)
jmeter -n -t jmeter/atelier.jmx -l out/jmeter/results.jtl -j out/jmeter/jmeter.log -q "$secret" \
    -Jids="$PWD/out/jmeter/ids.csv" \
    -Jjmeter.save.saveservice.output_format=csv \
    -Jjmeter.save.saveservice.print_field_names=true \
    "$@"
names1=$(cpu_by_name); busy1=$(machine_busy); kids1=$(children_cpu); wall1=$(date +%s.%N)
awk -v b0="$busy0" -v b1="$busy1" -v k0="$kids0" -v k1="$kids1" -v w0="$wall0" -v w1="$wall1" -v cpus="$(nproc)" '
    FNR == NR { before[$1] = $2; next }
    { used[$1] = $2 - before[$1] }
    END {
        busy = b1 - b0; jm = k1 - k0; srv = used["atelier"]; pg = used["postgres"]
        printf "CPU during the run (%.0f s on %d cores, %.0f CPU-seconds): busy %.0f; JMeter %.0f (%.0f%%), atelier %.0f (%.0f%%), PostgreSQL %.0f (%.0f%%), the rest %.0f\n",
            w1 - w0, cpus, (w1 - w0) * cpus, busy, jm, 100 * jm / busy, srv, 100 * srv / busy, pg, 100 * pg / busy, busy - jm - srv - pg
    }' <(echo "$names0") <(echo "$names1")
atelier jtl-summary --fail-on-error out/jmeter/results.jtl
