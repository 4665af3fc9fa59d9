#!/usr/bin/env bash
# The multi-host rehearsal: the deployment of deploy/ on one machine, with a
# network namespace standing in for each host.
#
#   scripts/rehearsal.sh
#
# Builds a private network (a bridge inside its own namespace, so the host's
# firewall never sees the traffic) and seven hosts on it:
#
#   primary 10.77.0.10   replica1 .11   replica2 .12
#   app1    10.77.0.21   app2     .22   lb       .30   client .40
#
# runs each host's role script in its namespace (--no-systemd, a data
# directory per host under ATELIER_REHEARSAL_DIR) with the binary EC2 runs
# (scripts/build-bin.sh deploy: static, musl), runs every script a second
# time to show it changes nothing (a replica provisioned before the primary
# first, which must refuse to subscribe), has the primary load a small
# catalog before it publishes, as a fleet's first boot does, takes a
# differential backup by hand (primary.sh took the full one; a host's
# timers take the rest) and checks the backup report, and then proves,
# from the client host through the balancer's address only:
#
#   1. the balancer serves HTTPS (a certificate this script makes, HSTS) and
#      plain HTTP for reads only; a write without a token is 401, one over
#      plain HTTP is refused at the door; the four reads and two writes (with
#      a token issued by `atelier token create`, read back with X-Read-After)
#      work, both apps serve, and the writes reach both replicas;
#   2. the service's connections are its roles', never a superuser's;
#   3. the JMeter plan at a small size runs with zero errors; /metrics is
#      refused through the balancer, and Debian's Prometheus, set up on the
#      client host by deploy/monitoring.sh, scrapes both apps' operations
#      listeners with the alert rules loaded and none firing;
#   4. an app server killed mid-run (every process of its host) loses no GET,
#      the balancer stops sending to it, and it comes back when restarted;
#   5. a replica stopped under reads and writes, then replaced (an empty disk,
#      the same subscription name: its old slot is dropped), copies the read model,
#      and `atelier check` finds no difference on any node;
#   6. the primary's data directory is lost (stopped hard, removed): primary.sh
#      with ATELIER_RESTORE_FROM_BACKUP=latest restores it from the backup
#      repository, every archived write is there, `atelier replicate --resync`
#      points the replicas at it, reads never fail meanwhile, writes work
#      again and `atelier check` is clean.
#
# Everything is torn down at the end, on failure too (logs are copied to
# out/rehearsal/ first). Needs root; without it (or without network
# namespaces) it says why and exits 0, so the rest of the suite still runs.
# ATELIER_REHEARSAL_NET (default 10.77.0) picks another /24 if that one is
# in use; ATELIER_REHEARSAL_KEEP=1 leaves everything running for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
fleet=rehearsal prefix=atl
net=${ATELIER_REHEARSAL_NET:-10.77.0}
dir=${ATELIER_REHEARSAL_DIR:-/var/tmp/atelier-rehearsal}
declare -A addr=([primary]=$net.10 [replica1]=$net.11 [replica2]=$net.12
                 [app1]=$net.21 [app2]=$net.22 [lb]=$net.30 [client]=$net.40)
hosts=(primary replica1 replica2 app1 app2 lb client)
pg_hosts=(primary replica1 replica2)
lb_url=https://${addr[lb]}
plain_url=http://${addr[lb]}:80
bin=$dir/bin/atelier

source scripts/fleet.sh
fleet_preflight

# Stops host $1's PostgreSQL (fast shutdown: sessions cut, data safe).
stop_postgres() {
    runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" \
        -D "$dir/$1/postgres" stop -m fast -t 20 >/dev/null
}

# --- what every host needs, installed while the network is still there ----
# (a namespace has no route out; Debian's packages are the only download)

scripts/ensure-postgres.sh
scripts/ensure-jmeter.sh
scripts/ensure-prometheus.sh
# The hosts' packages, installed as the role scripts install theirs (their
# services not started: the lb host runs its own nginx).
(set --; source deploy/lib.sh && ensure_packages nginx curl ca-certificates openssl)
built=$(scripts/build-bin.sh deploy)

# A previous run that was killed may have left hosts behind.
remove_everything
trap teardown EXIT

# The binary and the hosts' data: readable by the unprivileged users that
# run PostgreSQL and the service.
install -d -m 0755 "$dir" "$dir/bin"
install -m 0755 "$built" "$bin"

# --- the network ------------------------------------------------------------

fleet_network

# --- secrets: generated here, passed to each host in its environment -------

owner_pw=$(secret) writer_pw=$(secret) reader_pw=$(secret) replicator_pw=$(secret)
(umask 077; printf 'ATELIER_%s_PASSWORD=%s\n' OWNER "$owner_pw" WRITER "$writer_pw" \
    READER "$reader_pw" REPLICATOR "$replicator_pw" >"$dir/secrets.env")

# The balancer's certificate: self-signed for its address, trusted by the
# client through --cacert (on EC2, terraform hands lb.sh a real one).
install -d -m 0700 "$dir/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=atelier-rehearsal" \
    -addext "subjectAltName=IP:${addr[lb]}" -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" 2>/dev/null
chmod 0644 "$dir/tls/cert.pem"

# --- the hosts, each by its own role script ---------------------------------

apps="${addr[app1]},${addr[app2]}"
replicas="${addr[replica1]},${addr[replica2]}"
common=(ATELIER_SOURCE="$repo" ATELIER_BIN="$bin")
provision() {
    case $1 in
        primary) on primary env "${common[@]}" ATELIER_LISTEN_ADDRESS="${addr[primary]}" \
                    ATELIER_APP_ADDRESSES="$apps" ATELIER_REPLICA_ADDRESSES="$replicas" \
                    ATELIER_OWNER_PASSWORD="$owner_pw" ATELIER_WRITER_PASSWORD="$writer_pw" \
                    ATELIER_REPLICATOR_PASSWORD="$replicator_pw" ATELIER_LOAD_PRODUCTS=2000 \
                    ATELIER_PGBACKREST_CONFIG="$dir/primary/pgbackrest.conf" \
                    ATELIER_BACKUP_REPO_PATH="$dir/backup-repo" deploy/primary.sh --no-systemd ;;
        replica*) on "$1" env "${common[@]}" ATELIER_LISTEN_ADDRESS="${addr[$1]}" \
                    ATELIER_APP_ADDRESSES="$apps" ATELIER_PRIMARY_ADDRESS="${addr[primary]}" \
                    ATELIER_SUBSCRIPTION="atelier_$1" ATELIER_OWNER_PASSWORD="$owner_pw" \
                    ATELIER_PG_SHARED_BUFFERS="$([ "$1" = replica2 ] && echo auto || echo 256MB)" \
                    ATELIER_READER_PASSWORD="$reader_pw" ATELIER_REPLICATOR_PASSWORD="$replicator_pw" \
                    deploy/replica.sh --no-systemd ;;
        app*) on "$1" env "${common[@]}" ATELIER_LISTEN="${addr[$1]}:3000" \
                    ATELIER_PRIMARY_ADDRESS="${addr[primary]}" ATELIER_REPLICA_ADDRESSES="$replicas" \
                    ATELIER_WRITER_PASSWORD="$writer_pw" ATELIER_READER_PASSWORD="$reader_pw" \
                    ATELIER_TRUSTED_PROXIES="${addr[lb]}" \
                    deploy/app.sh --no-systemd ;;
        lb) on lb env "${common[@]}" ATELIER_LB_LISTEN="${addr[lb]}:80" ATELIER_LB_TLS_LISTEN="${addr[lb]}:443" \
                    ATELIER_TLS_CERT="$dir/tls/cert.pem" ATELIER_TLS_KEY="$dir/tls/key.pem" \
                    ATELIER_APP_SERVERS="${addr[app1]}:3000,${addr[app2]}:3000" \
                    deploy/lb.sh --no-systemd ;;
    esac
}
# Hosts boot together on EC2: a replica whose role script runs before the
# primary publishes must refuse to subscribe (PostgreSQL 15 would accept,
# with a warning, a subscription that holds no tables for ever) and be
# retried. Provision replica1 first, and require exactly that refusal.
if provision replica1 >"$dir/replica1-before-primary.log" 2>&1; then
    fail "replica1 provisioned before the primary published"
fi
grep -q "does not publish atelier_read_model yet" "$dir/replica1-before-primary.log" ||
    { cat "$dir/replica1-before-primary.log" >&2; fail "replica1 failed before the primary for another reason"; }
say "a replica provisioned before the primary publishes refuses to subscribe (and is retried)"
# The primary loads the catalog (2,000 products, as a fleet's first boot
# does: ATELIER_LOAD_PRODUCTS) before it publishes, and each replica's
# script returns only once its initial copy holds all of it.
for h in primary replica1 replica2; do provision "$h"; done
for r in replica1 replica2; do
    [ "$(on "$r" runuser -u postgres -- psql -X -Atq -h "$dir/$r/run" -d atelier -c "select count(*) from product_card")" = 2000 ] ||
        fail "$r's script returned before its initial copy held the 2,000 products the primary loaded"
done
say "the primary loaded 2,000 products before publishing; both replicas copied them before their scripts returned"
[ "$(on replica1 runuser -u postgres -- psql -X -Atq -h "$dir/replica1/run" -d atelier -c \
    "select count(*) from pg_subscription_rel")" -gt 0 ] || fail "replica1's subscription lists no tables"
# replica2 runs with terraform's default ATELIER_PG_SHARED_BUFFERS=auto: a
# quarter of the host's memory, in MB.
quarter_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 4 / 1024 ))
[ "$(on replica2 runuser -u postgres -- psql -X -Atq -h "$dir/replica2/run" -d atelier -c \
    "select setting::bigint * 8 / 1024 from pg_settings where name = 'shared_buffers'")" = "$quarter_mb" ] ||
    fail "replica2's shared_buffers is not a quarter of the host's memory ($quarter_mb MB) with ATELIER_PG_SHARED_BUFFERS=auto"

# The tools reach the databases over their unix sockets (one file system),
# as the owner.
socket_url() { echo "host=$dir/$1/run port=5432 user=$2 dbname=atelier${3:+ password=$3}"; }
export ATELIER_ADMIN_PRIMARY_URL ATELIER_ADMIN_REPLICA_URLS
ATELIER_ADMIN_PRIMARY_URL=$(socket_url primary atelier_owner "$owner_pw")
ATELIER_ADMIN_REPLICA_URLS="$(socket_url replica1 atelier_owner "$owner_pw"),$(socket_url replica2 atelier_owner "$owner_pw")"
"$bin" check >"$dir/check-after-load.log" || { cat "$dir/check-after-load.log" >&2; fail "the replicas differ from the primary after the load"; }
# The shop's token, issued as the owner; it reaches the tools in their
# environment and curl in a header file, never on a command line.
ATELIER_TOKEN=$("$bin" token create --name rehearsal --scope catalog:write,stock:write 2>/dev/null)
export ATELIER_TOKEN
(umask 077; printf 'Authorization: Bearer %s\n' "$ATELIER_TOKEN" >"$dir/auth-header")

for h in app1 app2 lb; do provision "$h"; done

# Backups: primary.sh took a full backup when it set the host up; a host's
# timers take the next ones, taken here by hand (namespaces have no
# systemd), then the report Prometheus would read must show them, and an
# archive that works.
on primary "$bin" backup run --type diff --config "$dir/primary/pgbackrest.conf" >"$dir/backup-diff.log"
report=$(on primary runuser -u postgres -- "$bin" backup metrics --config "$dir/primary/pgbackrest.conf" \
    --primary-url "$(socket_url primary postgres | sed 's/dbname=atelier/dbname=postgres/')")
for want in 'atelier_backup_status_ok 1' 'atelier_backup_count 2' 'atelier_archive_failing 0'; do
    grep -qx "$want" <<<"$report" || { echo "$report" >&2; fail "the backup report lacks '$want'"; }
done
grep -q '^atelier_backup_newest_age_seconds{type="diff"}' <<<"$report" || fail "the backup report shows no diff backup"
say "backups: a full one at provisioning, a diff one now; the report shows both and a working archive"

# --- running every script again changes nothing -----------------------------

state() {
    for h in primary replica1 replica2; do head -1 "$dir/$h/postgres/postmaster.pid"; done
    cat "$dir/app1/atelier.pid" "$dir/app2/atelier.pid" "$dir/lb/nginx/nginx.pid" "$dir/lb/lb-readyz.pid"
    # Only where settings live: not into the PostgreSQL data directories'
    # subdirectories, the backup repository, pgBackRest's lock and log
    # directories or nginx's logs, whose entries come and go while the
    # hosts run (a directory removed mid-walk fails find, and the script).
    find "$dir" \( -path "$dir/backup-repo" -o -path "$dir/lb/nginx/logs" -o -path "$dir/*/pgbackrest" \
            -o \( -path "$dir/*/postgres/*" -type d \) \) -prune -o \
        \( -name '*.conf' -o -name '*.env' -o -name '*.stamp' \) -type f -print0 | sort -z | xargs -0 md5sum
    ip netns exec atl-primary runuser -u postgres -- psql -X -Atq -h "$dir/primary/run" -d atelier \
        -c "select count(*) from pg_subscription" -c "select string_agg(version::text, ',' order by version) from refinery_schema_history"
}
before=$(state)
for h in primary replica1 replica2 app1 app2 lb; do provision "$h" >"$dir/second-run-$h.log"; done
after=$(state)
if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "a second run of the role scripts changed something (above)"
fi
say "second run of every role script: nothing changed (same processes, same files)"
# A replica that is listed but not ready (here: no host at 10.77.0.13 yet,
# as when replica_count grows and its host is still booting) is not given
# to the service: app1 keeps serving from the two, unrestarted.
replicas="$replicas,10.77.0.13" provision app1 >"$dir/app1-unready-replica.log"
grep -q "replica 10.77.0.13 is not admitted yet" "$dir/app1-unready-replica.log" ||
    { cat "$dir/app1-unready-replica.log" >&2; fail "app1 did not say it left out the replica that is not ready"; }
[ "$(state)" = "$after" ] || fail "listing a replica that is not ready changed app1 (its environment or its process)"
say "a listed replica whose copy is not complete is not admitted; the app keeps its replicas and its process"

# --- 1. reads and writes through the balancer --------------------------------

client() { on client "$@"; }
fetch() { client curl -s --cacert "$dir/tls/cert.pem" -o "$dir/body" -w '%{http_code}' "$@"; }
expect() {
    local want=$1 what=$2; shift 2
    local got
    got=$(fetch "$@")
    [ "$got" = "$want" ] || fail "$what: HTTP $got, want $want: $(head -c 300 "$dir/body")"
}
# A header of the last answer whose headers went to $dir/headers.
header() { tr -d '\r' <"$dir/headers" | awk -F': ' -v name="$1" 'tolower($1) == name { print $2 }'; }
owner_psql() {
    runuser -u postgres -- psql -X -Atq -v ON_ERROR_STOP=1 "$(socket_url "$1" atelier_owner "$owner_pw")" -c "$2"
}
read -r product sku < <(owner_psql primary \
    "select s.product_id, k.id from sku k join style s on s.id = k.style_id order by k.id desc limit 1" | tr '|' ' ')
expect 200 "GET /products over HTTPS" -D "$dir/headers" "$lb_url/products?page=2&count=3"
[ -n "$(header strict-transport-security)" ] || fail "HTTPS answers carry no Strict-Transport-Security"
expect 200 "GET /products over plain HTTP (reads stay public)" "$plain_url/products?page=2&count=3"
expect 200 "GET /products/$product" "$lb_url/products/$product"
grep -q "\"id\":$product," "$dir/body" || fail "product $product's document is not its own"
expect 200 "GET /products/$product/styles" "$lb_url/products/$product/styles"
expect 200 "GET /products/$product/related" "$lb_url/products/$product/related"
for _ in $(seq 20); do expect 200 "GET /products/$product" "$lb_url/products/$product"; done
sleep 1.5 # the access log is flushed every second
access_log=$dir/lb/nginx/logs/atelier-access.log
for h in app1 app2; do
    grep -q "upstream=${addr[$h]}:3000" "$access_log" || fail "the balancer never sent to $h"
done

quantity_before=$(owner_psql primary "select sum(delta) from stock_movement where sku_id = $sku")
movement=(-X POST -H 'Content-Type: application/json' -d '{"delta":7,"reason":"rehearsal"}')
expect 401 "a write over HTTPS without a token" "${movement[@]}" "$lb_url/skus/$sku/movements"
expect 403 "a write over plain HTTP, token and all" -H @"$dir/auth-header" "${movement[@]}" "$plain_url/skus/$sku/movements"
grep -q 'writes must be sent over HTTPS' "$dir/body" || fail "the plain-HTTP refusal does not say why"
[ "$(owner_psql primary "select sum(delta) from stock_movement where sku_id = $sku")" = "$quantity_before" ] ||
    fail "a refused write changed the stock"
client curl -sf --cacert "$dir/tls/cert.pem" -H @"$dir/auth-header" -D "$dir/headers" -o /dev/null \
    "${movement[@]}" "$lb_url/skus/$sku/movements"
read_after=$(header x-read-after)
[ -n "$read_after" ] || fail "the write's answer has no X-Read-After"
expect 200 "GET styles after the write" -H "X-Read-After: $read_after" "$lb_url/products/$product/styles"
want=$((quantity_before + 7))
python3 - "$dir/body" "$sku" "$want" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
got = [s["skus"][sys.argv[2]]["quantity"] for s in doc["results"] if sys.argv[2] in s["skus"]]
if got != [int(sys.argv[3])]:
    sys.exit(f"rehearsal: read after the write shows quantity {got}, want {sys.argv[3]}")
PY
client curl -sf --cacert "$dir/tls/cert.pem" -H @"$dir/auth-header" -D "$dir/headers" -o "$dir/body" \
    -X POST "$lb_url/products" -H 'Content-Type: application/json' \
    -d '{"name":"Rehearsal Jacket","slogan":"Made on a bridge","description":"Seven hosts.","category":"Jackets","default_price":"99.00"}'
new_product=$(header location | sed 's#.*/##')
read_after=$(header x-read-after)
expect 200 "GET the new product with X-Read-After" -H "X-Read-After: $read_after" "$lb_url/products/$new_product"
grep -q '"name":"Rehearsal Jacket"' "$dir/body" || fail "the new product reads back wrong"
primary_doc=$(owner_psql primary "select md5(doc) from api_product_styles where product_id = $product")
has_both_writes() {
    [ "$(owner_psql "$1" "select md5(doc) from api_product_styles where product_id = $product")" = "$primary_doc" ] &&
        [ "$(owner_psql "$1" "select count(*) from api_product_detail where product_id = $new_product")" = 1 ]
}
for r in replica1 replica2; do
    for _ in $(seq 100); do
        has_both_writes "$r" && continue 2
        sleep 0.1
    done
    fail "the writes did not reach $r within 10 s"
done
say "1. HTTPS with HSTS; plain HTTP for reads only; 401 without a token; four reads, two writes read back with X-Read-After, both apps serving, both replicas have the writes"

# --- 2. the service logs in as its roles only ----------------------------------

for h in "${pg_hosts[@]}"; do
    logins=$(runuser -u postgres -- psql -X -Atq -h "$dir/$h/run" -d atelier -c \
        "select coalesce(string_agg(distinct a.usename || case when r.rolsuper then '(superuser)' else '' end, ','), '')
         from pg_stat_activity a join pg_roles r on r.oid = a.usesysid
         where host(a.client_addr) in ('${addr[app1]}', '${addr[app2]}')")
    case $h in primary) want=atelier_writer ;; *) want=atelier_reader ;; esac
    [ "$logins" = "$want" ] || fail "the apps log in to $h as '$logins', want '$want'"
done
say "2. the apps log in as atelier_writer on the primary and atelier_reader on the replicas, nothing else"

# --- 3. the JMeter plan through the balancer ------------------------------------

say "3. JMeter through the balancer"
client env ATELIER_BIN="$bin" ATELIER_JMETER_IDS=2000 scripts/jmeter.sh -Jhost="${addr[lb]}" -Jport=443 -Jprotocol=https \
    -Jget_threads=8 -Jget_iterations=25 -Jpost_threads=4 -Jpost_iterations=25 -Jrampup=1

# --- 3a. Prometheus scrapes the fleet (deploy/monitoring.sh) ----------------

# /metrics is refused through the balancer and served on each app's
# operations listener; Debian's Prometheus, set up on the client host by its
# role script, scrapes both apps there and loads the alert rules.
expect 403 "/metrics through the balancer" "$lb_url/metrics"
client curl -sf "http://${addr[app1]}:9464/metrics" | grep -q '^atelier_requests_total{' ||
    fail "app1's operations listener does not serve /metrics"
prometheus=${addr[client]}:9090
on client env ATELIER_DATA_DIR="$dir/client" ATELIER_PROMETHEUS_LISTEN="$prometheus" ATELIER_SCRAPE_INTERVAL=1s \
    ATELIER_APP_OPS_ADDRESSES="${addr[app1]}:9464,${addr[app2]}:9464" deploy/monitoring.sh --no-systemd
promql() { client curl -sf --get "http://$prometheus/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'; }
for _ in $(seq 100); do
    [ "$(promql 'sum(up{job="atelier"})')" = 2 ] && [ "$(promql 'count(atelier_replica_up == 1)')" = 4 ] && break
    sleep 0.2
done
[ "$(promql 'sum(up{job="atelier"})')" = 2 ] || fail "Prometheus does not see both apps up: $(promql 'up')"
[ "$(promql 'count(atelier_replica_up == 1)')" = 4 ] || fail "Prometheus does not see each app's two replicas up"
[ "$(promql 'sum(atelier_requests_total) > 0')" != "" ] || fail "Prometheus scraped no request counts"
rules=$(client curl -sf "http://$prometheus/api/v1/rules")
python3 - "$rules" <<'PY' || fail "the alert rules are not loaded and healthy"
import json, sys
rules = [r for g in json.loads(sys.argv[1])["data"]["groups"] for r in g["rules"]]
bad = [r["name"] for r in rules if r["health"] != "ok"]
firing = [r["name"] for r in rules if r.get("state") == "firing"]
if len(rules) < 10 or bad or firing:
    sys.exit(f"rehearsal: {len(rules)} rules, unhealthy {bad}, firing on a healthy fleet {firing}")
PY
say "3a. /metrics refused through the balancer; Prometheus scrapes both apps' operations listeners, rules loaded, none firing"

# Steps 4 to 6: an app server, a replica and the primary's disk lost.
source scripts/rehearsal/faults.sh

say "passed"
