#!/usr/bin/env bash
# Provisions one MONITORING host (Debian 12): Debian's Prometheus with
# deploy/monitoring/'s configuration and alert rules, scraping every app
# server's operations listener (ATELIER_OPS_LISTEN; /metrics is refused
# through the balancer) and node_exporter on the database hosts (the backup
# report and the reconcile ledger are textfiles there). Idempotent. Run as
# root.
#
#   ATELIER_APP_OPS_ADDRESSES=10.0.2.21:9464,10.0.2.22:9464 \
#   ATELIER_NODE_EXPORTER_ADDRESSES=10.0.1.10:9100,10.0.3.11:9100 deploy/monitoring.sh [--no-systemd]
#
# Settings (environment):
#   ATELIER_APP_OPS_ADDRESSES        every app server's operations listener, comma-separated
#   ATELIER_NODE_EXPORTER_ADDRESSES  node_exporter on the database hosts (default none)
#   ATELIER_PROMETHEUS_LISTEN        Prometheus' own address (default 127.0.0.1:9090: reach it
#                                    through an SSH tunnel, it has no authentication)
#   ATELIER_SCRAPE_INTERVAL          scrape and rule evaluation interval (default 15s)
#   ATELIER_PROMETHEUS_RETENTION     how long samples are kept (default 15d)
#   ATELIER_DATA_DIR                 with --no-systemd: where its configuration and data go
# The Grafana dashboard (deploy/monitoring/grafana-dashboard.json) is
# imported into a Grafana the operator runs, with this Prometheus as its
# data source; Debian has no Grafana package.
# --no-systemd: run under deploy/supervise.sh instead of Debian's unit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need ATELIER_APP_OPS_ADDRESSES
ensure_packages prometheus curl
listen=${ATELIER_PROMETHEUS_LISTEN:-127.0.0.1:9090}
interval=${ATELIER_SCRAPE_INTERVAL:-15s}
retention=${ATELIER_PROMETHEUS_RETENTION:-15d}
[[ "$interval" =~ ^[0-9]+(ms|s|m)$ ]] || die "ATELIER_SCRAPE_INTERVAL must be a duration such as 15s, not $interval"
[[ "$retention" =~ ^[0-9]+[hdwy]$ ]] || die "ATELIER_PROMETHEUS_RETENTION must be a duration such as 15d, not $retention"
if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    etc=/etc/prometheus data=/var/lib/prometheus/metrics2
else
    etc=$ATELIER_DATA_DIR/prometheus data=$ATELIER_DATA_DIR/prometheus/data
fi
install -d -m 0755 "$etc" "$etc/targets"
install -d -m 0755 -o prometheus -g prometheus "$data"

# A file_sd target list from a comma-separated list of addresses.
targets() {
    local list=() out=
    [ -n "$1" ] && IFS=',' read -ra list <<<"$1"
    for t in "${list[@]}"; do out+="${out:+, }\"$t\""; done
    echo "[{\"targets\": [$out]}]"
}
changed=0
# The scrape timeout: 5 s, or the interval when that is shorter (it may
# not exceed it).
timeout=5s
case $interval in *ms | [1-4]s) timeout=$interval ;; esac
sed -E "s/^(  (scrape|evaluation)_interval:).*/\1 $interval/; s/^(  scrape_timeout:).*/\1 $timeout/; s/localhost:9090/$listen/" \
    "$ATELIER_SOURCE/deploy/monitoring/prometheus.yml" | write_if_changed "$etc/prometheus.yml" 0644 root:root && changed=1
write_if_changed "$etc/alerts.yml" 0644 root:root <"$ATELIER_SOURCE/deploy/monitoring/alerts.yml" && changed=1
# Target lists are reread by Prometheus on their own: no restart.
targets "$ATELIER_APP_OPS_ADDRESSES" | write_if_changed "$etc/targets/atelier.json" 0644 root:root || true
targets "${ATELIER_NODE_EXPORTER_ADDRESSES:-}" | write_if_changed "$etc/targets/node.json" 0644 root:root || true
promtool check config "$etc/prometheus.yml" >/dev/null
args=(--config.file="$etc/prometheus.yml" --storage.tsdb.path="$data"
      --storage.tsdb.retention.time="$retention" --web.listen-address="$listen")
if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    printf 'ARGS="%s"\n' "${args[*]}" | write_if_changed /etc/default/prometheus 0644 root:root && changed=2
    systemctl enable --quiet prometheus
    if ! systemctl is-active --quiet prometheus || [ "$changed" = 2 ]; then systemctl restart prometheus
    elif [ "$changed" = 1 ]; then systemctl reload prometheus; fi
else
    stamp=$(cat "$etc/prometheus.yml" "$etc/alerts.yml" <(echo "${args[*]}") | md5sum | cut -d' ' -f1)
    supervised "$ATELIER_DATA_DIR/prometheus" "$stamp" \
        setpriv --reuid=prometheus --regid=prometheus --init-groups /usr/bin/prometheus "${args[@]}"
fi
for _ in $(seq 100); do
    curl -sf "http://$listen/-/ready" >/dev/null && { say "Prometheus on http://$listen scraping $ATELIER_APP_OPS_ADDRESSES"; exit 0; }
    sleep 0.2
done
die "Prometheus did not become ready on $listen"
