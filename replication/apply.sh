#!/usr/bin/env bash
# Wire logical replication of the read model between one primary and one
# replica with psql. Idempotent: existing publication/subscription are kept.
#
#   replication/apply.sh PRIMARY_CONNINFO REPLICA_CONNINFO SUB_NAME [PRIMARY_CONNINFO_FROM_REPLICA]
#
# The fourth argument is how the replica reaches the primary when that differs
# from how this machine does (private addresses on EC2). Both databases must
# already be migrated (`atelier migrate --role primary|replica`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
primary=$1 replica=$2 sub=$3 from_replica=${4:-$1}

if [ "$(psql "$primary" -Atc "select count(*) from pg_publication where pubname = 'atelier_read_model'")" = 0 ]; then
    psql "$primary" -v ON_ERROR_STOP=1 -f "$here/publication.sql"
fi
if [ "$(psql "$replica" -Atc "select count(*) from pg_subscription where subname = '$sub'")" = 0 ]; then
    psql "$replica" -v ON_ERROR_STOP=1 -v sub_name="$sub" -v primary_conninfo="$from_replica" -v create_slot=true \
        -f "$here/subscription.sql"
fi
echo "replication: $sub subscribed to atelier_read_model"
