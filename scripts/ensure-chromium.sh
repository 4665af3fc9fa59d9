#!/usr/bin/env bash
# Makes sure Debian's Chromium and ChromeDriver are installed for the
# real-browser test (server/tests/api/browser.rs). Installs them with apt
# when missing and we are root; otherwise says exactly what to run. No
# browser is ever downloaded from anywhere but the Debian archive.
set -euo pipefail
chromium=${ATELIER_CHROMIUM:-/usr/bin/chromium}
chromedriver=${ATELIER_CHROMEDRIVER:-/usr/bin/chromedriver}
if [ -x "$chromium" ] && [ -x "$chromedriver" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium and ChromeDriver are missing. Install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
fi
echo "installing Chromium and ChromeDriver from Debian's packages..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
[ -x "$chromium" ] && [ -x "$chromedriver" ] || { echo "chromium installed but $chromium or $chromedriver is missing" >&2; exit 1; }
