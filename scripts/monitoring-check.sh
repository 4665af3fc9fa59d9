#!/usr/bin/env bash
# Checks what deploy/monitoring/ ships with Debian's promtool: the
# Prometheus configuration, the alert rules (syntax, then their unit tests
# in alerts_test.yml: each rule fires on the series it is for), and every
# query of the Grafana dashboard (each one must parse as PromQL). That the
# metrics they name are ones the service exports is a cargo test
# (server/tests/api/ops.rs). Installs Prometheus when missing (root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prometheus.sh
m=deploy/monitoring
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The configuration as deploy/monitoring.sh installs it: with its rules and
# (empty) target lists beside it.
cp "$m/prometheus.yml" "$m/alerts.yml" "$work/"
mkdir -p "$work/targets"
echo '[]' >"$work/targets/atelier.json"
echo '[]' >"$work/targets/node.json"
promtool check config "$work/prometheus.yml"
promtool test rules "$m/alerts_test.yml"
# The dashboard's queries as recording rules, Grafana's variables given
# values, so promtool parses each one.
python3 - "$m/grafana-dashboard.json" >"$work/dashboard-rules.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
if not exprs:
    sys.exit("the dashboard has no queries")
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    e = e.replace("$__rate_interval", "5m").replace("$instance", ".*")
    print(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}")
PY
promtool check rules "$work/dashboard-rules.yml"
echo "monitoring: the configuration, the rules and their tests, and the dashboard's $(grep -c 'record:' "$work/dashboard-rules.yml") queries are valid"
