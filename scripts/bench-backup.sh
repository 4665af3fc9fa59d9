#!/usr/bin/env bash
# What backups cost and how fast a restore is, at scale, on the local
# cluster (issue 20's figures for docs/benchmarks.md):
#
#   bin=target/release/atelier scripts/bench-backup.sh [PRODUCTS] [EVENTS]
#
# In a database of its own (atelier_bench_backup, PRODUCTS products,
# default 1,000,000): the load (WAL archived as it goes); a full backup's
# time and size; stock movements through HTTP (`atelier write-load`,
# EVENTS each, default 30,000, 64 clients) with archiving on, then off
# (archive_command emptied: WAL waits in pg_wal), then on again, sampling
# the archive's lag every second; a point-in-time restore to a moment in
# the middle of the last run, and how far before that moment it stopped;
# and a restore of everything archived, timed. Drops the database at the
# end. Expects `atelier cluster up` to have run. Not in the test command:
# it takes about fifteen minutes at the default size.
set -euo pipefail
cd "$(dirname "$0")/.."
products=${1:-1000000}
events=${2:-30000}
source scripts/local-catalog.sh atelier_bench_backup
primary=$ATELIER_ADMIN_PRIMARY_URL
superuser="host=127.0.0.1 port=54320 user=postgres dbname=postgres"
cluster_dir=$(dirname "$("$bin" cluster status | awk '$1 == "primary" { print $NF }')")
scratch=$cluster_dir/bench-restore
q() { psql "$1" -XAtqc "$2"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    [ -f "$scratch/postmaster.pid" ] && as_server "$pg_ctl" -D "$scratch" -m immediate stop >/dev/null 2>&1 || true
    [ -f "$scratch.log" ] && cp "$scratch.log" out/bench-backup-restored.log
    rm -rf "$scratch" "$scratch.log"
    psql "$superuser" -XAtqc "alter system reset archive_command" \
        -c "select pg_reload_conf()" >/dev/null || true
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"

"$bin" cluster up --reset >/dev/null
start=$(now)
"$bin" load --products "$products" --replace >/dev/null
echo "load of $products products (archiving on): $(since "$start") s"

start=$(now)
"$bin" backup run --type full
echo "full backup: $(since "$start") s wall, database $(q "$primary" "select pg_size_pretty(pg_database_size(current_database()))") of which is this catalog"

"$bin" serve --listen 127.0.0.1:3995 >out/bench-backup-server.log 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:3995/readyz >/dev/null && break; sleep 0.2; done

# The archive's lag each second: segments finished but not yet pushed, and
# seconds since a segment last reached the repository.
lag_sampler() {
    while :; do
        q "$primary" "select (select count(*) from pg_ls_archive_statusdir() where name like '%.ready'),
                             round(extract(epoch from now() - last_archived_time)::numeric, 1)
                      from pg_stat_archiver" | tr '|' ' '
        sleep 1
    done
}
run_load() {  # LABEL
    local lags=out/bench-backup-lag-$1.txt sampler
    lag_sampler >"$lags" &
    sampler=$!
    "$bin" write-load --server 127.0.0.1:3995 --events "$events" --concurrency 64 --lag-interval-ms 0 \
        | tee "out/bench-backup-write-$1.txt" | grep -E "movements/s|p50|p99" || true
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    echo "$1: archive lag, max over the run: $(sort -n -k1 "$lags" | tail -1 | awk '{print $1}') segments waiting (16 MiB each), $(sort -n -k2 "$lags" | tail -1 | awk '{print $2}') s since the last segment was pushed"
}
echo "--- stock movements, archiving on"
run_load on
echo "--- stock movements, archiving off (archive_command '')"
q "$superuser" "alter system set archive_command = ''" >/dev/null
q "$superuser" "select pg_reload_conf()" >/dev/null
run_load off
q "$superuser" "alter system reset archive_command" >/dev/null
q "$superuser" "select pg_reload_conf()" >/dev/null
echo "--- stock movements, archiving on again (the off run's WAL is pushed meanwhile)"
"$bin" write-load --server 127.0.0.1:3995 --events "$events" --concurrency 64 --lag-interval-ms 0 \
    >out/bench-backup-write-on2.txt &
loader=$!
sleep 10
target=$(q "$primary" "select clock_timestamp()")
wait "$loader"
grep -E "movements/s" out/bench-backup-write-on2.txt || true
echo "after the load: $("$bin" backup archive-now --primary-url "$superuser" --timeout-s 60)"

echo "--- point-in-time restore to $target (mid-load)"
"$bin" backup restore --to "$scratch" --target-time "$target" --port 54328
landed=$(sed -n 's/.*last completed transaction was at log time \(.*\)$/\1/p' "$scratch.log" | tail -1)
stopped=$(sed -n 's/.*recovery stopping before commit of transaction [0-9]*, time \(.*\)$/\1/p' "$scratch.log" | tail -1)
echo "landed: last commit replayed $landed, first commit not replayed $stopped"
cp "$scratch.log" out/bench-backup-restored-pitr.log
q "host=127.0.0.1 port=54328 user=postgres dbname=postgres" \
    "select 'last replayed commit ' || round(extract(epoch from (timestamptz '$target' - timestamptz '$landed')) * 1000, 1) || ' ms before the target; first skipped ' || round(extract(epoch from (timestamptz '${stopped:-$target}' - timestamptz '$target')) * 1000, 1) || ' ms after it'"
as_server "$pg_ctl" -D "$scratch" -m immediate stop >/dev/null
rm -rf "$scratch" "$scratch.log"

echo "--- restore of everything archived"
"$bin" backup restore --to "$scratch" --port 54328
as_server "$pg_ctl" -D "$scratch" -m immediate stop >/dev/null
rm -rf "$scratch" "$scratch.log"
"$bin" backup info | sed -n '/full backup/,/backup size/p' | tail -6
kill "$server"; server=
echo "done (the catalog stays in atelier_bench_backup; the next full backups carry it until it is dropped)"
