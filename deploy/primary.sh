#!/usr/bin/env bash
# Provisions the PRIMARY database host (Debian 12): PostgreSQL with the
# write model, the triggers and the publication of the read model.
# Idempotent: a second run changes nothing. Run as root.
#
#   ATELIER_LISTEN_ADDRESS=10.0.1.10 ATELIER_APP_ADDRESSES=10.0.2.0/24 \
#   ATELIER_REPLICA_ADDRESSES=10.0.3.11,10.0.3.12 \
#   ATELIER_OWNER_PASSWORD=... ATELIER_WRITER_PASSWORD=... ATELIER_REPLICATOR_PASSWORD=... \
#   deploy/primary.sh [--no-systemd]
#
# Settings (environment):
#   ATELIER_LISTEN_ADDRESS     this host's private address (PostgreSQL listens there)
#   ATELIER_APP_ADDRESSES      app servers: addresses or CIDRs, comma-separated (writer)
#   ATELIER_REPLICA_ADDRESSES  replicas: addresses or CIDRs (replicator)
#   ATELIER_OWNER_PASSWORD, ATELIER_WRITER_PASSWORD, ATELIER_REPLICATOR_PASSWORD
#   ATELIER_BIN       the atelier binary (default /usr/local/bin/atelier): runs the migrations
#   ATELIER_DATA_DIR  default /var/lib/atelier (PostgreSQL data in postgres/, socket in run/)
#   ATELIER_PG_PORT   default 5432;  ATELIER_DATABASE  default atelier
#   ATELIER_SOURCE    the checkout or bundle holding sql/ and replication/ (default: this script's)
#   ATELIER_LOAD_PRODUCTS  a generated catalog of this many products, loaded into an empty
#                     catalog before the publication exists (default 0: none; deploy/lib.sh)
#   ATELIER_BACKUP_*, ATELIER_ARCHIVE_TIMEOUT, ATELIER_PGBACKREST_CONFIG: the WAL archive and
#                     backups (pgBackRest), see deploy/backup.sh
# --no-systemd: start PostgreSQL with pg_ctl instead of a systemd unit, and
# schedule no backups (the caller takes them: `atelier backup run`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/backup.sh"
for v in ATELIER_LISTEN_ADDRESS ATELIER_APP_ADDRESSES ATELIER_REPLICA_ADDRESSES \
         ATELIER_OWNER_PASSWORD ATELIER_WRITER_PASSWORD ATELIER_REPLICATOR_PASSWORD; do need "$v"; done
[ -x "$ATELIER_BIN" ] || die "no atelier binary at $ATELIER_BIN"

install_postgres
ensure_packages pgbackrest
write_backup_config
settings=$(mktemp)
trap 'rm -f "$settings"' EXIT
{ cat "$ATELIER_SOURCE/replication/primary.conf"; archive_settings; } >"$settings"

# Who may connect, beyond the operator and the owner (see postgres_node):
# the writer from the app servers, the replicator from the replicas.
# Nothing else, from nowhere else.
postgres_node "$settings" <<HBA
$(hba_lines "$ATELIER_DATABASE" atelier_writer "$ATELIER_APP_ADDRESSES")
$(hba_lines "$ATELIER_DATABASE" atelier_replicator "$ATELIER_REPLICA_ADDRESSES")
HBA
wait_promoted

write_model_objects
ensure_backups
say "primary ready on $ATELIER_LISTEN_ADDRESS:$ATELIER_PG_PORT (database $ATELIER_DATABASE)"
