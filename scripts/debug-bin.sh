#!/usr/bin/env bash
# Builds the debug `atelier` binary and prints its path (wherever cargo's
# target directory is). Used by local-catalog.sh and rehearsal.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet --bin atelier
echo "$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/atelier"
