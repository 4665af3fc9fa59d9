#!/usr/bin/env bash
# Builds the `atelier` binary and prints its path (wherever cargo's target
# directory is): debug by default, `scripts/debug-bin.sh release` for the
# optimised one (what load tests measure). Used by local-catalog.sh,
# rehearsal.sh and jmeter-full.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-debug}
case $profile in
    debug) cargo build --locked --quiet --bin atelier ;;
    release) cargo build --locked --quiet --release --bin atelier ;;
    *) echo "debug-bin.sh: unknown profile $profile (debug or release)" >&2; exit 2 ;;
esac
echo "$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/$profile/atelier"
