#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs PostgreSQL and Chromium
# (for the real-browser test) if missing,
# checks formatting and lints, checks terraform/ (parse, variables,
# templates, checkov), checks deploy/monitoring/ with promtool (config,
# alert rules and their unit tests, the dashboard's queries; installs
# Debian's Prometheus if missing), starts the local cluster (a primary and two
# logical replicas), then runs every unit and integration test against it,
# then the OpenAPI document against the live server (schemathesis), the
# brief's full JMeter plan on the demo catalog (release build; 0 errors
# required), the restore drill (a backup, writes, a
# point-in-time restore and the replicas following it; it says why it
# skips without pgbackrest), the multi-host rehearsal of the deploy/
# scripts in network namespaces, and the failover rehearsal of the Patroni
# topology (a killed, a frozen and a cut-off primary, and a switchover;
# both root only; they say why they skip).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
scripts/ensure-chromium.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
scripts/terraform-check.sh
scripts/monitoring-check.sh
cargo run --locked --quiet --bin atelier -- cluster up
cargo test --locked --workspace
mkdir -p out
scripts/schemathesis.sh
scripts/jmeter-full.sh
scripts/restore-drill.sh
scripts/rehearsal.sh
scripts/failover-rehearsal.sh 1
