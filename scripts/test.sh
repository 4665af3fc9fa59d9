#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs PostgreSQL if missing,
# starts the local cluster (a primary and two logical replicas), then runs
# every unit and integration test against it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
cargo run --locked --quiet --bin atelier -- cluster up
cargo test --locked --workspace
mkdir -p out
scripts/jmeter-smoke.sh
