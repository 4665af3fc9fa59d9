#!/usr/bin/env bash
# The restore drill: proves that a backup plus the WAL archive bring the
# write model back to a chosen moment, and that the replicas follow a
# restored primary. On the local cluster, in a catalog of its own
# (database atelier_drill, 300 products), served on 127.0.0.1:3996:
#
#  1. a full backup (pgBackRest, `atelier backup run`);
#  2. writes through HTTP (products, a style with skus, stock movements with
#     idempotency keys, a rename), each answer recorded;
#  3. the target time, read off the primary's clock;
#  4. more writes, among them DELETE /products/:id of a product from step 2;
#  5. the WAL switched and archived; then `atelier backup restore` up to the
#     target into a scratch directory, started on 127.0.0.1:54329;
#  6. on the restored copy: every write of step 2 is there as answered,
#     nothing of step 4 is, every sku's quantity equals its ledger, and
#     `atelier check` finds 0 differences;
#  7. the replicas resync from the restored copy (`atelier replicate
#     --resync`) while reads go on (every read must answer 200), `atelier
#     check` finds 0 differences on every node; then they resync back from
#     the real primary and the check is clean again;
#  8. archiving made to fail (archive_command 'false'): the backup report
#     (`atelier backup metrics`) must say so within a minute, and stop saying
#     so once archiving works again.
#
# Prints RPO (acknowledged writes lost, and how far before the target the
# restore landed) and RTO (restore started until the copy took writes).
# Expects `atelier cluster up` to have run. Needs pgbackrest: as root it is
# installed (scripts/ensure-postgres.sh); as another user without it, the
# drill says so and skips, since nothing here can install it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pgbackrest >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "restore drill: skipped: pgbackrest is not installed and installing it needs root (sudo apt-get install pgbackrest)"
        exit 0
    fi
    scripts/ensure-postgres.sh
fi
mkdir -p out
source scripts/local-catalog.sh atelier_drill
"$bin" cluster up --reset >/dev/null
"$bin" load --products 300 --replace >/dev/null
port=3996 rport=54329
base=http://127.0.0.1:$port
primary=$ATELIER_ADMIN_PRIMARY_URL
restored="host=127.0.0.1 port=$rport user=postgres dbname=atelier_drill"
scratch=$("$bin" cluster status | awk '$1 == "primary" { print $NF }')-drill-restore
work=$(mktemp -d)
ATELIER_ACCESS_LOG=false "$bin" serve --listen 127.0.0.1:$port >out/restore-drill-server.log 2>&1 &
server=$!
superuser="host=127.0.0.1 port=54320 user=postgres dbname=postgres"
cleanup() {
    kill "$server" 2>/dev/null || true
    psql "$superuser" -XAtq -c "alter system reset archive_command" -c "select pg_reload_conf()" >/dev/null 2>&1 || true
    if [ -f "$scratch/postmaster.pid" ]; then
        pg_ctl=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl
        if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$pg_ctl" -D "$scratch" -m immediate stop >/dev/null 2>&1 || true
        else "$pg_ctl" -D "$scratch" -m immediate stop >/dev/null 2>&1 || true; fi
    fi
    [ -f "$scratch.log" ] && cp "$scratch.log" out/restore-drill-restored.log
    rm -rf "$scratch" "$scratch.log" "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done

fail() { echo "restore drill: FAILED: $*" >&2; exit 1; }
q() { psql "$1" -XAtqc "$2"; }
now_ms() { date +%s%3N; }

# The token goes to curl in a header file, never on its command line.
auth=$work/auth
(umask 077; printf 'Authorization: Bearer %s\n' "$("$bin" token local)" >"$auth")
# write METHOD PATH [BODY [IDEMPOTENCY-KEY]]: prints the body; fails unless 2xx.
write() {
    local out=$work/answer status
    local args=(-s -o "$out" -w '%{http_code}' -X "$1" -H @"$auth" -H 'Content-Type: application/json')
    [ -n "${3:-}" ] && args+=(-d "$3")
    [ -n "${4:-}" ] && args+=(-H "Idempotency-Key: $4")
    status=$(curl "${args[@]}" "$base$2")
    [[ "$status" == 2* ]] || fail "$1 $2 answered $status: $(cat "$out")"
    cat "$out"
}
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

echo "restore drill: 1. full backup"
"$bin" backup run --type full

echo "restore drill: 2. writes before the target"
declare -A name_of qty_of
before_products=()
for i in 1 2 3; do
    id=$(write POST /products "{\"name\":\"Drill $i\",\"slogan\":\"s\",\"description\":\"d\",\"category\":\"Drill\",\"default_price\":\"10.00\"}" | field "['id']")
    before_products+=("$id"); name_of[$id]="Drill $i"
done
style=$(write POST "/products/${before_products[0]}/styles" \
    '{"name":"Drill style","original_price":"12.00","skus":[{"size":"S","quantity":5},{"size":"M","quantity":7}]}')
mapfile -t skus < <(echo "$style" | python3 -c 'import json,sys; [print(k) for k in json.load(sys.stdin)["skus"]]')
for sku in "${skus[@]}"; do qty_of[$sku]=$(echo "$style" | field "['skus']['$sku']['quantity']"); done
acked=$(( 3 + 1 ))
for round in 1 2 3; do
    for sku in "${skus[@]}"; do
        qty_of[$sku]=$(write POST "/skus/$sku/movements" '{"delta":-1,"reason":"drill sale"}' "drill-$sku-$round" | field "['quantity']")
        acked=$((acked + 1))
    done
done
write PATCH "/products/${before_products[1]}" '{"name":"Drill 2 renamed"}' >/dev/null
name_of[${before_products[1]}]="Drill 2 renamed"; acked=$((acked + 1))
last_before=$(q "$primary" "select clock_timestamp()")

# Commits of step 2 are all before the target and commits of step 4 all
# after it, with a margin either side.
sleep 1
target=$(q "$primary" "select clock_timestamp()")
sleep 1
echo "restore drill: 3. target $target"

echo "restore drill: 4. writes after the target, one destructive"
after=$(write POST /products '{"name":"Drill after","slogan":"s","description":"d","category":"Drill","default_price":"1.00"}' | field "['id']")
for sku in "${skus[@]}"; do write POST "/skus/$sku/movements" '{"delta":-2}' "drill-after-$sku" >/dev/null; done
write PATCH "/products/${before_products[2]}" '{"name":"Drill 3 renamed after"}' >/dev/null
write DELETE "/products/${before_products[0]}" >/dev/null
[ "$(q "$primary" "select count(*) from product where id = ${before_products[0]}")" = 0 ] || fail "the DELETE did not happen"

echo "restore drill: 5. archive, then restore to the target"
archived=$("$bin" backup archive-now --primary-url "$superuser" --timeout-s 60) || fail "the WAL after the writes was not archived within 60 s"
archive_ms=$(sed -n 's/.* \([0-9]*\) ms after the switch$/\1/p' <<<"$archived")
"$bin" backup restore --to "$scratch" --target-time "$target" --port "$rport" | tee "$work/restore.out"
rto=$(sed -n 's/.* in \([0-9.]*\) s (files.*/\1/p' "$work/restore.out")

echo "restore drill: 6. compare"
for id in "${before_products[@]}"; do
    got=$(q "$restored" "select name from product where id = $id")
    [ "$got" = "${name_of[$id]}" ] || fail "product $id on the restored copy is named '$got', want '${name_of[$id]}'"
done
[ "$(q "$restored" "select count(*) from product where id = $after")" = 0 ] || fail "product $after, made after the target, was restored"
for sku in "${skus[@]}"; do
    got=$(q "$restored" "select quantity from sku where id = $sku")
    [ "$got" = "${qty_of[$sku]}" ] || fail "sku $sku on the restored copy holds $got, the last answer before the target was ${qty_of[$sku]}"
done
off=$(q "$restored" "select count(*) from sku s where quantity <> (select coalesce(sum(delta), 0) from stock_movement m where m.sku_id = s.id)")
[ "$off" = 0 ] || fail "$off skus on the restored copy disagree with their ledger"
ATELIER_ADMIN_PRIMARY_URL=$restored ATELIER_ADMIN_REPLICA_URLS= "$bin" check >"$work/check.out" \
    || { cat "$work/check.out"; fail "atelier check found differences on the restored copy"; }
landed=$(sed -n 's/.*last completed transaction was at log time \(.*\)$/\1/p' "$scratch.log" | tail -1)
[ -n "$landed" ] || fail "the restored log does not say where recovery stopped"
gap_ms=$(q "$restored" "select round(extract(epoch from (timestamptz '$target' - timestamptz '$landed')) * 1000)")
echo "restore drill: the restored copy holds all $acked writes acknowledged before the target and none after it"

echo "restore drill: 7. the replicas follow the restored copy, then the real primary again"
read_product=${before_products[1]}
reads() {  # GETs until $work/stop exists; prints one status per line
    while [ ! -f "$work/stop" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' "$base/products/$read_product"
        curl -s -o /dev/null -w '%{http_code}\n' "$base/products/1/styles"
    done
}
readers=4  # reading loops at once: each keeps a pooled replica session busy
resync() {  # PRIMARY_ADMIN_URL HOST_PORT_FROM_REPLICAS
    rm -f "$work/stop" "$work"/reads.*
    local pids=() r
    for r in $(seq "$readers"); do reads >"$work/reads.$r" & pids+=($!); done
    ATELIER_ADMIN_PRIMARY_URL=$1 \
    ATELIER_PRIMARY_URL_FROM_REPLICAS="$2 user=atelier_replicator password=$replicator_password dbname=atelier_drill" \
        "$bin" replicate --resync --timeout-s 120
    touch "$work/stop"; wait "${pids[@]}"
    cat "$work"/reads.* >"$work/reads"
    local total bad
    total=$(wc -l <"$work/reads"); bad=$(grep -vc '^200$' "$work/reads" || true)
    echo "restore drill: $total reads during the resync, $bad not 200"
    [ "$bad" = 0 ] || fail "reads failed while the replicas resynced: $(sort "$work/reads" | uniq -c | tr '\n' ' ')"
    "$bin" check --primary-url "$1" >"$work/check.out" \
        || { cat "$work/check.out"; fail "atelier check found differences after the resync"; }
}
replicator_password=$(sed -n 's/^ATELIER_REPLICATOR_PASSWORD=//p' "$(dirname "$scratch")/secrets.env")
resync "$restored" "host=127.0.0.1 port=$rport"
got=$(q "host=127.0.0.1 port=54321 user=postgres dbname=atelier_drill" "select count(*) from product_card where product_id = ${before_products[0]}")
[ "$got" = 1 ] || fail "replica1 does not show the restored product ${before_products[0]}"
resync "$primary" "host=127.0.0.1 port=54320"
got=$(q "host=127.0.0.1 port=54321 user=postgres dbname=atelier_drill" "select count(*) from product_card where product_id = ${before_products[0]}")
[ "$got" = 0 ] || fail "replica1 still shows product ${before_products[0]}, deleted on the real primary"

echo "restore drill: 8. a failing archive shows in the backup report"
failing() { "$bin" backup metrics | grep -qx "atelier_archive_failing $1"; }
failing 0 || fail "the backup report says archiving fails before it does"
psql "$superuser" -XAtq -c "alter system set archive_command = 'false'" -c "select pg_reload_conf()" >/dev/null
q "$primary" "update replication_heartbeat set beat = beat + 1" >/dev/null  # some WAL to switch
q "$primary" "select pg_switch_wal()" >/dev/null
shown_after=
started_ms=$(now_ms)
for _ in $(seq 120); do
    if failing 1; then shown_after=$(( $(now_ms) - started_ms )); break; fi
    sleep 0.5
done
[ -n "$shown_after" ] || fail "a failing archive_command did not show in the backup report within 60 s"
psql "$superuser" -XAtq -c "alter system reset archive_command" -c "select pg_reload_conf()" >/dev/null
for _ in $(seq 240); do failing 0 && break; sleep 0.5; done
failing 0 || fail "the backup report still says archiving fails 2 minutes after it was repaired"
echo "restore drill: the failing archive showed ${shown_after} ms after the segment switch, and cleared once repaired"

echo "restore drill: passed"
echo "restore drill: RPO: 0 of $acked writes acknowledged before the target lost, 0 of the later ones restored;" \
     "recovery stopped at the last commit before the target ($landed, ${gap_ms} ms before it: the drill's own 1 s margin;" \
     "the last write before it was acknowledged at $last_before); the switched WAL segment reached the repository" \
     "${archive_ms} ms after the switch (a quiet primary switches every archive_timeout, 60 s)"
echo "restore drill: RTO: ${rto} s from the start of the restore until the copy took writes"
