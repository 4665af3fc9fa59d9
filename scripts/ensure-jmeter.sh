#!/usr/bin/env bash
# Makes sure JMeter can run the plan: installs Debian's JMeter when missing
# and we are root (otherwise says what to run), and, for Debian's JMeter
# 2.13 with XStream >= 1.4.18, builds the shim in jmeter/xstream-shim (see
# the comment there) into out/jmeter/xstream-shim.jar. JMeter 5 needs no
# shim. scripts/jmeter.sh runs this first; the rehearsal runs it before its
# hosts lose the network.
set -euo pipefail
cd "$(dirname "$0")/.."
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1 is missing: sudo apt-get install -y $2" >&2
        exit 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
command -v jmeter >/dev/null || apt_install JMeter "jmeter" # (or put JMeter 5's bin/ on PATH)
if [ -f /usr/share/java/xstream.jar ] && jmeter -v 2>/dev/null | grep -q "Version 2\." \
    && [ ! -f out/jmeter/xstream-shim.jar ]; then
    command -v javac >/dev/null || apt_install "A Java compiler (for JMeter 2.13's shim)" default-jdk-headless
    mkdir -p out/jmeter
    rm -rf out/jmeter/shim && mkdir -p out/jmeter/shim
    javac -nowarn -cp /usr/share/java/xstream.jar -d out/jmeter/shim \
        jmeter/xstream-shim/com/thoughtworks/xstream/security/NoTypePermission.java
    (cd out/jmeter/shim && jar cf ../xstream-shim.jar .)
fi
