#!/usr/bin/env bash
# Provisions one ETCD member (Debian 12's etcd-server): the store Patroni
# keeps its leader lock in. Three members on three hosts (the two database
# nodes and one more) survive the loss of any one. Idempotent. Run as root.
#
#   ATELIER_ETCD_NAME=etcd1 ATELIER_LISTEN_ADDRESS=10.0.1.10 \
#   ATELIER_ETCD_CLUSTER=etcd1=10.0.1.10,etcd2=10.0.4.10,etcd3=10.0.3.11 deploy/etcd.sh [--no-systemd]
#
# Settings (environment):
#   ATELIER_ETCD_NAME        this member's name, one of ATELIER_ETCD_CLUSTER's
#   ATELIER_LISTEN_ADDRESS   this host's private address: clients on :2379, peers on :2380
#   ATELIER_ETCD_CLUSTER     every member, name=address, comma-separated (the same on each)
#   ATELIER_DATA_DIR         default /var/lib/atelier (etcd's data in etcd/)
# Plain HTTP on the private network: the security groups admit 2379 and 2380
# from the database hosts only (terraform/), and nothing else talks to etcd.
# --no-systemd: run under deploy/supervise.sh instead of a unit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for v in ATELIER_ETCD_NAME ATELIER_LISTEN_ADDRESS ATELIER_ETCD_CLUSTER; do need "$v"; done
ensure_packages etcd-server etcd-client
if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ] && systemctl is-enabled --quiet etcd 2>/dev/null; then
    systemctl disable --now --quiet etcd # the package's own member is not ours
fi

initial=
IFS=',' read -ra members <<<"$ATELIER_ETCD_CLUSTER"
for m in "${members[@]}"; do
    initial+="${initial:+,}${m%%=*}=http://${m#*=}:2380"
done
case ",$ATELIER_ETCD_CLUSTER," in
    *",$ATELIER_ETCD_NAME=$ATELIER_LISTEN_ADDRESS,"*) ;;
    *) die "ATELIER_ETCD_CLUSTER does not list $ATELIER_ETCD_NAME=$ATELIER_LISTEN_ADDRESS" ;;
esac
data=$ATELIER_DATA_DIR/etcd
install -d -m 0700 "$data"
addr=$ATELIER_LISTEN_ADDRESS
args=(--name "$ATELIER_ETCD_NAME" --data-dir "$data"
      --listen-peer-urls "http://$addr:2380" --initial-advertise-peer-urls "http://$addr:2380"
      --listen-client-urls "http://$addr:2379,http://127.0.0.1:2379" --advertise-client-urls "http://$addr:2379"
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token atelier
      # Short heartbeats: a lost member is noticed in about a second, and
      # Patroni's leader lock, not etcd, sets how fast a failover is.
      --heartbeat-interval 100 --election-timeout 1000
      # A member cut off and back must not force an election (3.4's default
      # lets it: its raised term deposes the leader, and for a few seconds
      # nobody can renew Patroni's lock, so the new primary demotes itself;
      # seen in scripts/failover-rehearsal.sh).
      --pre-vote=true
      # Patroni talks to etcd over the v2 API (deploy/patroni.sh says why).
      --enable-v2=true)
if [ "${ATELIER_SUPERVISOR:-systemd}" = systemd ]; then
    unit=/etc/systemd/system/atelier-etcd.service
    if write_if_changed "$unit" 0644 root:root <<UNIT; then systemctl daemon-reload; systemctl restart atelier-etcd; fi
[Unit]
Description=etcd member $ATELIER_ETCD_NAME for atelier's Patroni
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
ExecStart=/usr/bin/etcd ${args[*]}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
    systemctl enable --quiet --now atelier-etcd
else
    supervised "$ATELIER_DATA_DIR/etcd" "${args[*]}" /usr/bin/etcd "${args[@]}"
fi
for _ in $(seq 60); do
    ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:2379" endpoint health >/dev/null 2>&1 && break
    sleep 0.5
done
say "etcd member $ATELIER_ETCD_NAME on $addr (the cluster is healthy once a majority runs)"
