#!/usr/bin/env bash
# How much WAL a replica's logical slot holds back while the catalog is
# loaded the way the first EC2 boot loads it: the replicas stay subscribed
# (`atelier load` without ATELIER_ADMIN_REPLICA_URLS, so nothing is
# detached) and decode and apply the whole load through their slots. The
# figure sizes max_slot_wal_keep_size (replication/primary.conf,
# deploy/patroni.sh): a slot that falls further behind than that is
# invalidated and its replica must be rebuilt.
#
#   scripts/bench-load-wal.sh [PRODUCTS]      # default 1,000,000
#
# Loads into a database of its own (atelier_walbench) on the local cluster,
# with max_slot_wal_keep_size lifted for the run (and put back after), and
# samples every 2 s: the WAL written since the start, and each slot's
# retained WAL (pg_current_wal_lsn() - restart_lsn) and wal_status. Prints
# the peaks and the time until both replicas confirmed all of it, or how far
# they got within CATCHUP_S seconds after the load (default 600). Expects
# `atelier cluster up` to have run. About 15 minutes at 1,000,000 products;
# the database is dropped on every node afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
products=${1:-1000000}
bin=${bin:-$(scripts/build-bin.sh release)}
source scripts/local-catalog.sh atelier_walbench
primary() { psql -XAtq "host=127.0.0.1 port=54320 user=postgres dbname=postgres" -c "$1"; }
"$bin" cluster up --reset >/dev/null
"$bin" load --products 1 --replace >/dev/null
kept=$(primary "show max_slot_wal_keep_size")
primary "alter system set max_slot_wal_keep_size = -1" >/dev/null
primary "select pg_reload_conf()" >/dev/null
restore() {
    kill "${loader:-}" 2>/dev/null || true
    primary "alter system reset max_slot_wal_keep_size" >/dev/null
    primary "select pg_reload_conf()" >/dev/null
    drop_everywhere
}
# The subscriptions (and with them the slots holding the WAL) and the database, on every node.
drop_everywhere() {
    local port n
    for n in 1 2; do
        port=$((54320 + n))
        psql -XAtq "host=127.0.0.1 port=$port user=postgres dbname=atelier_walbench" \
            -c "alter subscription atelier_atelier_walbench_replica$n disable" \
            -c "alter subscription atelier_atelier_walbench_replica$n set (slot_name = none)" \
            -c "drop subscription atelier_atelier_walbench_replica$n" >/dev/null 2>&1 || true
        psql -XAtq "host=127.0.0.1 port=$port user=postgres dbname=postgres" -c "drop database if exists atelier_walbench" >/dev/null
    done
    primary "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = 'atelier_walbench'" >/dev/null
    primary "drop database if exists atelier_walbench" >/dev/null
}
trap restore EXIT
mkdir -p out
start_lsn=$(primary "select pg_current_wal_lsn()")
started=$(date +%s.%N)
ATELIER_ADMIN_REPLICA_URLS= "$bin" load --products "$products" --replace >out/bench-load-wal.log 2>&1 &
loader=$!
peak_retained=0
peak_slot=
samples=out/bench-load-wal.samples
: >"$samples"
sample() {
    primary "select round(extract(epoch from now())::numeric, 1),
                    pg_wal_lsn_diff(pg_current_wal_lsn(), '$start_lsn')::bigint,
                    slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
                    coalesce(wal_status, '-')
               from pg_replication_slots
              where database = 'atelier_walbench' and slot_type = 'logical'" | tee -a "$samples"
}
loaded=
caught_up=
catchup_s=${CATCHUP_S:-600}
deadline=$(( $(date +%s) + 3600 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    while IFS='|' read -r _ _ slot retained status; do
        [ -n "$slot" ] || continue
        [ "$status" = lost ] && { echo "bench-load-wal: slot $slot was invalidated" >&2; exit 1; }
        if [ "$retained" -gt "$peak_retained" ]; then peak_retained=$retained; peak_slot=$slot; fi
    done < <(sample)
    if [ -z "$loaded" ] && ! kill -0 $loader 2>/dev/null; then
        wait $loader || { echo "bench-load-wal: the load failed (out/bench-load-wal.log)" >&2; exit 1; }
        loaded=$(date +%s.%N)
        end_lsn=$(primary "select pg_current_wal_lsn()")
        deadline=$(( $(date +%s) + catchup_s ))
    fi
    if [ -n "$loaded" ]; then
        # Caught up: every slot has confirmed the WAL the load wrote.
        behind=$(primary "select count(*) from pg_replication_slots
                           where database = 'atelier_walbench' and slot_type = 'logical'
                             and confirmed_flush_lsn < '$end_lsn'")
        [ "$behind" = 0 ] && { caught_up=$(date +%s.%N); break; }
    fi
    sleep 2
done
[ -n "$loaded" ] || { echo "bench-load-wal: the load did not finish within an hour" >&2; exit 1; }
wal=$(primary "select pg_wal_lsn_diff('$end_lsn', '$start_lsn')::bigint")
confirmed=$(primary "select string_agg(slot_name || ' ' || (pg_wal_lsn_diff(confirmed_flush_lsn, '$start_lsn')::bigint / 1048576) || ' MiB', ', ')
                       from pg_replication_slots where database = 'atelier_walbench' and slot_type = 'logical'")
mib() { echo $(( $1 / 1048576 )); }
printf 'bench-load-wal: %s products; load %.1f s; WAL written %s MiB; peak retained by one slot %s MiB (%s); max_slot_wal_keep_size is %s\n' \
    "$products" "$(echo "$loaded - $started" | bc)" "$(mib "$wal")" "$(mib "$peak_retained")" "$peak_slot" "$kept"
if [ -n "$caught_up" ]; then
    printf 'bench-load-wal: replicas confirmed all of it %.1f s after the load\n' "$(echo "$caught_up - $loaded" | bc)"
else
    echo "bench-load-wal: replicas NOT caught up ${catchup_s} s after the load; confirmed so far: $confirmed"
fi
