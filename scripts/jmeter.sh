#!/usr/bin/env bash
# Runs the JMeter plan headless against a running server and prints the
# per-group table (requests, throughput, mean, p50, p95, p99, max, errors).
#
#   scripts/jmeter.sh [-Jname=value ...]
#
# Exports fresh ids from the primary first (ATELIER_ADMIN_PRIMARY_URL). Any -J
# property of jmeter/atelier.jmx can be given: host, port, get_threads,
# get_iterations, post_threads, post_iterations, rampup. Results go to
# out/jmeter/results.jtl. Exits non-zero if any request failed.
# ATELIER_BIN names the atelier binary (default: cargo run, profile
# ATELIER_PROFILE or release).
set -euo pipefail
cd "$(dirname "$0")/.."
atelier() {
    if [ -n "${ATELIER_BIN:-}" ]; then "$ATELIER_BIN" "$@"; else cargo run --locked --quiet --profile "${ATELIER_PROFILE:-release}" --bin atelier -- "$@"; fi
}
command -v jmeter >/dev/null || {
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jmeter >/dev/null
    else echo "JMeter is missing: sudo apt-get install -y jmeter (or put JMeter 5's bin/ on PATH)" >&2; exit 1; fi
}
mkdir -p out/jmeter
# Debian's JMeter 2.13 with XStream >= 1.4.18 needs the shim in
# jmeter/xstream-shim (see the comment there); JMeter 5 does not.
if [ -f /usr/share/java/xstream.jar ] && jmeter -v 2>/dev/null | grep -q "Version 2\."; then
    if [ ! -f out/jmeter/xstream-shim.jar ]; then
        command -v javac >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless >/dev/null; }
        rm -rf out/jmeter/shim && mkdir -p out/jmeter/shim
        javac -nowarn -cp /usr/share/java/xstream.jar -d out/jmeter/shim \
            jmeter/xstream-shim/com/thoughtworks/xstream/security/NoTypePermission.java
        (cd out/jmeter/shim && jar cf ../xstream-shim.jar .)
    fi
    export JAVA_CLASSPATH="$PWD/out/jmeter/xstream-shim.jar"
fi
atelier export-ids --out out/jmeter/ids.csv --rows "${ATELIER_JMETER_IDS:-100000}"
rm -f out/jmeter/results.jtl
jmeter -n -t jmeter/atelier.jmx -l out/jmeter/results.jtl -j out/jmeter/jmeter.log \
    -Jids="$PWD/out/jmeter/ids.csv" \
    -Jjmeter.save.saveservice.output_format=csv \
    -Jjmeter.save.saveservice.print_field_names=true \
    "$@"
atelier jtl-summary --fail-on-error out/jmeter/results.jtl
