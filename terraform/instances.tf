# The hosts, from Debian's own Debian 12 AMI, each handed its role script
# (through user-data/*.tftpl) as user data. Fixed private addresses (see
# network.tf) mirror the multi-host rehearsal (scripts/rehearsal.sh).
#
# The AMI and the user data are read at creation only (ignore_changes): a
# newer Debian image or an edited template never replaces a database host
# behind your back. App servers and the balancer are stateless. The apps
# read the replicas from SSM (secrets.tf), so replica_count replaces none
# of them; the balancer's user data names the apps, so app_count replaces
# it (docs/deployment.md). Two resources, because Terraform cannot choose
# a lifecycle per instance; local.hosts holds what differs between hosts.

data "aws_ami" "debian12" {
  most_recent = true
  owners      = ["136693071363"] # Debian's own AWS account
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  parameter = { for role in local.roles : role => aws_ssm_parameter.role_password[role].name }
  common = {
    for role, host in local.host_roles : role => templatefile("${path.module}/user-data/common.sh.tftpl", {
      region      = var.region
      bucket      = aws_s3_bucket.release.id
      with_binary = host.binary
    })
  }
}

# Where the write model's nodes and the etcd members are.
locals {
  etcd_members = merge({ for name, node in local.db_addrs : name => node.address }, { witness = local.witness_addr })
  etcd_cluster = join(",", [for name, address in local.etcd_members : "${name}=${address}"])
  etcd_hosts   = join(",", [for name, address in local.etcd_members : "${address}:2379"])
  db_subnets   = { db = aws_subnet.db.id, standby = aws_subnet.zone["standby"].id }
  # Connections the primary must take: each app's write pool and its
  # read-fallback pool (ATELIER_WRITE_POOL_SIZE 16 + ATELIER_READ_POOL_SIZE
  # 4, and its health probes), twice over so an app being replaced and its
  # successor fit at once; each replica's subscription and reconciliation;
  # Patroni, the standby, backups and an operator. Never under 200.
  db_max_connections = max(200, var.app_count * 2 * 24 + var.replica_count * 4 + 40)
}

# Every host, by name: what differs between them. Everything they share
# (the AMI, IMDSv2 only, an encrypted gp3 root, monitoring, the profile of
# their role, their tags) is written once, in the two resources below.
locals {
  hosts = merge(
    # The write model: two Patroni nodes (deploy/patroni.sh), db1 in the
    # first zone and db2 in the second, each also an etcd member
    # (deploy/etcd.sh); whichever holds Patroni's leader lock is the
    # primary, the other its synchronous standby. db1 bootstraps the
    # cluster when both are new.
    { for name, node in local.db_addrs : name => {
      role          = "db"
      instance_type = var.db_instance_type
      subnet_id     = local.db_subnets[node.subnet]
      address       = node.address
      root_gb       = 16
      # The write model lives here: no terminate by accident (the data
      # volume outlives the instance anyway, below).
      protected = var.db_termination_protection
      user_data = templatefile("${path.module}/user-data/patroni.sh.tftpl", {
        common                = local.common["db"]
        node                  = name
        address               = node.address
        db_addresses          = local.primary_addrs
        etcd_cluster          = local.etcd_cluster
        etcd_hosts            = local.etcd_hosts
        logical_slots         = join(",", [for i in range(var.replica_count) : "atelier_replica${i + 1}"])
        patroni_ttl           = var.patroni_ttl
        app_cidr              = local.app_cidr
        replica_cidr          = local.db_cidr
        shared_buffers        = var.db_shared_buffers
        max_connections       = local.db_max_connections
        owner_parameter       = local.parameter["owner"]
        writer_parameter      = local.parameter["writer"]
        replicator_parameter  = local.parameter["replicator"]
        standby_parameter     = local.parameter["standby"]
        rewind_parameter      = local.parameter["rewind"]
        products              = var.products
        data_volume           = aws_ebs_volume.db[name].id
        backup_bucket         = aws_s3_bucket.backup.id
        region                = var.region
        backup_kms_key        = aws_kms_key.main.arn
        backup_retention_full = var.backup_retention_full
        backup_retention_diff = var.backup_retention_diff
        archive_timeout       = var.archive_timeout
      })
    } },
    # The third etcd member, in a third zone: with it, losing either
    # database node's zone leaves a majority, so Patroni can still move
    # the lock.
    { witness = {
      role          = "witness"
      instance_type = var.witness_instance_type
      subnet_id     = aws_subnet.zone["witness"].id
      address       = local.witness_addr
      root_gb       = 8
      protected     = false
      user_data = templatefile("${path.module}/user-data/witness.sh.tftpl", {
        common       = local.common["witness"]
        address      = local.witness_addr
        etcd_cluster = local.etcd_cluster
      })
    } },
    { for i, address in local.replica_addrs : "replica${i + 1}" => {
      role          = "replica"
      instance_type = var.db_instance_type
      subnet_id     = aws_subnet.db.id
      address       = address
      root_gb       = 16
      protected     = var.db_termination_protection
      user_data = templatefile("${path.module}/user-data/replica.sh.tftpl", {
        common               = local.common["replica"]
        address              = address
        app_cidr             = local.app_cidr
        primary_address      = local.primary_addrs
        subscription         = "atelier_replica${i + 1}"
        shared_buffers       = var.db_shared_buffers
        owner_parameter      = local.parameter["owner"]
        reader_parameter     = local.parameter["reader"]
        replicator_parameter = local.parameter["replicator"]
        data_volume          = aws_ebs_volume.db["replica${i + 1}"].id
      })
    } },
    { for i, address in local.app_addrs : "app${i + 1}" => {
      role          = "app"
      instance_type = var.app_instance_type
      subnet_id     = aws_subnet.app.id
      address       = address
      root_gb       = 16
      protected     = false
      user_data = templatefile("${path.module}/user-data/app.sh.tftpl", {
        common            = local.common["app"]
        address           = address
        app_port          = var.app_port
        primary_address   = local.primary_addrs
        region            = var.region
        replica_parameter = aws_ssm_parameter.replica_addresses.name
        # Each app's second of the minute to look for new replicas: 20 s
        # apart, so no two of the first three restart at once.
        refresh_second   = format("%02d", (i * 20) % 60)
        writer_parameter = local.parameter["writer"]
        reader_parameter = local.parameter["reader"]
        # Both write model nodes are in the URL: a connection tries each
        # for this long (a cut-off node must not hold a new connection
        # for long).
        app_settings = merge({ ATELIER_CONNECT_TIMEOUT_MS = "1000" }, var.app_settings)
        lb_address   = local.lb_address
      })
    } },
    # The balancer, in the public subnet (it boots through the internet
    # gateway).
    { lb = {
      role          = "lb"
      instance_type = var.lb_instance_type
      subnet_id     = aws_subnet.public.id
      address       = local.lb_address
      root_gb       = 16
      protected     = false
      user_data = templatefile("${path.module}/user-data/lb.sh.tftpl", {
        common         = local.common["lb"]
        app_servers    = join(",", [for a in local.app_addrs : "${a}:${var.app_port}"])
        body_bytes_max = lookup(var.app_settings, "ATELIER_BODY_BYTES_MAX", "65536")
        tls_parameters = { for k, p in aws_ssm_parameter.tls : k => p.name }
      })
    } },
  )
  # Two lifecycles, so two resources (Terraform cannot choose a lifecycle
  # per instance): the hosts that hold data, and the stateless ones.
  stateless     = ["app", "lb"]
  stateful_hosts    = { for name, host in local.hosts : name => host if !contains(local.stateless, host.role) }
  stateless_hosts = { for name, host in local.hosts : name => host if contains(local.stateless, host.role) }
  # Every instance, by host name, whichever resource holds it.
  instances = merge(aws_instance.stateful, aws_instance.stateless)
}

# The database nodes, the witness and the replicas: their AMI and user data
# are read at creation only.
resource "aws_instance" "stateful" {
  for_each      = local.stateful_hosts
  ami           = data.aws_ami.debian12.id
  instance_type = each.value.instance_type
  subnet_id     = each.value.subnet_id
  private_ip    = each.value.address
  vpc_security_group_ids = [{
    db      = aws_security_group.db.id
    witness = aws_security_group.witness.id
    replica = aws_security_group.replica.id
  }[each.value.role]]
  iam_instance_profile    = aws_iam_instance_profile.host[each.value.role].name
  disable_api_termination = each.value.protected
  key_name                = var.admin_cidr == null ? null : var.ssh_key_name
  monitoring              = true
  ebs_optimized           = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = each.value.root_gb
    encrypted   = true
    kms_key_id  = aws_kms_key.main.arn
    # default_tags do not reach an instance's root volume.
    tags = { Name = "${var.name}-${each.key}-root", Deployment = var.name, Project = "atelier" }
  }

  user_data = each.value.user_data
  tags      = { Name = "${var.name}-${each.key}", Role = each.value.role }
  depends_on = [
    # What a host needs in place before its first boot.
    aws_route.private_nat,
    aws_vpc_endpoint.s3,
    aws_s3_object.binary,
    aws_s3_object.source,
    aws_iam_role_policy.host,
    aws_s3_bucket_policy.backup,
  ]

  lifecycle {
    ignore_changes = [ami, user_data]
  }
}

# The app servers and the balancer: stateless, so an edited template or
# setting replaces them (user_data_replace_on_change).
resource "aws_instance" "stateless" {
  for_each      = local.stateless_hosts
  ami           = data.aws_ami.debian12.id
  instance_type = each.value.instance_type
  subnet_id     = each.value.subnet_id
  private_ip    = each.value.address
  vpc_security_group_ids = [{
    app = aws_security_group.app.id
    lb  = aws_security_group.lb.id
  }[each.value.role]]
  iam_instance_profile    = aws_iam_instance_profile.host[each.value.role].name
  disable_api_termination = each.value.protected
  key_name                = var.admin_cidr == null ? null : var.ssh_key_name
  monitoring              = true
  ebs_optimized           = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = each.value.root_gb
    encrypted   = true
    kms_key_id  = aws_kms_key.main.arn
    # default_tags do not reach an instance's root volume.
    tags = { Name = "${var.name}-${each.key}-root", Deployment = var.name, Project = "atelier" }
  }

  user_data                   = each.value.user_data
  user_data_replace_on_change = true
  tags                        = { Name = "${var.name}-${each.key}", Role = each.value.role }
  depends_on = [
    # What a host needs in place before its first boot.
    aws_route.private_nat,
    aws_route.public_internet,
    aws_vpc_endpoint.s3,
    aws_s3_object.binary,
    aws_s3_object.source,
    aws_iam_role_policy.host,
    aws_ssm_parameter.tls,
  ]

  lifecycle {
    ignore_changes = [ami]
    # Checks that need two variables at once (a variable's own validation
    # may name only itself before Terraform 1.9).
    precondition {
      condition     = var.admin_cidr == null || var.ssh_key_name != null
      error_message = "admin_cidr opens SSH, which needs ssh_key_name (an existing EC2 key pair)."
    }
    precondition {
      condition     = var.db_volume_iops <= 500 * var.db_volume_gb
      error_message = "db_volume_iops: gp3 allows at most 500 IOPS per GiB of db_volume_gb."
    }
  }
}

# The database volumes, apart from their instances: resizing one or
# changing its IOPS modifies it in place, and replacing or terminating an
# instance leaves it (and the database on it) alone. prevent_destroy makes
# `terraform destroy` and any plan that would delete one fail: deleting a
# database takes editing this file on purpose.
locals {
  # Every database host, its role and its zone: db1, db2 and replica1..N.
  db_hosts = merge(
    { for name, node in local.db_addrs : name => { role = "db", zone = node.zone } },
    { for i in range(var.replica_count) : "replica${i + 1}" => { role = "replica", zone = local.az } },
  )
}

resource "aws_ebs_volume" "db" {
  for_each          = local.db_hosts
  availability_zone = each.value.zone
  type              = "gp3"
  size              = var.db_volume_gb
  iops              = var.db_volume_iops
  encrypted         = true
  kms_key_id        = aws_kms_key.main.arn
  tags              = { Name = "${var.name}-${each.key}-data", Role = each.value.role }

  lifecycle {
    prevent_destroy = true
    # Chosen once, like the subnets' zones.
    ignore_changes = [availability_zone]
  }
}

# The single primary's volume is db1's now (a deployment made before the
# standby existed keeps its data).
moved {
  from = aws_ebs_volume.db["primary"]
  to   = aws_ebs_volume.db["db1"]
}

resource "aws_volume_attachment" "db" {
  for_each    = local.db_hosts
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.db[each.key].id
  instance_id = aws_instance.stateful[each.key].id
}

# The balancer's public address: the URL of the API. It is the only public
# address of the deployment besides the NAT gateway's.
# Allocated apart from its association, so that the self-signed
# certificate (secrets.tf) can name the address before the balancer boots.
resource "aws_eip" "lb" {
  domain = "vpc"
  tags   = { Name = "${var.name}-lb" }
}

resource "aws_eip_association" "lb" {
  allocation_id = aws_eip.lb.id
  instance_id   = aws_instance.stateless["lb"].id
}
