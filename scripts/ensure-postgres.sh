#!/usr/bin/env bash
# Makes sure PostgreSQL 15+ server binaries are installed (Debian/Ubuntu).
# Installs postgresql-15 with apt when missing and we are root; otherwise
# says exactly what to run. Does not create or start Debian's own "main"
# cluster: `atelier cluster up` runs its own.
set -euo pipefail
have_server() {
    [ -n "${ATELIER_PG_BIN:-}" ] && [ -x "$ATELIER_PG_BIN/postgres" ] && return 0
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$bin" ] || continue
        version=$(basename "$(dirname "$(dirname "$bin")")")
        [ "$version" -ge 15 ] 2>/dev/null && return 0
    done
    return 1
}
if have_server && command -v psql >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL 15 server binaries are missing. Install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y postgresql-15 postgresql-client-15" >&2
    exit 1
fi
echo "installing PostgreSQL 15 from Debian's packages..."
mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql-15 postgresql-client-15 >/dev/null
have_server || { echo "postgresql-15 installed but no server binary found" >&2; exit 1; }
