#!/usr/bin/env bash
# The database's own ceiling for a stock movement: pgbench runs the same
# function call the server makes for POST /skus/:id/movements, from 64
# clients, on sku ids drawn as the load tools draw them (90% from the last
# tenth), restocks only (a refused sale would end a pgbench client).
#
#   scripts/bench-movements.sh [SECONDS] [CLIENTS]
#
# Compare with: atelier write-load --restock-only --concurrency 64
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
clients=${2:-64}
primary=${ATELIER_ADMIN_PRIMARY_URL:-host=127.0.0.1 port=54320 user=postgres dbname=atelier}
read -r low high < <(psql "$primary" -Atc "select min(id), max(id) from sku" | tr '|' ' ')
tenth=$(( (high - low + 1) / 10 ))
script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat > "$script" <<'SQL'
\set u random(1, 100)
\if :u <= 90
\set sku random(:high - :tenth + 1, :high)
\else
\set sku random(:low, :high)
\endif
\set delta random(1, 10)
select api_record_movement(:sku, :delta, 'pgbench');
SQL
echo "pgbench: api_record_movement on skus $low..$high (90% from the last $tenth), $clients clients, ${seconds}s"
pgbench "$primary" -n -M prepared -c "$clients" -j 2 -T "$seconds" -P 10 -r \
    -D low="$low" -D high="$high" -D tenth="$tenth" -f "$script"
