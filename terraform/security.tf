# One security group per host role, as tight as the roles: HTTP to the
# balancer from var.http_cidrs; the app port only from the balancer;
# PostgreSQL on the write model's nodes (db) only from the apps, the
# replicas and each other, on the replicas only from the apps; Patroni's
# REST port and etcd only between the database nodes and the witness; SSH only when var.admin_cidr is set (to the
# balancer from there, and from the balancer to the rest). Outbound: HTTP(S)
# for Debian's mirrors and AWS's APIs, and each role's own peers.
# pg_hba.conf on the database hosts admits each database role from its
# subnet as a second fence (deploy/patroni.sh, deploy/replica.sh).

locals {
  ssh = toset(var.admin_cidr == null ? [] : ["on"])
}

resource "aws_security_group" "lb" {
  name        = "${var.name}-lb"
  description = "atelier balancer: HTTP in, app servers out"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "app" {
  name        = "${var.name}-app"
  description = "atelier app servers: the app port from the balancer only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "atelier write model nodes: PostgreSQL from the apps, the replicas and each other; Patroni and etcd among the nodes and the witness"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "witness" {
  name        = "${var.name}-witness"
  description = "atelier etcd witness: etcd from the database nodes only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "replica" {
  name        = "${var.name}-replica"
  description = "atelier replicas: PostgreSQL from the app servers only"
  vpc_id      = aws_vpc.main.id
}

# --- balancer -----------------------------------------------------------------

# HTTPS (every write, and reads) and plain HTTP (reads only: deploy/lb.sh
# refuses writes there) from the storefront's clients.
resource "aws_vpc_security_group_ingress_rule" "lb_public" {
  #checkov:skip=CKV_AWS_260:The balancer is the public storefront API; HTTP(S) from anywhere is its job (narrow var.http_cidrs to restrict it).
  for_each = {
    for pair in setproduct(var.http_cidrs, [80, 443]) : "${pair[0]}-${pair[1]}" => { cidr = pair[0], port = pair[1] }
  }
  security_group_id = aws_security_group.lb.id
  description       = each.value.port == 443 ? "HTTPS from the storefront clients" : "HTTP from the storefront clients (reads only)"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_ingress_rule" "lb_ssh" {
  for_each          = local.ssh
  security_group_id = aws_security_group.lb.id
  description       = "SSH from the administrators"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.admin_cidr
}

resource "aws_vpc_security_group_egress_rule" "lb_apps" {
  security_group_id            = aws_security_group.lb.id
  description                  = "to the app servers"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.app.id
}

resource "aws_vpc_security_group_egress_rule" "lb_ssh_jump" {
  for_each          = local.ssh
  security_group_id = aws_security_group.lb.id
  description       = "SSH onwards to the private hosts (jump host)"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.vpc_cidr
}

# --- app servers ----------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "app_from_lb" {
  security_group_id            = aws_security_group.app.id
  description                  = "the app port from the balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_egress_rule" "app_primary" {
  security_group_id            = aws_security_group.app.id
  description                  = "PostgreSQL on the write model nodes (writes, to whichever leads)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "app_replicas" {
  security_group_id            = aws_security_group.app.id
  description                  = "PostgreSQL on the replicas (reads)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.replica.id
}

# --- the write model's nodes (Patroni) and the etcd witness ---------------------

resource "aws_vpc_security_group_ingress_rule" "primary_from_apps" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the app servers (atelier_writer)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.app.id
}

resource "aws_vpc_security_group_ingress_rule" "primary_from_replicas" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the replicas (atelier_replicator: subscriptions)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.replica.id
}

# --- replicas ---------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "replica_from_apps" {
  security_group_id            = aws_security_group.replica.id
  description                  = "PostgreSQL from the app servers (atelier_reader)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.app.id
}

resource "aws_vpc_security_group_egress_rule" "replica_primary" {
  security_group_id            = aws_security_group.replica.id
  description                  = "the subscription and the reconciliation, to whichever write model node leads"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

# Between the database nodes: PostgreSQL (streaming to the standby,
# pg_rewind), Patroni's REST API (each node asks the other's state before
# it promotes), etcd's client and peer ports. From the witness: etcd's peer
# port. Each rule both ways: an ingress on the receiver, an egress on the
# sender.
locals {
  cluster_paths = {
    db_postgres  = { from = "db", to = "db", port = 5432, what = "PostgreSQL between the write model nodes (standby, pg_rewind)" }
    db_patroni   = { from = "db", to = "db", port = 8008, what = "Patroni REST API between the write model nodes" }
    db_etcd      = { from = "db", to = "db", port = 2379, what = "etcd clients (Patroni) on the database nodes" }
    db_etcd_peer = { from = "db", to = "db", port = 2380, what = "etcd peers on the database nodes" }
    witness_etcd = { from = "db", to = "witness", port = 2379, what = "etcd clients (Patroni) to the witness" }
    witness_peer = { from = "db", to = "witness", port = 2380, what = "etcd peers, database nodes to the witness" }
    witness_back = { from = "witness", to = "db", port = 2380, what = "etcd peers, the witness to the database nodes" }
  }
  cluster_groups = { db = aws_security_group.db.id, witness = aws_security_group.witness.id }
}

resource "aws_vpc_security_group_ingress_rule" "cluster" {
  for_each                     = local.cluster_paths
  security_group_id            = local.cluster_groups[each.value.to]
  description                  = each.value.what
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = local.cluster_groups[each.value.from]
}

resource "aws_vpc_security_group_egress_rule" "cluster" {
  for_each                     = local.cluster_paths
  security_group_id            = local.cluster_groups[each.value.from]
  description                  = each.value.what
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = local.cluster_groups[each.value.to]
}

# --- every host -------------------------------------------------------------------

locals {
  private_groups = {
    app     = aws_security_group.app.id
    db      = aws_security_group.db.id
    witness = aws_security_group.witness.id
    replica = aws_security_group.replica.id
  }
  all_groups = merge(local.private_groups, { lb = aws_security_group.lb.id })
  # Debian's mirrors (HTTP), and AWS's APIs, the SSM agent and S3 (HTTPS).
  outbound_web = merge([
    for role, group in local.all_groups : {
      for port in [80, 443] : "${role}-${port}" => { group = group, port = port }
    }
  ]...)
}

resource "aws_vpc_security_group_egress_rule" "web" {
  for_each          = local.outbound_web
  security_group_id = each.value.group
  description       = "packages and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "ssh_from_lb" {
  #checkov:skip=CKV_AWS_24:False positive: the source is the balancer's security group (referenced_security_group_id), not 0.0.0.0/0.
  for_each                     = { for role, group in local.private_groups : role => group if var.admin_cidr != null }
  security_group_id            = each.value
  description                  = "SSH through the balancer (jump host)"
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  referenced_security_group_id = aws_security_group.lb.id
}
