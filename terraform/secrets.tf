# One customer-managed key encrypts the bucket, the SSM parameters, the
# database volumes and the flow logs. The database roles' passwords are
# generated here and stored only as SecureString parameters; each instance
# role may read exactly the ones its host needs (iam.tf), and the user data
# fetches them at boot: none appears in user data or in plain outputs.

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" is the key itself; the account's own IAM policies then decide (the AWS default key policy).
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" is the key itself, not every resource.
  #checkov:skip=CKV_AWS_109:Only the account root administers the key, as in AWS's default key policy.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "FlowLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/${var.name}/*"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${var.name}: bucket, parameters, database volumes, flow logs"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

locals {
  # standby and rewind: the Patroni nodes' physical replication and
  # pg_rewind logins between themselves (deploy/patroni.sh).
  roles = ["owner", "writer", "reader", "replicator", "standby", "rewind"]
}

resource "random_password" "role" {
  for_each = toset(local.roles)
  length   = 32
  special  = false # they travel in libpq connection strings and env files
}

resource "aws_ssm_parameter" "role_password" {
  for_each    = toset(local.roles)
  name        = "/${var.name}/atelier_${each.key}_password"
  description = "Password of the database role atelier_${each.key}"
  type        = "SecureString"
  key_id      = aws_kms_key.main.arn
  value       = random_password.role[each.key].result
}

# --- the balancer's HTTPS certificate -------------------------------------------
# Bearer tokens must never cross the internet in clear text: the balancer
# serves HTTPS with the operator's certificate, or, when none is given, with
# a self-signed one for its public address (good for a first look; clients
# trust output tls_certificate explicitly). Certificate and key live in
# SecureString parameters that only the balancer's role may read.

resource "tls_private_key" "lb" {
  count     = var.tls_certificate_pem == null ? 1 : 0
  algorithm = "ECDSA"
  # P-256: what every client speaks.
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "lb" {
  count                 = var.tls_certificate_pem == null ? 1 : 0
  private_key_pem       = tls_private_key.lb[0].private_key_pem
  validity_period_hours = 24 * 365
  early_renewal_hours   = 24 * 30
  allowed_uses          = ["digital_signature", "key_encipherment", "server_auth"]
  ip_addresses          = [aws_eip.lb.public_ip]
  subject {
    common_name  = aws_eip.lb.public_ip
    organization = "atelier ${var.name} (self-signed)"
  }
}

locals {
  tls_certificate = coalesce(var.tls_certificate_pem, try(tls_self_signed_cert.lb[0].cert_pem, null))
  tls_private_key = coalesce(var.tls_private_key_pem, try(tls_private_key.lb[0].private_key_pem, null))
}

resource "aws_ssm_parameter" "tls" {
  for_each    = toset(["certificate", "private_key"])
  name        = "/${var.name}/tls_${each.key}"
  description = "The balancer's HTTPS ${replace(each.key, "_", " ")} (PEM)"
  type        = "SecureString"
  tier        = "Advanced" # a certificate chain can pass the standard tier's 4 KB
  key_id      = aws_kms_key.main.arn
  value       = each.key == "certificate" ? local.tls_certificate : local.tls_private_key
}

# --- the replicas the apps read from -----------------------------------------------
# Read by each app server at boot and every minute after
# (user-data/app.sh.tftpl), instead of being written into its user data:
# changing replica_count changes this parameter, not the apps, so no app
# is replaced. Each app admits a new replica once its initial copy is
# complete (deploy/app.sh). Not secret, but encrypted like the others.
resource "aws_ssm_parameter" "replica_addresses" {
  name        = "/${var.name}/replica_addresses"
  description = "The read replicas' private addresses, comma-separated"
  type        = "SecureString"
  key_id      = aws_kms_key.main.arn
  value       = join(",", local.replica_addrs)
}
