#!/usr/bin/env bash
# Provisions one node of the WRITE MODEL'S PATRONI CLUSTER (Debian 12's
# patroni, etcd as its store): a primary and a synchronous standby, the
# standby promoted automatically when the primary fails. Patroni owns
# PostgreSQL's settings and pg_hba.conf on these nodes; this script writes
# Patroni's configuration, starts it, and, on the node that is the leader,
# applies the roles, the database, the migrations and the publication
# (idempotent). Run on every database node, in any order. Run as root.
#
#   ATELIER_NODE_NAME=db1 ATELIER_LISTEN_ADDRESS=10.0.1.10 ATELIER_DB_ADDRESSES=10.0.1.10,10.0.4.10 \
#   ATELIER_ETCD_HOSTS=10.0.1.10:2379,10.0.4.10:2379,10.0.3.11:2379 \
#   ATELIER_APP_ADDRESSES=10.0.2.0/24 ATELIER_REPLICA_ADDRESSES=10.0.3.11,10.0.3.12 \
#   ATELIER_LOGICAL_SLOTS=atelier_replica1,atelier_replica2 \
#   ATELIER_OWNER_PASSWORD=... ATELIER_WRITER_PASSWORD=... ATELIER_REPLICATOR_PASSWORD=... \
#   ATELIER_STANDBY_PASSWORD=... ATELIER_REWIND_PASSWORD=... deploy/patroni.sh [--no-systemd]
#
# Settings (environment), beyond those of deploy/primary.sh:
#   ATELIER_NODE_NAME        this node's name in the cluster (db1, db2)
#   ATELIER_DB_ADDRESSES     every database node (they stream to each other and pg_rewind)
#   ATELIER_ETCD_HOSTS       the etcd members' client endpoints, address:2379, comma-separated
#   ATELIER_LOGICAL_SLOTS    the read replicas' slot names (each replica's ATELIER_SUBSCRIPTION):
#                            permanent logical slots, kept on the standby too, so the replicas
#                            stream on across a failover without a new copy
#   ATELIER_STANDBY_PASSWORD the physical replication role (atelier_standby) between the nodes
#   ATELIER_REWIND_PASSWORD  the pg_rewind role (atelier_rewind), used when an old primary rejoins
#   ATELIER_PATRONI_TTL      seconds the leader lock lives without renewal (default 8): a failover
#                            starts about this long after the primary stops answering
#   ATELIER_PATRONI_LOOP_WAIT, ATELIER_PATRONI_RETRY_TIMEOUT (defaults 1 and 3)
#   ATELIER_LOAD_PRODUCTS    as deploy/primary.sh: the leader loads a generated catalog into an
#                            empty catalog before it publishes (the standby streams it)
# Backups: as deploy/primary.sh (deploy/backup.sh): both nodes get the timers, and each
# scheduled backup runs on whichever node leads then; both archive to the same repository
# (S3 on EC2), and only the leader archives.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/backup.sh"
# The backup timers' PostgreSQL is Patroni's (deploy/backup.sh).
export ATELIER_POSTGRES_UNIT=atelier-patroni.service
for v in ATELIER_NODE_NAME ATELIER_LISTEN_ADDRESS ATELIER_DB_ADDRESSES ATELIER_ETCD_HOSTS \
         ATELIER_APP_ADDRESSES ATELIER_REPLICA_ADDRESSES ATELIER_OWNER_PASSWORD ATELIER_WRITER_PASSWORD \
         ATELIER_REPLICATOR_PASSWORD ATELIER_STANDBY_PASSWORD ATELIER_REWIND_PASSWORD; do need "$v"; done
[ -x "$ATELIER_BIN" ] || die "no atelier binary at $ATELIER_BIN"
[[ "$ATELIER_NODE_NAME" =~ ^[a-z][a-z0-9_]*$ ]] || die "ATELIER_NODE_NAME must be a plain name"

install_postgres
ensure_packages patroni pgbackrest curl
if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ] && systemctl is-enabled --quiet patroni 2>/dev/null; then
    systemctl disable --now --quiet patroni # the package's own, for Debian's clusters; not ours
fi
write_backup_config

bin=$(pg_bin)
data=$ATELIER_DATA_DIR/postgres
run=$ATELIER_DATA_DIR/run
install -d -m 0700 -o postgres -g postgres "$ATELIER_DATA_DIR" "$run"
yaml_list() { local IFS=','; read -ra items <<<"$1"; for i in "${items[@]}"; do [ -n "$i" ] && printf '%s- %s\n' "$2" "$i"; done; }
hba_yaml() { sed 's/^/    - /'; }
# The permanent logical slots, as JSON for Patroni's /config (set once the
# publication exists; see below).
slots_json=
IFS=',' read -ra slot_names <<<"${ATELIER_LOGICAL_SLOTS:-}"
for s in "${slot_names[@]}"; do
    [[ "$s" =~ ^[a-z_][a-z0-9_]*$ ]] || die "ATELIER_LOGICAL_SLOTS: $s is not a plain SQL name"
    slots_json+="${slots_json:+,}\"$s\": {\"type\": \"logical\", \"database\": \"$ATELIER_DATABASE\", \"plugin\": \"pgoutput\"}"
done
# Patroni passes parameters on postgres's command line, so the archive
# settings come from backup.sh's text, one "name = value" line each.
# Values not already quoted are quoted ("on" would be YAML's true).
archive_yaml=$(archive_settings | sed -n -e "s/^\([a-z_]*\) = \('.*'\)$/        \1: \2/p" \
    -e "s/^\([a-z_]*\) = \([^'].*\)$/        \1: \"\2\"/p")
config=$(cat <<YAML
# Written by deploy/patroni.sh; edits are lost on the next run.
scope: atelier
namespace: /atelier/
name: $ATELIER_NODE_NAME
restapi:
  listen: $ATELIER_LISTEN_ADDRESS:8008
  connect_address: $ATELIER_LISTEN_ADDRESS:8008
# etcd's v2 API, not etcd3: Patroni 3.0.2 renews its lock over v3 with a new
# lease and an unconditional write of the leader key, so a leader frozen
# past its TTL (SIGSTOP, a stalled VM) overwrote the lock the standby had
# taken since, and led again on its old timeline: a split brain that
# pg_rewind settled by discarding the new leader's acknowledged writes
# (scripts/failover-rehearsal.sh, the freeze). Over v2 the renewal is a
# compare-and-swap on its own name, which fails once another node holds
# the lock, and the old leader demotes.
etcd:
  hosts:
$(yaml_list "$ATELIER_ETCD_HOSTS" "    ")
bootstrap:
  dcs:
    ttl: ${ATELIER_PATRONI_TTL:-8}
    loop_wait: ${ATELIER_PATRONI_LOOP_WAIT:-1}
    retry_timeout: ${ATELIER_PATRONI_RETRY_TIMEOUT:-3}
    maximum_lag_on_failover: 1048576
    # A node on an older timeline (an old leader back from a partition)
    # never promotes itself over the one that took over.
    check_timeline: true
    # A commit is acknowledged only once the standby has it: losing either
    # node loses no acknowledged write. With the standby gone, the primary
    # goes on alone (not strict), and writes are then on one node only.
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: logical
        hot_standby: "on"
        # Permanent logical slots on the standby need the primary to keep
        # the catalog rows they decode with.
        hot_standby_feedback: "on"
        wal_log_hints: "on"
        max_wal_senders: 40
        max_replication_slots: 40
        max_slot_wal_keep_size: 4GB
        # A primary cut off shuts down (demotes) only once its WAL senders
        # give up on the standby: 60 s by default, 10 s here, so the old
        # primary rejoins in seconds after the network heals.
        wal_sender_timeout: 10s
        max_connections: $(pg_max_connections)
        shared_buffers: $(pg_shared_buffers)
        password_encryption: scram-sha-256
  initdb:
    - encoding: UTF8
    - no-locale
    - data-checksums
postgresql:
  listen: $ATELIER_LISTEN_ADDRESS:$ATELIER_PG_PORT
  connect_address: $ATELIER_LISTEN_ADDRESS:$ATELIER_PG_PORT
  data_dir: $data
  bin_dir: $bin
  pgpass: $ATELIER_DATA_DIR/patroni.pgpass
  use_unix_socket: true
  authentication:
    superuser:
      username: postgres
    replication:
      username: atelier_standby
      password: '$ATELIER_STANDBY_PASSWORD'
    rewind:
      username: atelier_rewind
      password: '$ATELIER_REWIND_PASSWORD'
  # This node's own: archive_command names this host's pgbackrest.conf.
  # (In the cluster-wide part above, a standby promoted later would push
  # with the first node's configuration, and fail.)
  parameters:
    unix_socket_directories: '$run'
    port: $ATELIER_PG_PORT
$(sed 's/^    //' <<<"$archive_yaml")
  pg_hba:
    - local all postgres peer
    - local $ATELIER_DATABASE atelier_owner scram-sha-256
    - host $ATELIER_DATABASE atelier_owner $ATELIER_LISTEN_ADDRESS/32 scram-sha-256
$(hba_lines "$ATELIER_DATABASE" atelier_writer "$ATELIER_APP_ADDRESSES" | hba_yaml)
$(hba_lines "$ATELIER_DATABASE" atelier_replicator "$ATELIER_REPLICA_ADDRESSES" | hba_yaml)
$(hba_lines replication atelier_standby "$ATELIER_DB_ADDRESSES" | hba_yaml)
$(hba_lines all atelier_rewind "$ATELIER_DB_ADDRESSES" | hba_yaml)
YAML
)
case $ATELIER_STANDBY_PASSWORD$ATELIER_REWIND_PASSWORD in *"'"*) die "the passwords must not hold a single quote" ;; esac
changed=0
if printf '%s\n' "$config" | write_if_changed "$ATELIER_DATA_DIR/patroni.yml" 0600 postgres:postgres; then changed=1; fi

if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    unit=/etc/systemd/system/atelier-patroni.service
    if write_if_changed "$unit" 0644 root:root <<UNIT; then systemctl daemon-reload; fi
[Unit]
Description=Patroni for atelier's write model ($ATELIER_NODE_NAME)
After=network-online.target
Wants=network-online.target
# Never start PostgreSQL on an empty mount point before the data volume is mounted.
RequiresMountsFor=$data

[Service]
Type=simple
User=postgres
ExecStart=/usr/bin/patroni $ATELIER_DATA_DIR/patroni.yml
ExecReload=/bin/kill -HUP \$MAINPID
KillMode=process
TimeoutSec=30
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
    systemctl enable --quiet atelier-patroni
    if ! systemctl is-active --quiet atelier-patroni; then systemctl start atelier-patroni
    elif [ "$changed" = 1 ]; then systemctl reload atelier-patroni; fi
else
    # Patroni runs as postgres (it starts PostgreSQL, which refuses root).
    supervised "$ATELIER_DATA_DIR/patroni" "$(md5sum <"$ATELIER_DATA_DIR/patroni.yml")" \
        runuser -u postgres -- /usr/bin/patroni "$ATELIER_DATA_DIR/patroni.yml"
fi

api=http://$ATELIER_LISTEN_ADDRESS:8008
# Running, as the leader or as a streaming standby ("master" or "replica"
# in Patroni 3.0's /patroni).
role() { curl -sf "$api/patroni" | tr -d '\n' | sed -n 's/.*"role": *"\([a-z_]*\)".*/\1/p'; }
for _ in $(seq 240); do
    case $(role) in master|primary|replica) break ;; esac
    sleep 0.5
done
case $(role) in
    master|primary)
        write_model_objects
        # The permanent slots only now that the publication exists: a slot
        # made before it would decode the WAL from before it, and pgoutput
        # would answer every subscriber "publication does not exist" (the
        # catalog it decodes with is that of the slot's position).
        if [ -n "$slots_json" ]; then
            # Patroni refuses /config until its bootstrap has written the
            # cluster's configuration to etcd, which can follow the first
            # "master" answer by a moment: retried.
            patched=0
            for _ in $(seq 60); do
                if curl -sf -XPATCH -H 'Content-Type: application/json' -d "{\"slots\": {$slots_json}}" \
                    "$api/config" >/dev/null; then patched=1; break; fi
                sleep 0.5
            done
            [ "$patched" = 1 ] || die "Patroni did not take the permanent slots within 30 s: $(curl -s "$api/config")"
            for s in "${slot_names[@]}"; do
                for _ in $(seq 60); do
                    [ "$(node_psql -d "$ATELIER_DATABASE" -Atc "select count(*) from pg_replication_slots where slot_name = '$s'")" = 1 ] && break
                    sleep 0.5
                done
                [ "$(node_psql -d "$ATELIER_DATABASE" -Atc "select count(*) from pg_replication_slots where slot_name = '$s'")" = 1 ] ||
                    die "Patroni has not created the permanent slot $s"
            done
        fi
        ensure_backups
        say "$ATELIER_NODE_NAME leads the write model on $ATELIER_LISTEN_ADDRESS:$ATELIER_PG_PORT"
        ;;
    replica)
        install_backup_timers
        say "$ATELIER_NODE_NAME is a standby of the write model"
        ;;
    *) die "Patroni reports $ATELIER_NODE_NAME neither leading nor following: $(curl -s "$api/patroni")" ;;
esac
