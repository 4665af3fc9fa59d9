#!/usr/bin/env bash
# Makes sure PostgreSQL 15+ server binaries and pgBackRest (the WAL archive
# and backups of the local cluster's primary) are installed (Debian/Ubuntu).
# Installs postgresql-15 and pgbackrest with apt when missing and we are
# root; otherwise says exactly what to run (without pgbackrest the local
# cluster still runs, with archiving off). Does not create or start
# Debian's own "main" cluster: `atelier cluster up` runs its own.
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
if have_server && command -v psql >/dev/null && command -v pgbackrest >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if have_server && command -v psql >/dev/null; then
        echo "pgbackrest is missing: the local cluster runs without a WAL archive. Install it with:" >&2
        echo "    sudo apt-get install -y pgbackrest" >&2
        exit 0
    fi
    echo "PostgreSQL 15 server binaries are missing. Install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y postgresql-15 postgresql-client-15 pgbackrest" >&2
    exit 1
fi
echo "installing PostgreSQL 15 and pgBackRest from Debian's packages..."
mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 pgbackrest >/dev/null
have_server || { echo "postgresql-15 installed but no server binary found" >&2; exit 1; }
