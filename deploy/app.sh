#!/usr/bin/env bash
# Provisions one APP SERVER host (Debian 12): `atelier serve` as a systemd
# service, connecting as the writer role to the primary and as the reader
# role to every replica. Idempotent. Run as root.
#
#   ATELIER_LISTEN=10.0.2.21:3000 ATELIER_PRIMARY_ADDRESS=10.0.1.10 \
#   ATELIER_REPLICA_ADDRESSES=10.0.3.11,10.0.3.12 \
#   ATELIER_WRITER_PASSWORD=... ATELIER_READER_PASSWORD=... deploy/app.sh [--no-systemd]
#
# Settings (environment):
#   ATELIER_LISTEN             address:port the service listens on (the balancer's upstream)
#   ATELIER_OPS_LISTEN         address:port of its operations listener (/healthz, /readyz,
#                              /metrics only): what Prometheus scrapes (deploy/monitoring/);
#                              default the ATELIER_LISTEN address, port 9464
#   ATELIER_PRIMARY_ADDRESS    the primary (ATELIER_PG_PORT, default 5432, for every node); for a
#                              Patroni cluster every database node, comma-separated (the service
#                              writes to whichever is primary: target_session_attrs=read-write)
#   ATELIER_REPLICA_ADDRESSES  every replica, comma-separated: each gets its own read pool once
#                              its initial copy is complete (and keeps it while it is listed)
#   ATELIER_WRITER_PASSWORD, ATELIER_READER_PASSWORD
#   ATELIER_BIN (default /usr/local/bin/atelier), ATELIER_DATABASE, ATELIER_DATA_DIR
#   Any other ATELIER_* setting (docs/operations.md, Configuration) may be set too; it is passed on.
# The connection strings go to $ATELIER_DATA_DIR/atelier.env (mode 0600), read
# by the unit (EnvironmentFile), never put on a command line.
# --no-systemd: run under deploy/supervise.sh instead of a unit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for v in ATELIER_LISTEN ATELIER_PRIMARY_ADDRESS ATELIER_REPLICA_ADDRESSES \
         ATELIER_WRITER_PASSWORD ATELIER_READER_PASSWORD; do need "$v"; done
[ -x "$ATELIER_BIN" ] || die "no atelier binary at $ATELIER_BIN"
ensure_packages curl ca-certificates postgresql-client-15
install -d -m 0755 "$ATELIER_DATA_DIR"
# Which replicas the service reads from. A replica joins once its initial
# copy is complete (every table of its subscription 'r', ready): before
# that it holds part of the catalog and would answer 404 for the rest. Once
# admitted it stays for as long as it is listed, down or not (the service
# routes around a replica that is down; dropping and re-adding it would
# restart the service twice). A replica no longer listed is dropped. The
# admitted ones are kept in $ATELIER_DATA_DIR/replicas.admitted.
admitted_file=$ATELIER_DATA_DIR/replicas.admitted
copied() {
    PGPASSWORD=$ATELIER_READER_PASSWORD PGCONNECT_TIMEOUT=3 psql -X -Atq \
        "host=$1 port=$ATELIER_PG_PORT user=atelier_reader dbname=$ATELIER_DATABASE" -c \
        "select count(*) > 0 and count(*) filter (where r.srsubstate <> 'r') = 0
           from pg_subscription_rel r join pg_subscription s on s.oid = r.srsubid
          where s.subdbid = (select oid from pg_database where datname = current_database())" 2>/dev/null
}
admitted=()
IFS=',' read -ra hosts <<<"$ATELIER_REPLICA_ADDRESSES"
for host in "${hosts[@]}"; do
    if grep -qxF "$host" "$admitted_file" 2>/dev/null || [ "$(copied "$host")" = t ]; then
        admitted+=("$host")
    else
        say "replica $host is not admitted yet: unreachable, or its initial copy is not complete"
    fi
done
[ "${#admitted[@]}" -gt 0 ] || die "none of the replicas $ATELIER_REPLICA_ADDRESSES has completed its initial copy yet"
printf '%s\n' "${admitted[@]}" | write_if_changed "$admitted_file" 0644 root:root || true
replicas=
for host in "${admitted[@]}"; do
    replicas+="${replicas:+,}host=$host port=$ATELIER_PG_PORT user=atelier_reader password=$ATELIER_READER_PASSWORD dbname=$ATELIER_DATABASE"
done
# Several primaries (a Patroni cluster's nodes): connect to whichever takes
# writes now; a connection that breaks on a failover reconnects to the new one.
leader_only=
[[ "$ATELIER_PRIMARY_ADDRESS" == *,* ]] && leader_only=" target_session_attrs=read-write"
ops_listen=${ATELIER_OPS_LISTEN:-${ATELIER_LISTEN%:*}:9464}
env_file=$ATELIER_DATA_DIR/atelier.env
env_content=$(
    echo "# Written by deploy/app.sh; edits are lost on the next run."
    env_line ATELIER_LISTEN "$ATELIER_LISTEN"
    env_line ATELIER_OPS_LISTEN "$ops_listen"
    env_line ATELIER_PRIMARY_URL "host=$ATELIER_PRIMARY_ADDRESS port=$ATELIER_PG_PORT user=atelier_writer password=$ATELIER_WRITER_PASSWORD dbname=$ATELIER_DATABASE$leader_only"
    env_line ATELIER_REPLICA_URLS "$replicas"
    # Limits given to this script pass through (not the tools' settings).
    while IFS= read -r name; do
        env_line "$name" "${!name}"
    done < <(compgen -e | grep -E '^ATELIER_[A-Z_]+$' | grep -vE '^ATELIER_(LISTEN|OPS_LISTEN|PRIMARY_URL|REPLICA_URLS|PRIMARY_ADDRESS|REPLICA_ADDRESSES|[A-Z]+_PASSWORD|BIN|DATA_DIR|SOURCE|DATABASE|PG_PORT|SUPERVISOR|MIGRATE_URL|CLUSTER_DIR|ADMIN_[A-Z_]+|REHEARSAL_[A-Z_]+)$' | sort)
)
changed=0
printf '%s\n' "$env_content" | write_if_changed "$env_file" 0600 root:root && changed=1

# The service runs as this unprivileged user, never as root.
id atelier >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin atelier
if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    if write_if_changed /etc/systemd/system/atelier.service 0644 root:root <<UNIT; then systemctl daemon-reload; changed=1; fi
[Unit]
Description=atelier products API
After=network-online.target
Wants=network-online.target

[Service]
User=atelier
EnvironmentFile=$env_file
ExecStart=$ATELIER_BIN serve
Restart=always
RestartSec=1
# SIGTERM: finish requests in flight (ATELIER_SHUTDOWN_GRACE_MS), then exit.
KillSignal=SIGTERM
TimeoutStopSec=20
LimitNOFILE=65536
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true

[Install]
WantedBy=multi-user.target
UNIT
    systemctl enable --quiet atelier
    if ! systemctl is-active --quiet atelier; then systemctl start atelier
    elif [ "$changed" = 1 ]; then systemctl restart atelier; fi
else
    stamp=$(cat "$env_file" "$ATELIER_BIN" | md5sum | cut -d' ' -f1)
    supervised "$ATELIER_DATA_DIR/atelier" "$stamp" \
        env ATELIER_ENV_FILE="$env_file" bash -c 'set -a; source "$ATELIER_ENV_FILE"; set +a
            exec setpriv --reuid=atelier --regid=atelier --init-groups "$0" serve' "$ATELIER_BIN"
fi
for _ in $(seq 100); do
    curl -sf "http://$ATELIER_LISTEN/healthz" >/dev/null && curl -sf "http://$ops_listen/healthz" >/dev/null &&
        { say "serving on $ATELIER_LISTEN (operations on $ops_listen)"; exit 0; }
    sleep 0.2
done
die "atelier did not answer /healthz on $ATELIER_LISTEN"
