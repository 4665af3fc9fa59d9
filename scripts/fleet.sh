# Hosts as network namespaces, for the rehearsals: sourced, never run.
# shellcheck shell=bash
#
# The caller sets, before sourcing:
#   fleet    a short name for messages and out/<fleet>/ (e.g. failover)
#   prefix   the namespaces' prefix (e.g. atf): hosts are <prefix>-<host>
#   net      the /24's first three octets (e.g. 10.78.0)
#   dir      where the hosts' data lives (removed at the end)
#   hosts    every host's name; addr: host -> address
# and gets: say, skip, fail; fleet_preflight; fleet_network; on HOST CMD...;
# stop_host; teardown (the EXIT trap: logs to out/<fleet>/ on failure, then
# everything removed); remove_everything.

fleet_started=$SECONDS
# A command that stops the script under set -e: where, for the teardown.
trap 'fleet_error="line $LINENO: $BASH_COMMAND (exit $?)"' ERR
say() { echo "[$fleet $((SECONDS - fleet_started))s] $*"; }
skip() { echo "$fleet: skipped: $*"; exit 0; }
# The reason is said again at the very end of the teardown, after the logs,
# so that the last lines of a long output (all a CI summary may keep) say it.
fail() {
    echo "$fleet: $*" >&2
    [ -d "$dir" ] && echo "$*" >>"$dir/fleet-failure"
    exit 1
}

fleet_preflight() {
    [ "$(id -u)" = 0 ] || skip "needs root (network namespaces; PostgreSQL runs as the postgres user)"
    command -v ip >/dev/null || skip "no ip command (Debian package iproute2)"
    ip netns add "$prefix-probe" 2>/dev/null || skip "this machine does not allow network namespaces"
    ip netns del "$prefix-probe"
}

# Stops every process of host $1: its PostgreSQL first with a fast
# shutdown when it has one (data safe), then TERM, then KILL.
stop_host() {
    local h=$1 pids
    ip netns list | grep -qw "$prefix-$h" || return 0
    if [ -f "$dir/$h/postgres/postmaster.pid" ]; then
        runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" \
            -D "$dir/$h/postgres" stop -m fast -t 20 >/dev/null 2>&1 || true
    fi
    pids=$(ip netns pids "$prefix-$h")
    [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 50); do
        [ -z "$(ip netns pids "$prefix-$h")" ] && return 0
        sleep 0.1
    done
    pids=$(ip netns pids "$prefix-$h")
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

remove_everything() {
    for h in "${hosts[@]}"; do stop_host "$h"; done
    for h in "${hosts[@]}" net; do
        if ip netns list | grep -qw "$prefix-$h"; then ip netns del "$prefix-$h"; fi
    done
    rm -rf "$dir"
}

teardown() {
    local status=$?
    set +e
    if [ "$status" != 0 ] && [ -d "$dir" ]; then
        rm -rf "out/$fleet" && mkdir -p "out/$fleet"
        for h in "${hosts[@]}"; do
            [ -d "$dir/$h" ] || continue
            find "$dir/$h" -maxdepth 3 -name '*.log' | while read -r log; do
                cp "$log" "out/$fleet/$h-$(basename "$log")"
            done
        done
        # The script's own logs of each step (e.g. second-run-replica1.log).
        for log in "$dir"/*.log; do
            [ -f "$log" ] && cp "$log" "out/$fleet/step-$(basename "$log")"
        done
        echo "$fleet: FAILED after $((SECONDS - fleet_started)) s; logs in out/$fleet/" >&2
        for log in "out/$fleet"/*.log; do
            [ -f "$log" ] || continue
            echo "--- $log (last 15 lines)" >&2
            tail -n 15 "$log" >&2
        done
        echo "$fleet: FAILED after $((SECONDS - fleet_started)) s (logs above, whole in out/$fleet/): $(
            cat "$dir/fleet-failure" 2>/dev/null || echo "${fleet_error:-exit $status}")" >&2
    fi
    if [ "${ATELIER_REHEARSAL_KEEP:-0}" = 1 ]; then
        echo "$fleet: left running (ATELIER_REHEARSAL_KEEP=1); run this script again to clean up" >&2
        exit "$status"
    fi
    remove_everything
    exit "$status"
}

# A bridge in a namespace of its own (the machine's firewall never sees the
# traffic), and each host on it with its own address.
fleet_network() {
    say "network $net.0/24: ${hosts[*]}"
    ip netns add "$prefix-net"
    ip -n "$prefix-net" link add br0 type bridge
    ip -n "$prefix-net" link set br0 up
    ip -n "$prefix-net" link set lo up
    for h in "${hosts[@]}"; do
        ip netns add "$prefix-$h"
        ip link add "$prefix-$h" netns "$prefix-net" type veth peer name eth0 netns "$prefix-$h"
        ip -n "$prefix-net" link set "$prefix-$h" master br0 up
        ip -n "$prefix-$h" addr add "${addr[$h]}/24" dev eth0
        ip -n "$prefix-$h" link set eth0 up
        ip -n "$prefix-$h" link set lo up
    done
}

# Runs a command on host $1, with that host's data directory.
on() { local h=$1; shift; ip netns exec "$prefix-$h" env ATELIER_DATA_DIR="$dir/$h" "$@"; }

secret() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
