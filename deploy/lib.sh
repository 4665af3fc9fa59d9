# Shared by the role scripts in deploy/: sourced, never run.
# shellcheck shell=bash

say() { echo "[$(basename "$0" .sh)] $*"; }
die() { echo "[$(basename "$0" .sh)] error: $*" >&2; exit 1; }

# A required setting, from the environment.
need() { [ -n "${!1:-}" ] || die "$1 is not set"; }

# Installs Debian packages that are missing (and nothing when all are there,
# so a second run touches nothing).
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        # The packages' own clusters and services are not used: each role
        # script runs its own data directory and starts its own service. So
        # none starts on install (policy-rc.d refuses; Debian's nginx would
        # take port 80, its PostgreSQL a cluster, its Prometheus port 9090).
        local policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        [ -z "$policy" ] || rm -f "$policy"
    fi
}

# Writes stdin to $1 (mode $2, owner $3) only when the content differs;
# returns 0 when it changed the file, 1 when it was already so.
write_if_changed() {
    local path=$1 mode=$2 owner=$3 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$path"
    rm -f "$tmp"
    return 0
}

# The newest PostgreSQL server binaries Debian installed.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

as_postgres() { runuser -u postgres -- "$@"; }

# KEY='value': read the same by systemd's EnvironmentFile and by bash (the
# connection strings hold spaces).
env_line() {
    case $2 in *"'"*|*$'\n'*) die "$1 must not hold a single quote or a newline" ;; esac
    printf "%s='%s'\n" "$1" "$2"
}

# PostgreSQL's memory and connection sizing (ATELIER_PG_SHARED_BUFFERS,
# ATELIER_PG_MAX_CONNECTIONS). shared_buffers "auto" (terraform's default)
# is a quarter of this host's memory, so one setting fits every instance
# size; unset, 256MB (the rehearsals' hosts share one machine).
pg_shared_buffers() {
    local setting=${ATELIER_PG_SHARED_BUFFERS:-256MB} kib
    if [ "$setting" = auto ]; then
        kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
        setting="$((kib / 4 / 1024))MB"
    fi
    echo "$setting"
}
pg_max_connections() { echo "${ATELIER_PG_MAX_CONNECTIONS:-200}"; }

# A SQL string literal.
sql_literal() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

# pg_hba.conf lines admitting $2 (a role) to database $1 from each address
# or CIDR in the comma-separated list $3, with scram-sha-256.
hba_lines() {
    local db=$1 role=$2 cidr
    IFS=',' read -ra cidrs <<<"$3"
    for cidr in "${cidrs[@]}"; do
        [ -n "$cidr" ] || continue
        [[ "$cidr" == */* ]] || cidr="$cidr/32"
        printf 'host    %-10s %-20s %-18s scram-sha-256\n' "$db" "$role" "$cidr"
    done
}

# PostgreSQL 15 from Debian. The package's own cluster (15/main on 5432) is
# not ours: keep it from holding the port.
install_postgres() {
    ensure_packages postgresql-15 postgresql-client-15
    if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ] && systemctl is-enabled --quiet postgresql 2>/dev/null; then
        systemctl disable --now --quiet postgresql
    fi
}

# Sets up and starts one PostgreSQL node in $ATELIER_DATA_DIR: initdb the
# first time, atelier's settings ($1: replication/primary.conf or
# replica.conf), pg_hba.conf, then start it (systemd unit, or pg_ctl under
# --no-systemd) or reload it when it runs already. pg_hba.conf admits the
# operator as postgres on the socket and the owner (migrations) on the
# socket and from this host; stdin adds the node's service roles.
postgres_node() {
    local role_conf=$1 hba bin data run conf changed=0
    hba="# Written by deploy/$(basename "$0"); edits are lost on the next run.
# TYPE  DATABASE   USER                 ADDRESS            METHOD
local   all        postgres                                peer
local   $ATELIER_DATABASE atelier_owner                     scram-sha-256
host    $ATELIER_DATABASE atelier_owner   $ATELIER_LISTEN_ADDRESS/32   scram-sha-256
$(cat)"
    bin=$(pg_bin)
    [ -x "$bin/postgres" ] || die "no PostgreSQL server binaries"
    data=$ATELIER_DATA_DIR/postgres
    run=$ATELIER_DATA_DIR/run
    install -d -m 0700 -o postgres -g postgres "$ATELIER_DATA_DIR" "$run"
    if [ ! -f "$data/PG_VERSION" ] && [ -n "${ATELIER_RESTORE_FROM_BACKUP:-}" ]; then
        restore_data_dir "$data" # deploy/backup.sh: a new primary from the repository
    elif [ ! -f "$data/PG_VERSION" ]; then
        say "initdb $data"
        install -d -m 0700 -o postgres -g postgres "$data"
        as_postgres "$bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
            --auth-local=peer --auth-host=scram-sha-256 >/dev/null
        echo "include_if_exists 'atelier.conf'" >>"$data/postgresql.conf"
    fi
    conf="# Written by deploy/$(basename "$0"); edits are lost on the next run.
listen_addresses = '$ATELIER_LISTEN_ADDRESS'
port = $ATELIER_PG_PORT
unix_socket_directories = '$run'
password_encryption = scram-sha-256
max_connections = $(pg_max_connections)
shared_buffers = $(pg_shared_buffers)
$(cat "$role_conf")"
    if printf '%s\n' "$conf" | write_if_changed "$data/atelier.conf" 0600 postgres:postgres; then changed=1; fi
    if printf '%s\n' "$hba" | write_if_changed "$data/pg_hba.conf" 0600 postgres:postgres; then changed=1; fi
    if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
        local unit=/etc/systemd/system/atelier-postgres.service
        if write_if_changed "$unit" 0644 root:root <<UNIT; then systemctl daemon-reload; fi
[Unit]
Description=PostgreSQL for atelier ($data)
After=network-online.target
Wants=network-online.target
# Never start on an empty mount point before the data volume is mounted.
RequiresMountsFor=$data

[Service]
Type=notify
User=postgres
ExecStart=$bin/postgres -D $data
ExecReload=/bin/kill -HUP \$MAINPID
KillMode=mixed
KillSignal=SIGINT
TimeoutSec=infinity
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
        systemctl enable --quiet atelier-postgres
        if ! systemctl is-active --quiet atelier-postgres; then
            systemctl start atelier-postgres
        elif [ "$changed" = 1 ]; then
            systemctl reload atelier-postgres
        fi
    else
        if ! as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
            say "starting PostgreSQL (no systemd)"
            as_postgres "$bin/pg_ctl" -D "$data" -l "$ATELIER_DATA_DIR/postgres.log" -w -t 60 start >/dev/null
        elif [ "$changed" = 1 ]; then
            as_postgres "$bin/pg_ctl" -D "$data" reload >/dev/null
        fi
    fi
    wait_ready "$bin" "$run"
    # A setting that a reload cannot apply (archive_mode, shared_buffers...)
    # changed: restart once, now, rather than leave it pending.
    local pending
    pending=$(node_psql -d postgres -Atc "select string_agg(name, ', ') from pg_settings where pending_restart")
    if [ -n "$pending" ]; then
        say "restarting PostgreSQL for: $pending"
        if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
            systemctl restart atelier-postgres
        else
            as_postgres "$bin/pg_ctl" -D "$data" -m fast -w -t 60 restart >/dev/null
        fi
        wait_ready "$bin" "$run"
    fi
}

wait_ready() {
    for _ in $(seq 120); do
        as_postgres "$1/pg_isready" -q -h "$2" -p "$ATELIER_PG_PORT" && return 0
        sleep 0.5
    done
    die "PostgreSQL did not become ready"
}

# psql as the postgres superuser over this node's unix socket.
node_psql() {
    as_postgres env PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -v ON_ERROR_STOP=1 -h "$ATELIER_DATA_DIR/run" -p "$ATELIER_PG_PORT" "$@"
}

# The login roles (sql/roles.sql), with the passwords this host is given.
ensure_roles() {
    {
        for role in owner writer reader replicator; do
            local var="ATELIER_${role^^}_PASSWORD"
            [ -n "${!var:-}" ] && echo "set atelier.${role}_password = $(sql_literal "${!var}");"
        done
        cat "$ATELIER_SOURCE/sql/roles.sql"
    } | node_psql -d postgres -f -
}

# The catalog database, owned by the owner role, with the superuser's
# grants inside it (sql/catalog_grants.sql).
ensure_database() {
    if [ "$(node_psql -d postgres -Atc "select count(*) from pg_database where datname = '$ATELIER_DATABASE'")" = 0 ]; then
        node_psql -d postgres -c "create database \"$ATELIER_DATABASE\" owner atelier_owner"
    fi
    node_psql -d "$ATELIER_DATABASE" -f - <"$ATELIER_SOURCE/sql/catalog_grants.sql"
}

# What the primary holds beyond PostgreSQL itself: the roles, the catalog
# database, its migrations and the publication of the read model
# (deploy/primary.sh, and deploy/patroni.sh on the leader). Idempotent.
write_model_objects() {
    ensure_roles
    ensure_database
    migrate primary
    if [ "$(node_psql -d "$ATELIER_DATABASE" -Atc "select count(*) from pg_publication where pubname = 'atelier_read_model'")" = 0 ]; then
        load_first_catalog
        node_psql -d "$ATELIER_DATABASE" -f - <"$ATELIER_SOURCE/replication/publication.sql"
    fi
}

# The generated catalog of a fleet's first boot (ATELIER_LOAD_PRODUCTS
# products; 0 or unset: none), loaded before the publication exists. No
# replica can subscribe yet (deploy/replica.sh waits for the publication),
# so no logical slot holds back the load's WAL: streamed through the
# subscriptions, a 1,000,000-product load kept more WAL behind each slot
# than max_slot_wal_keep_size allows, and PostgreSQL would have invalidated
# the slots (docs/benchmarks.md, scripts/bench-load-wal.sh). The replicas
# then copy the finished documents when they subscribe. Only into an empty
# catalog, or over a load a stopped boot left unfinished (the loader's
# bulk_load mark): a catalog with products is never replaced here.
load_first_catalog() {
    local products=${ATELIER_LOAD_PRODUCTS:-0} state
    [[ "$products" =~ ^[0-9]+$ ]] || die "ATELIER_LOAD_PRODUCTS: a whole number of products, not $products"
    [ "$products" -gt 0 ] || return 0
    state=$(node_psql -d "$ATELIER_DATABASE" -Atc "select case
        when exists (select from bulk_load where state = 'loading') then 'unfinished'
        when exists (select from product) then 'loaded' else 'empty' end")
    [ "$state" != loaded ] || return 0
    say "loading the generated catalog ($products products, into a catalog that is $state) before publishing it"
    as_postgres env ATELIER_ADMIN_REPLICA_URLS= \
        ATELIER_ADMIN_PRIMARY_URL="host=$ATELIER_DATA_DIR/run port=$ATELIER_PG_PORT user=postgres dbname=$ATELIER_DATABASE" \
        "$ATELIER_BIN" load --products "$products" $([ "$state" = unfinished ] && echo --replace) >/dev/null
}

# Migrations through refinery (`atelier migrate`), as the owner role over
# this node's unix socket.
migrate() {
    ATELIER_MIGRATE_URL="host=$ATELIER_DATA_DIR/run port=$ATELIER_PG_PORT user=atelier_owner password=$ATELIER_OWNER_PASSWORD dbname=$ATELIER_DATABASE" \
        "$ATELIER_BIN" migrate --role "$1" >/dev/null
}

# Common defaults of the role scripts.
ATELIER_SOURCE=${ATELIER_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ATELIER_DATABASE=${ATELIER_DATABASE:-atelier}
ATELIER_DATA_DIR=${ATELIER_DATA_DIR:-/var/lib/atelier}
ATELIER_PG_PORT=${ATELIER_PG_PORT:-5432}
ATELIER_BIN=${ATELIER_BIN:-/usr/local/bin/atelier}

# --no-systemd: the process runs under pg_ctl or deploy/supervise.sh
# instead of a systemd unit (network namespaces have no systemd of their own).
for arg in "$@"; do
    case $arg in
        --no-systemd) ATELIER_SUPERVISOR=none ;;
        *) die "unknown argument $arg (settings come from the environment; see the header)" ;;
    esac
done

# Runs `$2...` under deploy/supervise.sh, its pid in $1.pid and output in
# $1.log; restarts it when $1.stamp (what it was started with) changed.
# Returns at once when it already runs with the same stamp.
supervised() {
    local name=$1 stamp=$2; shift 2
    local pidfile=$name.pid
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        if [ -f "$name.stamp" ] && [ "$(cat "$name.stamp")" = "$stamp" ]; then
            return 0
        fi
        kill "$(cat "$pidfile")"; sleep 1
    fi
    echo "$stamp" >"$name.stamp"
    setsid "$ATELIER_SOURCE/deploy/supervise.sh" "$name.log" "$@" </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
}
