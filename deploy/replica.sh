#!/usr/bin/env bash
# Provisions one READ REPLICA host (Debian 12): PostgreSQL with the read
# model only, subscribed to the primary's publication. Idempotent. Run as root.
#
#   ATELIER_LISTEN_ADDRESS=10.0.3.11 ATELIER_APP_ADDRESSES=10.0.2.0/24 \
#   ATELIER_PRIMARY_ADDRESS=10.0.1.10 ATELIER_SUBSCRIPTION=atelier_replica1 \
#   ATELIER_OWNER_PASSWORD=... ATELIER_READER_PASSWORD=... ATELIER_REPLICATOR_PASSWORD=... \
#   deploy/replica.sh [--no-systemd]
#
# Settings (environment), beyond those of deploy/primary.sh:
#   ATELIER_PRIMARY_ADDRESS   the primary's private address (ATELIER_PRIMARY_PORT, default 5432);
#                             for a Patroni cluster, every database node, comma-separated
#   ATELIER_SUBSCRIPTION      this replica's subscription, unique per replica (it also names
#                             the replication slot on the primary), e.g. atelier_replica1
#   ATELIER_APP_ADDRESSES     app servers (reader)
#   ATELIER_OWNER_PASSWORD, ATELIER_READER_PASSWORD, and ATELIER_REPLICATOR_PASSWORD (how
#                             the subscription and the reconciliation log in to the primary)
#   ATELIER_RECONCILE_SECONDS how often to look for a new primary timeline (default 15)
#   ATELIER_SYNC_TIMEOUT      seconds to wait for the initial copy of every table (default 3600)
#   ATELIER_METRICS_DIR       node_exporter textfile directory (default $ATELIER_DATA_DIR/metrics)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for v in ATELIER_LISTEN_ADDRESS ATELIER_APP_ADDRESSES ATELIER_PRIMARY_ADDRESS ATELIER_SUBSCRIPTION \
         ATELIER_OWNER_PASSWORD ATELIER_READER_PASSWORD ATELIER_REPLICATOR_PASSWORD; do need "$v"; done
[ -x "$ATELIER_BIN" ] || die "no atelier binary at $ATELIER_BIN"
[[ "$ATELIER_SUBSCRIPTION" =~ ^[a-z_][a-z0-9_]*$ ]] || die "ATELIER_SUBSCRIPTION must be a plain SQL name"

install_postgres

# Beyond the operator and the owner (see postgres_node): the reader from the
# app servers only; the writer and the replicator never log in here.
postgres_node "$ATELIER_SOURCE/replication/replica.conf" <<HBA
$(hba_lines "$ATELIER_DATABASE" atelier_reader "$ATELIER_APP_ADDRESSES")
HBA

ensure_roles
ensure_database
migrate replica
# The subscription: created by the superuser (PostgreSQL 15 requires it),
# logging in to the primary as the replicator. copy_data first copies the
# documents there now, then streams every later change.
#
# Hosts boot together, and PostgreSQL 15 answers a subscription to a
# publication that does not exist yet with only a WARNING: the subscription
# would hold no tables and stay empty for ever. So: first wait until the
# primary publishes (failing here makes the caller retry the whole,
# idempotent, script), and after subscribing require that the
# subscription lists the tables, refreshing one an earlier run left empty.
sub=$ATELIER_SUBSCRIPTION
primary_conn="host=$ATELIER_PRIMARY_ADDRESS port=${ATELIER_PRIMARY_PORT:-5432} user=atelier_replicator dbname=$ATELIER_DATABASE connect_timeout=10"
# A Patroni cluster: the subscription follows whichever node is primary, and
# streams from the permanent slot Patroni keeps on both nodes (named after
# the subscription) instead of making its own.
create_slot=true
if [[ "$ATELIER_PRIMARY_ADDRESS" == *,* ]]; then
    primary_conn+=" target_session_attrs=read-write"
    create_slot=false
fi
# One statement on the primary, as the replicator.
primary_sql() { PGPASSWORD=$ATELIER_REPLICATOR_PASSWORD psql -X -Atq "$primary_conn" -c "$1"; }
published=$(primary_sql "select count(*) from pg_publication_tables where pubname = 'atelier_read_model'" 2>/dev/null || echo 0)
[ "${published:-0}" -gt 0 ] || die "the primary $ATELIER_PRIMARY_ADDRESS does not publish atelier_read_model yet"
if [ "$create_slot" = false ]; then
    # Patroni makes the permanent slot once the publication exists.
    slot=$(primary_sql "select count(*) from pg_replication_slots where slot_name = '$ATELIER_SUBSCRIPTION'" 2>/dev/null || echo 0)
    [ "${slot:-0}" = 1 ] || die "the primary has no permanent slot $ATELIER_SUBSCRIPTION yet (ATELIER_LOGICAL_SLOTS on the Patroni nodes)"
fi
if [ "$(node_psql -d "$ATELIER_DATABASE" -Atc "select count(*) from pg_subscription where subname = '$sub'")" = 0 ]; then
    if [ "$create_slot" = true ]; then
        # A replaced replica (a new host, the same subscription name) finds
        # the slot its predecessor left on the primary, and creating its own
        # would fail: drop it when no one streams from it (this replica
        # copies everything anew), refuse when someone does (two replicas
        # configured with one name).
        stale=$(primary_sql "select coalesce(bool_or(active)::text, 'none') from pg_replication_slots where slot_name = '$sub'")
        case $stale in
            none) ;;
            false)
                primary_sql "select pg_drop_replication_slot('$sub')" >/dev/null
                say "dropped the slot $sub a replaced replica left on the primary" ;;
            *) die "another replica streams from the slot $sub on the primary: give this one its own ATELIER_SUBSCRIPTION" ;;
        esac
    fi
    conninfo="$primary_conn password=$ATELIER_REPLICATOR_PASSWORD"
    node_psql -d "$ATELIER_DATABASE" -v sub_name="$sub" -v primary_conninfo="$conninfo" -v create_slot="$create_slot" \
        -f - <"$ATELIER_SOURCE/replication/subscription.sql"
    say "subscribed as $sub to $ATELIER_PRIMARY_ADDRESS"
fi
# How many tables this replica's subscription lists (those matching $1, if given).
subscription_tables() {
    node_psql -d "$ATELIER_DATABASE" -Atc "select count(*) from pg_subscription_rel r
        join pg_subscription s on s.oid = r.srsubid where s.subname = '$sub'${1:+ and $1}"
}
if [ "$(subscription_tables)" -lt "$published" ]; then
    node_psql -d "$ATELIER_DATABASE" -c "alter subscription \"$sub\" refresh publication with (copy_data = true)"
    say "subscription $sub refreshed: it listed fewer tables than the primary publishes"
fi
[ "$(subscription_tables)" -ge "$published" ] || die "subscription $sub lists $(subscription_tables) of $published published tables"
# The initial copy: every table copied and streaming ('r', ready) before
# this script reports the replica provisioned, within ATELIER_SYNC_TIMEOUT
# seconds (default 3600; a 1,000,000-product catalog copies in about a
# minute, docs/benchmarks.md). Until then the replica holds part of the
# catalog.
sync_timeout=${ATELIER_SYNC_TIMEOUT:-3600}
[[ "$sync_timeout" =~ ^[1-9][0-9]*$ ]] || die "ATELIER_SYNC_TIMEOUT must be a whole number of seconds"
copying() { subscription_tables "r.srsubstate <> 'r'"; }
copy_deadline=$(( $(date +%s) + sync_timeout ))
while [ "$(copying)" != 0 ]; do
    [ "$(date +%s)" -lt "$copy_deadline" ] || die "subscription $sub: $(copying) tables still copying after $sync_timeout s"
    sleep 1
done

# Reconciliation (`atelier reconcile`, tools/src/reconcile.rs): every
# ATELIER_RECONCILE_SECONDS it asks the primary for its timeline; once per
# new one (a failover, a restore) it compares this replica's documents with
# what the primary's write model builds and re-copies the replica, fenced,
# if they stay different. It logs in to the primary as the replicator (the
# subscription's own login; migration V11 lets it read the documents as
# built) and here as the superuser. Counts: $metrics_dir/atelier_reconcile.prom.
# Only beside a Patroni cluster, which fails over by itself; a single
# primary changes timeline only by a restore, which an operator follows with
# `atelier replicate --resync` (docs/operations.md).
if [ "$create_slot" = false ]; then
metrics_dir=${ATELIER_METRICS_DIR:-$ATELIER_DATA_DIR/metrics}
install -d -m 0755 -o postgres -g postgres "$metrics_dir"
reconcile_env=$ATELIER_DATA_DIR/reconcile.env
keep_slot=
[ "$create_slot" = false ] && keep_slot=--keep-slot
{
    echo "# Written by deploy/replica.sh; edits are lost on the next run."
    # Each host 3 s (the subscription's 10 s is for its own connection).
    env_line ATELIER_ADMIN_PRIMARY_URL "$primary_conn password=$ATELIER_REPLICATOR_PASSWORD connect_timeout=3"
    env_line ATELIER_ADMIN_REPLICA_URLS "host=$ATELIER_DATA_DIR/run port=$ATELIER_PG_PORT user=postgres dbname=$ATELIER_DATABASE"
    env_line ATELIER_RECONCILE_STATE "$metrics_dir/atelier_reconcile.prom"
} | write_if_changed "$reconcile_env" 0600 postgres:postgres || true
every=${ATELIER_RECONCILE_SECONDS:-15}
[[ "$every" =~ ^[1-9][0-9]*$ ]] || die "ATELIER_RECONCILE_SECONDS must be a whole number of seconds"
if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    changed=0
    write_if_changed /etc/systemd/system/atelier-reconcile.service 0644 root:root <<UNIT && changed=1
[Unit]
Description=atelier: reconcile this replica with a new primary timeline
After=network-online.target

[Service]
Type=oneshot
User=postgres
EnvironmentFile=$reconcile_env
ExecStart=$ATELIER_BIN reconcile $keep_slot
UNIT
    write_if_changed /etc/systemd/system/atelier-reconcile.timer 0644 root:root <<UNIT && changed=1
[Unit]
Description=atelier: look for a new primary timeline every $every s

[Timer]
OnBootSec=30s
OnUnitInactiveSec=${every}s
AccuracySec=1s

[Install]
WantedBy=timers.target
UNIT
    [ "$changed" = 1 ] && systemctl daemon-reload
    systemctl enable --quiet --now atelier-reconcile.timer
else
    stamp=$(cat "$reconcile_env" "$ATELIER_BIN" | md5sum | cut -d' ' -f1)$every$keep_slot
    supervised "$ATELIER_DATA_DIR/reconcile" "$stamp" \
        env ATELIER_ENV_FILE="$reconcile_env" EVERY="$every" KEEP_SLOT="$keep_slot" bash -c 'set -a; source "$ATELIER_ENV_FILE"; set +a
            while :; do runuser -u postgres -- "$0" reconcile $KEEP_SLOT; sleep "$EVERY"; done' "$ATELIER_BIN"
fi
fi
say "replica ready on $ATELIER_LISTEN_ADDRESS:$ATELIER_PG_PORT"
