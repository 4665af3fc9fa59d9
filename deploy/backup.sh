# Backups of the write model with pgBackRest, for deploy/primary.sh:
# sourced, never run. The primary archives every WAL segment to the
# repository (archive_command), a full backup is taken when the host is
# first provisioned, then systemd timers take full and differential
# backups and keep the backup report for Prometheus up to date.
# docs/operations.md says how to restore.
# shellcheck shell=bash
#
# Settings (environment):
#   ATELIER_BACKUP_REPO_TYPE      posix (a directory; default) or s3
#   ATELIER_BACKUP_REPO_PATH      posix: the directory (default /var/lib/atelier-backup, never
#                                 inside ATELIER_DATA_DIR); s3: the prefix in the bucket (/atelier)
#   ATELIER_BACKUP_S3_BUCKET, ATELIER_BACKUP_S3_REGION   with s3; credentials come from the
#                                 instance profile (repo1-s3-key-type=auto), never from a file
#   ATELIER_BACKUP_S3_KMS_KEY     with s3: the KMS key (ARN) objects are encrypted with
#   ATELIER_BACKUP_RETENTION_FULL full backups kept (default 2); ATELIER_BACKUP_RETENTION_DIFF
#                                 differential backups kept (default 7)
#   ATELIER_BACKUP_FULL_CALENDAR  systemd OnCalendar of full backups (default "Sun *-*-* 03:00:00")
#   ATELIER_BACKUP_DIFF_CALENDAR  ... of differential backups (default "Mon..Sat *-*-* 03:00:00")
#   ATELIER_ARCHIVE_TIMEOUT       seconds after which a quiet primary switches WAL segments, so a
#                                 commit reaches the repository within it (default 60)
#   ATELIER_PGBACKREST_CONFIG     default /etc/pgbackrest/pgbackrest.conf
#   ATELIER_RESTORE_FROM_BACKUP   only for a primary whose data directory is empty (a lost disk,
#                                 a new instance): "latest" restores every archived commit, a
#                                 time ("2026-12-02 10:00:00+00") restores up to it; instead of
#                                 initdb. Then run `atelier replicate --resync` (docs/operations.md)
#   ATELIER_BACKUP_METRICS_DIR    where the report is kept as atelier_backup.prom, every minute
#                                 (default $ATELIER_DATA_DIR/metrics; point node_exporter's
#                                 --collector.textfile.directory at it)

ATELIER_BACKUP_REPO_TYPE=${ATELIER_BACKUP_REPO_TYPE:-posix}
ATELIER_PGBACKREST_CONFIG=${ATELIER_PGBACKREST_CONFIG:-/etc/pgbackrest/pgbackrest.conf}
ATELIER_ARCHIVE_TIMEOUT=${ATELIER_ARCHIVE_TIMEOUT:-60}
ATELIER_BACKUP_METRICS_DIR=${ATELIER_BACKUP_METRICS_DIR:-$ATELIER_DATA_DIR/metrics}

pgbackrest_cmd() { as_postgres pgbackrest --config="$ATELIER_PGBACKREST_CONFIG" --stanza=atelier "$@"; }

# The archive settings, appended to the primary's atelier.conf.
archive_settings() {
    cat <<CONF
# WAL archive (deploy/backup.sh): every segment goes to the pgBackRest repository.
archive_mode = on
archive_command = 'pgbackrest --config=$ATELIER_PGBACKREST_CONFIG --stanza=atelier archive-push %p'
archive_timeout = $ATELIER_ARCHIVE_TIMEOUT
CONF
}

# Writes pgbackrest.conf for this host.
write_backup_config() {
    local repo state=$ATELIER_DATA_DIR/pgbackrest
    install -d -m 0750 -o postgres -g postgres "$state" "$state/log" "$state/lock" "$state/spool"
    case $ATELIER_BACKUP_REPO_TYPE in
        posix)
            ATELIER_BACKUP_REPO_PATH=${ATELIER_BACKUP_REPO_PATH:-/var/lib/atelier-backup}
            case $ATELIER_BACKUP_REPO_PATH/ in
                "$ATELIER_DATA_DIR"/*) die "ATELIER_BACKUP_REPO_PATH must not be inside ATELIER_DATA_DIR" ;;
            esac
            install -d -m 0750 -o postgres -g postgres "$ATELIER_BACKUP_REPO_PATH"
            repo="repo1-path=$ATELIER_BACKUP_REPO_PATH"
            ;;
        s3)
            need ATELIER_BACKUP_S3_BUCKET; need ATELIER_BACKUP_S3_REGION
            repo="repo1-type=s3
repo1-path=${ATELIER_BACKUP_REPO_PATH:-/atelier}
repo1-s3-bucket=$ATELIER_BACKUP_S3_BUCKET
repo1-s3-region=$ATELIER_BACKUP_S3_REGION
repo1-s3-endpoint=s3.$ATELIER_BACKUP_S3_REGION.amazonaws.com
repo1-s3-key-type=auto${ATELIER_BACKUP_S3_KMS_KEY:+
repo1-s3-kms-key-id=$ATELIER_BACKUP_S3_KMS_KEY}"
            ;;
        *) die "ATELIER_BACKUP_REPO_TYPE must be posix or s3" ;;
    esac
    write_if_changed "$ATELIER_PGBACKREST_CONFIG" 0640 root:postgres <<CONF || true
# Written by deploy/primary.sh (deploy/backup.sh); edits are lost on the next run.
[global]
$repo
repo1-retention-full=${ATELIER_BACKUP_RETENTION_FULL:-2}
repo1-retention-diff=${ATELIER_BACKUP_RETENTION_DIFF:-7}
log-path=$state/log
lock-path=$state/lock
spool-path=$state/spool
log-level-console=warn
log-level-file=info
compress-type=zst
start-fast=y

[atelier]
pg1-path=$ATELIER_DATA_DIR/postgres
pg1-port=$ATELIER_PG_PORT
pg1-socket-path=$ATELIER_DATA_DIR/run
pg1-user=postgres
CONF
}

# Restores the repository's newest backup and the WAL after it into $1
# (empty), for postgres_node to start: to the end of the archive, or up to
# ATELIER_RESTORE_FROM_BACKUP when it is a time; then the copy promotes
# itself on a new timeline. Archiving stays on: it is the primary now.
restore_data_dir() {
    local data=$1 target=()
    [ "$ATELIER_RESTORE_FROM_BACKUP" = latest ] ||
        target=(--type=time "--target=$ATELIER_RESTORE_FROM_BACKUP" --target-action=promote)
    say "restoring $data from the backup repository (${ATELIER_RESTORE_FROM_BACKUP})"
    install -d -m 0700 -o postgres -g postgres "$data"
    pgbackrest_cmd restore --pg1-path="$data" "${target[@]}" >/dev/null
    ATELIER_RESTORED=1
}

# Waits while a restored primary replays WAL, until it takes writes.
wait_promoted() {
    for _ in $(seq 1200); do
        [ "$(node_psql -d postgres -Atc "select pg_is_in_recovery()")" = f ] && return 0
        sleep 0.5
    done
    die "the restored primary is still recovering after 10 minutes"
}

# After PostgreSQL runs with archive_settings: the stanza (idempotent), a
# check that archiving works end to end, the first full backup when the
# repository has none, and the timers.
ensure_backups() {
    pgbackrest_cmd stanza-create >/dev/null
    pgbackrest_cmd check >/dev/null || die "pgbackrest check failed: WAL is not reaching the repository"
    if [ "${ATELIER_RESTORED:-0}" = 1 ]; then
        # A restore starts a new timeline: its own full backup, at once.
        say "full backup of the restored primary"
        pgbackrest_cmd backup --type=full >/dev/null
    elif pgbackrest_cmd info --output=json | grep -q '"backup":\[\]'; then
        say "first full backup"
        pgbackrest_cmd backup --type=full >/dev/null
    fi
    install_backup_timers
}

# The systemd timers for scheduled backups and the report. A backup runs
# only where PostgreSQL is the primary (ExecCondition): on a Patroni
# cluster both nodes get the timers, and whichever leads on the day backs
# up. ATELIER_POSTGRES_UNIT names the unit that runs PostgreSQL here.
install_backup_timers() {
    install -d -m 0750 -o postgres -g postgres "$ATELIER_BACKUP_METRICS_DIR"
    [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ] || return 0
    local changed=0 kind calendar unit=${ATELIER_POSTGRES_UNIT:-atelier-postgres.service}
    write_if_changed /etc/systemd/system/atelier-backup@.service 0644 root:root <<UNIT && changed=1
[Unit]
Description=atelier: pgBackRest %i backup of the primary
After=$unit
Requires=$unit

[Service]
Type=oneshot
User=postgres
# ($$ is systemd's escape for a literal $: sh runs the psql.)
ExecCondition=/bin/sh -c 'test "\$\$(psql -h $ATELIER_DATA_DIR/run -p $ATELIER_PG_PORT -d postgres -XAtqc "select pg_is_in_recovery()")" = f'
ExecStart=/usr/bin/pgbackrest --config=$ATELIER_PGBACKREST_CONFIG --stanza=atelier --type=%i backup
UNIT
    for kind in full diff; do
        if [ "$kind" = full ]; then calendar=${ATELIER_BACKUP_FULL_CALENDAR:-Sun *-*-* 03:00:00}
        else calendar=${ATELIER_BACKUP_DIFF_CALENDAR:-Mon..Sat *-*-* 03:00:00}; fi
        write_if_changed "/etc/systemd/system/atelier-backup-$kind.timer" 0644 root:root <<UNIT && changed=1
[Unit]
Description=atelier: $kind backups of the primary

[Timer]
OnCalendar=$calendar
Persistent=true
RandomizedDelaySec=10min
Unit=atelier-backup@$kind.service

[Install]
WantedBy=timers.target
UNIT
    done
    write_if_changed /etc/systemd/system/atelier-backup-metrics.service 0644 root:root <<UNIT && changed=1
[Unit]
Description=atelier: the backup report for Prometheus ($ATELIER_BACKUP_METRICS_DIR/atelier_backup.prom)

[Service]
Type=oneshot
User=postgres
Environment=ATELIER_LOG=warn
ExecStart=$ATELIER_BIN backup metrics --config $ATELIER_PGBACKREST_CONFIG --primary-url "host=$ATELIER_DATA_DIR/run port=$ATELIER_PG_PORT user=postgres dbname=postgres" --textfile $ATELIER_BACKUP_METRICS_DIR/atelier_backup.prom
UNIT
    write_if_changed /etc/systemd/system/atelier-backup-metrics.timer 0644 root:root <<UNIT && changed=1
[Unit]
Description=atelier: refresh the backup report every minute

[Timer]
OnBootSec=1min
OnUnitActiveSec=1min
AccuracySec=5s

[Install]
WantedBy=timers.target
UNIT
    [ "$changed" = 1 ] && systemctl daemon-reload
    systemctl enable --quiet --now atelier-backup-full.timer atelier-backup-diff.timer atelier-backup-metrics.timer
}
