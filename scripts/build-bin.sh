#!/usr/bin/env bash
# Builds the `atelier` binary and prints its path (wherever cargo's target
# directory is):
#
#   scripts/build-bin.sh           debug (the tests' and tools' build)
#   scripts/build-bin.sh release   optimised, for this machine (what load tests measure)
#   scripts/build-bin.sh deploy    optimised, static x86_64-unknown-linux-musl: what
#                                  terraform uploads and the rehearsal's hosts run
#
# The deploy build links no C library at run time (the dependency tree has
# none), so it runs on any x86-64 Linux whatever its glibc; it is checked
# here to be a static x86-64 ELF executable before its path is printed.
# Its cost against the glibc build is measured in docs/benchmarks.md
# (scripts/bench-binaries.sh). Used by local-catalog.sh, rehearsal.sh,
# failover-rehearsal.sh and jmeter-full.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-debug}
deploy_target=x86_64-unknown-linux-musl
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
case $profile in
    debug) cargo build --locked --quiet --bin atelier ;;
    release) cargo build --locked --quiet --release --bin atelier ;;
    deploy)
        # The target's standard library comes with rustup (once per toolchain).
        if ! rustup target list --installed | grep -qx "$deploy_target"; then
            rustup target add "$deploy_target" >&2
        fi
        cargo build --locked --quiet --release --target "$deploy_target" --bin atelier
        built=$target_dir/$deploy_target/release/atelier
        python3 scripts/terraform-check/elfcheck.py "$built" >&2
        echo "$built"
        exit 0 ;;
    *) echo "build-bin.sh: unknown profile $profile (debug, release or deploy)" >&2; exit 2 ;;
esac
echo "$target_dir/$profile/atelier"
