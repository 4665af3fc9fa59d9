#!/usr/bin/env bash
# The balancer's readiness poller: nginx (open source) only notices a dead
# upstream when requests to it fail; an app that is up but not ready (no
# replica reachable, shutting down) would keep getting traffic. Every
# ATELIER_READYZ_INTERVAL seconds (default 2) this asks each app's /readyz
# and rewrites the upstream list, marking the unready `down`, then reloads
# nginx if the list changed.
#
#   deploy/lb-readyz.sh UPSTREAMS_FILE RELOAD_COMMAND APP[,APP...]
set -u
file=$1 reload=$2 apps=$3
interval=${ATELIER_READYZ_INTERVAL:-2}
IFS=',' read -ra servers <<<"$apps"
while true; do
    next=$(mktemp)
    for server in "${servers[@]}"; do
        if curl -sf --max-time 1 "http://$server/readyz" >/dev/null; then
            echo "server $server max_fails=2 fail_timeout=5s;"
        else
            echo "server $server down;"
        fi
    done >"$next"
    # nginx refuses an upstream whose servers are all down: keep them all
    # in then (passive checks still apply), rather than serve nothing.
    if ! grep -q "max_fails" "$next"; then
        for server in "${servers[@]}"; do echo "server $server max_fails=2 fail_timeout=5s;"; done >"$next"
    fi
    if ! cmp -s "$next" "$file"; then
        cat "$next" >"$file"
        echo "$(date +%T) upstreams: $(tr '\n' ' ' <"$file")"
        eval "$reload" || true
    fi
    rm -f "$next"
    sleep "$interval"
done
