# One VPC over three availability zones: in the first, a public subnet (the
# balancer and the NAT gateway), a private subnet for the app servers and
# one for the databases (the write model's first node, db1, and the read
# replicas); in the second, db2, the synchronous standby; in the third, the
# etcd witness, so that losing any one zone leaves two of the three etcd
# members (in a region with two usable zones the witness shares the first,
# and losing that zone then stops automatic failover). Private hosts reach
# Debian's mirrors and AWS's APIs through the NAT gateway (only needed at
# boot), and S3 through a gateway endpoint.

# The zone: the one asked for, else the first of the region's available
# zones that offers every instance type used (some accounts have no "a"
# zone, and not every zone has every type).
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The list only picks the zone at the first apply; the subnets ignore later changes of it (lifecycle below), so a zone AWS adds never moves them.
  state = "available"
}

data "aws_ec2_instance_type_offerings" "by_type" {
  for_each      = toset([var.db_instance_type, var.app_instance_type, var.lb_instance_type, var.witness_instance_type])
  location_type = "availability-zone"
  filter {
    name   = "instance-type"
    values = [each.key]
  }
}

locals {
  zones_with_every_type = [
    for zone in data.aws_availability_zones.available.names : zone
    if alltrue([for offering in data.aws_ec2_instance_type_offerings.by_type : contains(offering.locations, zone)])
  ]
}

check "a_zone_offers_every_instance_type" {
  assert {
    condition     = var.availability_zone != null || length(local.zones_with_every_type) > 0
    error_message = "No available zone in ${var.region} offers all of ${var.db_instance_type}, ${var.app_instance_type}, ${var.lb_instance_type} and ${var.witness_instance_type}: pick other types, or set availability_zone."
  }
}

check "a_second_zone_for_the_standby" {
  assert {
    condition     = length(local.standby_zones) > 0
    error_message = "No second zone in ${var.region} offers every instance type: the standby would share db1's zone, and a zone failure would take both."
  }
}

locals {
  az            = coalesce(var.availability_zone, try(local.zones_with_every_type[0], null))
  # The standby's zone and the witness's: the next zones that offer every
  # type (the first zone again, only when there is no other).
  standby_zones = [for zone in local.zones_with_every_type : zone if zone != local.az]
  standby_az    = try(local.standby_zones[0], local.az)
  witness_az    = try(local.standby_zones[1], local.az)
  standby_cidr  = cidrsubnet(var.vpc_cidr, 8, 3)
  witness_cidr  = cidrsubnet(var.vpc_cidr, 8, 4)
  public_cidr   = cidrsubnet(var.vpc_cidr, 8, 0)
  app_cidr      = cidrsubnet(var.vpc_cidr, 8, 1)
  db_cidr       = cidrsubnet(var.vpc_cidr, 8, 2)
  lb_address    = cidrhost(local.public_cidr, 30)
  nat_address   = cidrhost(local.public_cidr, 20)
  # The write model's nodes (Patroni): db1 in the first zone, db2 in the
  # second; either may lead.
  db_addrs = {
    db1 = { address = cidrhost(local.db_cidr, 10), subnet = "db", zone = local.az }
    db2 = { address = cidrhost(local.standby_cidr, 10), subnet = "standby", zone = local.standby_az }
  }
  primary_addrs = join(",", [for name, node in local.db_addrs : node.address])
  witness_addr  = cidrhost(local.witness_cidr, 10)
  replica_addrs = [for i in range(var.replica_count) : cidrhost(local.db_cidr, 11 + i)]
  app_addrs     = [for i in range(var.app_count) : cidrhost(local.app_cidr, 41 + i)]
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

# The VPC's default group: no rules, so nothing can use it by accident.
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = local.public_cidr
  availability_zone = local.az
  tags              = { Name = "${var.name}-public" }

  # Chosen once: a zone AWS adds later must not replace the subnet (and
  # every host in it).
  lifecycle {
    ignore_changes = [availability_zone]
  }
}

resource "aws_subnet" "app" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = local.app_cidr
  availability_zone = local.az
  tags              = { Name = "${var.name}-app" }

  # Chosen once: a zone AWS adds later must not replace the subnet (and
  # every host in it).
  lifecycle {
    ignore_changes = [availability_zone]
  }
}

resource "aws_subnet" "db" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = local.db_cidr
  availability_zone = local.az
  tags              = { Name = "${var.name}-db" }

  # Chosen once: a zone AWS adds later must not replace the subnet (and
  # every host in it).
  lifecycle {
    ignore_changes = [availability_zone]
  }
}

# The second and third zones' subnets: the standby's and the witness's.
resource "aws_subnet" "zone" {
  for_each = {
    standby = { cidr = local.standby_cidr, zone = local.standby_az, name = "db-standby" }
    witness = { cidr = local.witness_cidr, zone = local.witness_az, name = "witness" }
  }
  vpc_id            = aws_vpc.main.id
  cidr_block        = each.value.cidr
  availability_zone = each.value.zone
  tags              = { Name = "${var.name}-${each.value.name}" }

  lifecycle {
    ignore_changes = [availability_zone]
  }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = var.name }
}

resource "aws_eip" "nat" {
  #checkov:skip=CKV2_AWS_19:This address belongs to the NAT gateway, not to an instance.
  domain = "vpc"
  tags   = { Name = "${var.name}-nat" }
}

resource "aws_nat_gateway" "main" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  # Its own fixed address: left to chance it could take the balancer's
  # (local.lb_address), and that apply would fail.
  private_ip = local.nat_address
  tags          = { Name = var.name }
  depends_on    = [aws_internet_gateway.main]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-private" }
}

resource "aws_route" "private_nat" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.main.id
}

resource "aws_route_table_association" "app" {
  subnet_id      = aws_subnet.app.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table_association" "db" {
  subnet_id      = aws_subnet.db.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table_association" "zone" {
  for_each       = aws_subnet.zone
  subnet_id      = each.value.id
  route_table_id = aws_route_table.private.id
}

# S3 without the NAT gateway (the binary and the scripts come from there).
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id, aws_route_table.public.id]
}

# Flow logs of the whole VPC, kept a year, encrypted with the deployment's key.
resource "aws_cloudwatch_log_group" "flow" {
  name              = "/${var.name}/vpc-flow"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "flow_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flow" {
  name               = "${var.name}-vpc-flow"
  assume_role_policy = data.aws_iam_policy_document.flow_assume.json
}

data "aws_iam_policy_document" "flow" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow.id
  policy = data.aws_iam_policy_document.flow.json
}

resource "aws_flow_log" "main" {
  vpc_id          = aws_vpc.main.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow.arn
  iam_role_arn    = aws_iam_role.flow.arn
}
