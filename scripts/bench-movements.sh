#!/usr/bin/env bash
# The database's own ceiling for a stock movement: pgbench runs the same
# function call the server makes for POST /skus/:id/movements, from 64
# clients, on sku ids drawn as the load tools draw them (90% from the last
# tenth), restocks only (a refused sale would end a pgbench client).
#
#   scripts/bench-movements.sh [SECONDS] [CLIENTS] [BATCH]
#
# With BATCH (N > 1), each transaction is one api_record_movements call of N
# movements, as a batch of the server's (write/batch.rs); "rebuild N" runs
# only refresh_styles on the N skus' products: the styles documents built
# again from the write model, with nothing changed (so nothing written),
# which is the part of a batch that is work per product.
#
# Compare with: atelier write-load --restock-only --concurrency 64
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
clients=${2:-64}
batch=${3:-1}
primary=${ATELIER_ADMIN_PRIMARY_URL:-host=127.0.0.1 port=54320 user=postgres dbname=atelier}
read -r low high < <(psql "$primary" -Atc "select min(id), max(id) from sku" | tr '|' ' ')
tenth=$(( (high - low + 1) / 10 ))
script=$(mktemp)
trap 'rm -f "$script"' EXIT
# A sku as the load tools draw one, in SQL (for the batch modes).
draw="case when random() < 0.9 then $high - $tenth + 1 + floor(random() * $tenth)
           else $low + floor(random() * ($high - $low + 1)) end::bigint"
case "$batch" in
    1) cat > "$script" <<'SQL'
\set u random(1, 100)
\if :u <= 90
\set sku random(:high - :tenth + 1, :high)
\else
\set sku random(:low, :high)
\endif
\set delta random(1, 10)
select api_record_movement(:sku, :delta, 'pgbench');
SQL
    ;;
    rebuild\ *) n=${batch#rebuild }; cat > "$script" <<SQL
select refresh_styles(array(select s.product_id from sku k join style s on s.id = k.style_id
                            where k.id in (select $draw from generate_series(1, $n))));
SQL
    ;;
    *) cat > "$script" <<SQL
select count(*) from api_record_movements(
    array(select $draw from generate_series(1, $batch)),
    array(select (1 + floor(random() * 10))::bigint from generate_series(1, $batch)),
    array_fill('pgbench'::text, array[$batch]));
SQL
    ;;
esac
echo "pgbench: ${batch} movement(s) a transaction on skus $low..$high (90% from the last $tenth), $clients clients, ${seconds}s"
pgbench "$primary" -n -M prepared -c "$clients" -j 2 -T "$seconds" -P 10 -r \
    -D low="$low" -D high="$high" -D tenth="$tenth" -f "$script"
