#!/usr/bin/env bash
# From a fresh machine to a running service: installs PostgreSQL if missing,
# builds the release binary, starts a local primary and two replicas, loads
# the demo catalog if the database is empty, and serves on 127.0.0.1:3000.
# Extra arguments go to `atelier up` (e.g. --listen 0.0.0.0:3000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
exec cargo run --locked --release --quiet --bin atelier -- up "$@"
