#!/usr/bin/env bash
# Provisions the LOAD BALANCER host (Debian 12): nginx, least_conn over the
# app servers with keep-alive upstream connections, passive health checks,
# retries of idempotent requests on another app, and a /readyz poller that
# takes an unready app out; HTTPS at the door. Idempotent. Run as root.
#
#   ATELIER_LB_LISTEN=0.0.0.0:80 ATELIER_APP_SERVERS=10.0.2.21:3000,10.0.2.22:3000 \
#   ATELIER_TLS_CERT=/etc/atelier/tls/cert.pem ATELIER_TLS_KEY=/etc/atelier/tls/key.pem deploy/lb.sh [--no-systemd]
#
# Tokens must not cross the network in clear text: with a certificate, the
# balancer serves HTTPS (with Strict-Transport-Security) on
# ATELIER_LB_TLS_LISTEN, and its plain-HTTP listener serves reads only
# (storefront GETs are public) and refuses every write with 403, pointing at
# HTTPS. Without a certificate it refuses writes on plain HTTP just the same,
# unless ATELIER_LB_PLAIN_WRITES=1 says the network in front of it is
# private (never on the internet).
#
# Settings (environment):
#   ATELIER_LB_LISTEN      address:port of plain HTTP (default 0.0.0.0:80)
#   ATELIER_LB_TLS_LISTEN  address:port of HTTPS (default 0.0.0.0:443)
#   ATELIER_TLS_CERT, ATELIER_TLS_KEY  PEM files (certificate chain, key);
#                          both or neither; the key stays root-only
#   ATELIER_LB_PLAIN_WRITES  1: accept writes on plain HTTP (private networks only)
#   ATELIER_APP_SERVERS    the app servers, address:port, comma-separated
#   ATELIER_BODY_BYTES_MAX request body limit, as the service's (default 65536)
#   ATELIER_DATA_DIR       default /var/lib/atelier; under --no-systemd nginx runs
#                          from $ATELIER_DATA_DIR/nginx (its own config, pid, logs)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need ATELIER_APP_SERVERS
listen=${ATELIER_LB_LISTEN:-0.0.0.0:80}
tls_listen=${ATELIER_LB_TLS_LISTEN:-0.0.0.0:443}
body_max=${ATELIER_BODY_BYTES_MAX:-65536}
cert=${ATELIER_TLS_CERT:-}
key=${ATELIER_TLS_KEY:-}
if [ -n "$cert$key" ]; then
    [ -r "$cert" ] && [ -r "$key" ] || die "ATELIER_TLS_CERT and ATELIER_TLS_KEY must both name readable PEM files"
    chmod 0600 "$key"
fi
ensure_packages nginx curl

if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    prefix=/etc/nginx
    conf_dir=/etc/nginx/conf.d
    logs=/var/log/nginx
    upstreams=/etc/nginx/atelier-upstreams.conf
    reload="systemctl reload nginx"
else
    prefix=$ATELIER_DATA_DIR/nginx
    conf_dir=$prefix
    logs=$prefix/logs
    upstreams=$prefix/atelier-upstreams.conf
    reload="nginx -p $prefix -c $prefix/nginx.conf -s reload"
    install -d "$prefix" "$logs" "$prefix/tmp"
fi
# Every app in until the poller has looked.
if [ ! -f "$upstreams" ]; then
    IFS=',' read -ra servers <<<"$ATELIER_APP_SERVERS"
    for s in "${servers[@]}"; do echo "server $s max_fails=2 fail_timeout=5s;"; done >"$upstreams"
fi

# What both listeners do: limits, the access log, and the proxy to the apps.
common_server=$(cat <<NGINX
    access_log $logs/atelier-access.log atelier buffer=64k flush=1s;
    client_max_body_size $body_max;      # the service's ATELIER_BODY_BYTES_MAX
    client_header_timeout 10s;
    client_body_timeout 10s;

    # /metrics is for the operators' Prometheus, which scrapes each app's
    # operations listener (ATELIER_OPS_LISTEN) on the private network;
    # through the balancer it is refused, in the contract's error shape.
    location = /metrics {
        default_type application/json;
        return 403 '{"error":"forbidden","message":"/metrics is not served through the balancer"}';
    }

    location / {
        proxy_pass http://atelier;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        # The apps trust the last address (ATELIER_TRUSTED_PROXIES): the one
        # nginx saw, whatever the client wrote before it.
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_connect_timeout 1s;
        proxy_send_timeout 5s;
        proxy_read_timeout 5s;          # the service answers within its own deadlines (1 s writes)
        # A connection refused or reset, or a 502/504, is tried on the next
        # app; nginx never retries POST or PATCH (not idempotent) unless
        # asked, and is not asked: those carry Idempotency-Key for the client.
        proxy_next_upstream error timeout http_502 http_504;
        proxy_next_upstream_tries 2;
        proxy_next_upstream_timeout 2s;
    }
NGINX
)
# Plain HTTP: reads only (refused writes answer in the contract's error
# shape, before they reach an app), unless the operator says the network
# in front is private.
https_url="https://\$host"
[ "${tls_listen##*:}" = 443 ] || https_url="https://\$host:${tls_listen##*:}"
plain_guard=
if [ "${ATELIER_LB_PLAIN_WRITES:-0}" != 1 ]; then
    plain_guard=$(cat <<NGINX
    default_type application/json;
    if (\$atelier_is_write) {
        return 403 '{"error":"forbidden","message":"writes must be sent over HTTPS: $https_url"}';
    }
NGINX
)
fi
tls_server=
if [ -n "$cert" ]; then
    tls_server=$(cat <<NGINX
server {
    listen $tls_listen ssl reuseport backlog=4096;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:atelier_tls:10m;
    ssl_session_timeout 1h;
    # Browsers that have seen the API over HTTPS never use plain HTTP again.
    add_header Strict-Transport-Security "max-age=31536000" always;
$common_server
}
NGINX
)
fi

site=$(cat <<NGINX
# Written by deploy/lb.sh; edits are lost on the next run.
upstream atelier {
    least_conn;
    include $upstreams;
    keepalive 64;               # idle HTTP/1.1 connections kept to the apps
    keepalive_requests 10000;
    keepalive_timeout 60s;
}

log_format atelier '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent '
                   'rt=\$request_time upstream=\$upstream_addr us=\$upstream_status '
                   'uct=\$upstream_connect_time urt=\$upstream_response_time rid=\$upstream_http_x_request_id';

# Anything but a read is a write.
map \$request_method \$atelier_is_write {
    GET 0;
    HEAD 0;
    OPTIONS 0;
    default 1;
}

server {
    listen $listen reuseport backlog=4096;
$plain_guard
$common_server
}
$tls_server
NGINX
)

if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    changed=0
    printf '%s\n' "$site" | write_if_changed "$conf_dir/atelier.conf" 0644 root:root && changed=1
    rm -f /etc/nginx/sites-enabled/default
    nginx -t -q
    systemctl enable --quiet nginx
    if ! systemctl is-active --quiet nginx; then systemctl start nginx
    elif [ "$changed" = 1 ]; then systemctl reload nginx; fi
    if write_if_changed /etc/systemd/system/atelier-lb-readyz.service 0644 root:root <<UNIT; then systemctl daemon-reload; systemctl restart atelier-lb-readyz; fi
[Unit]
Description=atelier: take unready app servers out of nginx
After=nginx.service

[Service]
ExecStart=$ATELIER_SOURCE/deploy/lb-readyz.sh $upstreams "$reload" $ATELIER_APP_SERVERS
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
    systemctl enable --now --quiet atelier-lb-readyz
else
    conf=$(cat <<NGINX
# Written by deploy/lb.sh --no-systemd; edits are lost on the next run.
worker_processes auto;
pid $prefix/nginx.pid;
error_log $logs/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
$site
}
NGINX
)
    changed=0
    printf '%s\n' "$conf" | write_if_changed "$prefix/nginx.conf" 0644 root:root && changed=1
    nginx -t -q -p "$prefix" -c "$prefix/nginx.conf"
    if [ -f "$prefix/nginx.pid" ] && kill -0 "$(cat "$prefix/nginx.pid")" 2>/dev/null; then
        [ "$changed" = 0 ] || $reload
    else
        nginx -p "$prefix" -c "$prefix/nginx.conf"
    fi
    supervised "$ATELIER_DATA_DIR/lb-readyz" "$ATELIER_APP_SERVERS" \
        "$ATELIER_SOURCE/deploy/lb-readyz.sh" "$upstreams" "$reload" "$ATELIER_APP_SERVERS"
fi
if [ -n "$cert" ]; then
    say "balancing $ATELIER_APP_SERVERS on $listen (reads only) and https://$tls_listen"
else
    say "balancing $ATELIER_APP_SERVERS on $listen (no certificate: writes $([ "${ATELIER_LB_PLAIN_WRITES:-0}" = 1 ] && echo 'accepted in clear, private network' || echo refused))"
fi
