# The rehearsal's fault steps (4 to 6 of scripts/rehearsal.sh's list),
# sourced by it once the fleet is up and steps 1 to 3 have passed: every
# name here is that script's.

# --- 4. an app server dies mid-run ------------------------------------------------

app1_lines() { grep -c "upstream=[^ ]*${addr[app1]}:3000" "$access_log" || true; }
upstreams=$dir/lb/nginx/atelier-upstreams.conf
wait_upstream() { # $1 app, $2 "down" or "up"
    for _ in $(seq 100); do
        if [ "$2" = down ]; then grep -q "server $1:3000 down" "$upstreams" && return 0
        else grep -q "server $1:3000 max_fails" "$upstreams" && return 0; fi
        sleep 0.1
    done
    fail "the balancer did not mark $1 $2 within 10 s"
}
mkdir -p "$dir/out"
say "4. GETs at 200/s for 24 s through the balancer; app1 is killed at 4 s and restarted at 12 s"
client "$bin" stress --server "${addr[lb]}:80" --routes product --rates 200 --step-seconds 24 \
    --out-dir "$dir/out" --fail-on-error >"$dir/stress-app.log" 2>&1 &
load=$!
sleep 4
pids=$(ip netns pids atl-app1)
kill -KILL $pids
wait_upstream "${addr[app1]}" down
sleep 1.5
lines_down=$(app1_lines)
sleep 4
[ "$(app1_lines)" = "$lines_down" ] || fail "the balancer still sends to app1 after marking it down"
provision app1 >"$dir/restart-app1.log"
wait_upstream "${addr[app1]}" up
wait "$load" || { cat "$dir/stress-app.log" >&2; fail "GETs failed while app1 was down"; }
sleep 1.5
[ "$(app1_lines)" -gt "$lines_down" ] || fail "app1 got no traffic after its restart"
grep "GET" "$dir/stress-app.log" | head -1
say "4. app1 killed: no GET lost, no request sent to it while down, traffic again after restart"

# --- 5. a replica stops and comes back --------------------------------------------

say "5. replica1 stopped; reads and writes go on through the balancer"
stop_postgres replica1 # its sockets live in replica1's namespace; pg_ctl only signals
# Reads through plain HTTP (the load generator speaks no TLS), writes
# through HTTPS at the same time.
client "$bin" stress --server "${addr[lb]}:80" --routes product,styles --rates 50 --step-seconds 4 \
    --out-dir "$dir/out" --fail-on-error >"$dir/stress-replica.log" 2>&1 &
reads=$!
for i in $(seq 40); do
    expect 201 "movement $i while replica1 is down" -H @"$dir/auth-header" -H 'Content-Type: application/json' \
        -d '{"delta":1,"reason":"rehearsal"}' "$lb_url/skus/$sku/movements"
    sleep 0.1
done
wait "$reads" || { cat "$dir/stress-replica.log" >&2; fail "reads failed while replica1 was down"; }
grep -E "^(GET|POST)" "$dir/stress-replica.log"
# It comes back as a replaced host: an empty disk, the same subscription
# name. Its predecessor's slot is still on the primary, and creating the
# new subscription's slot would fail on it: replica.sh must drop it (no one
# streams from it) and copy the read model anew.
rm -rf "$dir/replica1/postgres"
provision replica1 >"$dir/restart-replica1.log" || { cat "$dir/restart-replica1.log" >&2; fail "the replaced replica1 did not provision"; }
grep -q "dropped the slot atelier_replica1" "$dir/restart-replica1.log" ||
    { cat "$dir/restart-replica1.log" >&2; fail "the replaced replica1 did not deal with its predecessor's slot"; }
# replica.sh returns only once the copy is complete: nothing left to wait for.
[ "$(on replica1 runuser -u postgres -- psql -X -Atq -h "$dir/replica1/run" -d atelier -c \
    "select count(*) from pg_subscription_rel where srsubstate <> 'r'")" = 0 ] ||
    fail "the replaced replica1's script returned before its initial copy was complete"
"$bin" check
say "5. replica1 replaced (empty disk, same name): its old slot dropped, the read model copied, check is clean"

# --- 6. the primary's disk is lost; a new primary comes from the backups -----

say "6. the primary's data directory is lost; primary.sh restores it from the backup repository"
primary_sql() { on primary runuser -u postgres -- psql -X -Atq -h "$dir/primary/run" -d atelier -c "$1"; }
expect 201 "a movement before the loss" -H @"$dir/auth-header" -H 'Content-Type: application/json' \
    -d '{"delta":3,"reason":"rehearsal: archived"}' "$lb_url/skus/$sku/movements"
archived_qty=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["quantity"])' "$dir/body")
# Its WAL reaches the repository (a quiet primary switches segments every
# archive_timeout; here at once).
runuser -u postgres -- "$bin" backup archive-now --primary-url "$(socket_url primary postgres)" --timeout-s 20 ||
    fail "the primary's WAL never reached the repository"
# One more, acknowledged but not yet archived when the disk goes: what a
# total loss can cost, at most archive_timeout of writes.
expect 201 "a movement after the last archived segment" -H @"$dir/auth-header" -H 'Content-Type: application/json' \
    -d '{"delta":4,"reason":"rehearsal: not archived"}' "$lb_url/skus/$sku/movements"
client "$bin" stress --server "${addr[lb]}:80" --routes product --rates 50 --step-seconds 30 \
    --out-dir "$dir/out" --fail-on-error >"$dir/stress-restore.log" 2>&1 &
reads=$!
sleep 1
runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" \
    -D "$dir/primary/postgres" stop -m immediate >/dev/null
rm -rf "$dir/primary/postgres"
lost_at=$SECONDS
on primary env ATELIER_RESTORE_FROM_BACKUP=latest "${common[@]}" ATELIER_LISTEN_ADDRESS="${addr[primary]}" \
    ATELIER_APP_ADDRESSES="$apps" ATELIER_REPLICA_ADDRESSES="$replicas" \
    ATELIER_OWNER_PASSWORD="$owner_pw" ATELIER_WRITER_PASSWORD="$writer_pw" \
    ATELIER_REPLICATOR_PASSWORD="$replicator_pw" ATELIER_PGBACKREST_CONFIG="$dir/primary/pgbackrest.conf" \
    ATELIER_BACKUP_REPO_PATH="$dir/backup-repo" deploy/primary.sh --no-systemd >"$dir/restore-primary.log"
restored_in=$((SECONDS - lost_at))
grep -q "restoring $dir/primary/postgres" "$dir/restore-primary.log" || fail "primary.sh did not restore from the repository"
restored_qty=$(primary_sql "select quantity from sku where id = $sku")
if [ "$restored_qty" = "$archived_qty" ]; then lost="the one movement acknowledged after the last archived segment was lost"
elif [ "$restored_qty" = "$((archived_qty + 4))" ]; then lost="nothing was lost"
else fail "sku $sku holds $restored_qty after the restore: neither $archived_qty nor $((archived_qty + 4))"; fi
# The replicas stream from a slot the restored primary no longer has, and
# may hold documents it lost: they copy the read model afresh from it,
# one at a time, each fenced from the apps meanwhile.
(
    export ATELIER_PRIMARY_URL_FROM_REPLICAS="host=${addr[primary]} port=5432 user=atelier_replicator password=$replicator_pw dbname=atelier connect_timeout=10"
    runuser -u postgres -- env ATELIER_ADMIN_PRIMARY_URL="$(socket_url primary postgres)" \
        ATELIER_ADMIN_REPLICA_URLS="$(socket_url replica1 postgres),$(socket_url replica2 postgres)" \
        "$bin" replicate --resync --timeout-s 120
) >"$dir/resync.log" 2>&1 || { cat "$dir/resync.log" >&2; fail "the replicas did not resync from the restored primary"; }
tail -1 "$dir/resync.log"
wait "$reads" || { cat "$dir/stress-restore.log" >&2; fail "reads failed while the primary was lost and restored"; }
grep -E "^GET" "$dir/stress-restore.log"
expect 201 "a movement after the restore" -H @"$dir/auth-header" -H 'Content-Type: application/json' \
    -d '{"delta":1,"reason":"rehearsal: after the restore"}' "$lb_url/skus/$sku/movements"
"$bin" check
say "6. primary restored from the repository in ${restored_in} s ($lost); no read failed; replicas resynced; writes work; check is clean"
