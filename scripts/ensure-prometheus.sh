#!/usr/bin/env bash
# Makes sure Debian's Prometheus is installed (prometheus and promtool):
# scripts/monitoring-check.sh checks deploy/monitoring/ with promtool, and
# the rehearsal runs Prometheus against its fleet. Installs it through
# deploy/lib.sh's ensure_packages when we are root (the package's own
# service is not started), else says what to run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null && command -v prometheus >/dev/null && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "Prometheus is missing: sudo apt-get install -y --no-install-recommends prometheus" >&2
    exit 1
fi
# shellcheck source=../deploy/lib.sh
set --  # deploy/lib.sh reads the arguments as its own
source deploy/lib.sh
ensure_packages prometheus
