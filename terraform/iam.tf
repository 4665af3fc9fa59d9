# One instance role per host role, each allowed only what its boot needs:
# the scripts (every host), the binary (the database hosts run the
# migrations and the load with it; the apps serve with it), and the
# passwords of the database roles it uses (the balancer: its HTTPS
# certificate and key; the apps: the list of replicas), and the backup bucket (backups.tf): the database
# nodes (db: the Patroni primary and its standby, either of which may lead
# and archive) read and write it, the restore role only reads it. The etcd
# witness needs only the scripts. All may register
# with SSM Session Manager, the way in for operators (no inbound port
# needed). The restore role has no instance of its own: attach its profile
# to the host that restores a new primary or rehearses a restore
# (docs/operations.md).

locals {
  host_roles = {
    db      = { binary = true, passwords = ["owner", "writer", "replicator", "standby", "rewind"], tls = false, backup = "write", replicas = false }
    witness = { binary = false, passwords = [], tls = false, backup = "none", replicas = false }
    replica = { binary = true, passwords = ["owner", "reader", "replicator"], tls = false, backup = "none", replicas = false }
    app     = { binary = true, passwords = ["writer", "reader"], tls = false, backup = "none", replicas = true }
    lb      = { binary = false, passwords = [], tls = true, backup = "none", replicas = false }
    restore = { binary = true, passwords = ["owner", "writer", "replicator"], tls = false, backup = "read", replicas = false }
  }
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "host" {
  for_each           = local.host_roles
  # IAM names are account-wide: the region keeps two deployments of one
  # name in two regions apart.
  name               = "${var.name}-${var.region}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

data "aws_iam_policy_document" "host" {
  for_each = local.host_roles

  statement {
    sid     = "ReleaseObjects"
    actions = ["s3:GetObject"]
    resources = concat(
      ["${aws_s3_bucket.release.arn}/source/*"],
      each.value.binary ? ["${aws_s3_bucket.release.arn}/bin/*"] : [],
    )
  }

  statement {
    sid       = "ListSource"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.release.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["source/*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.passwords) > 0 ? [1] : []
    content {
      sid       = "RolePasswords"
      actions   = ["ssm:GetParameter"]
      resources = [for p in each.value.passwords : aws_ssm_parameter.role_password[p].arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.replicas ? [1] : []
    content {
      sid       = "ReplicaAddresses"
      actions   = ["ssm:GetParameter"]
      resources = [aws_ssm_parameter.replica_addresses.arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.tls ? [1] : []
    content {
      sid       = "BalancerCertificate"
      actions   = ["ssm:GetParameter"]
      resources = [for p in aws_ssm_parameter.tls : p.arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.backup == "none" ? [] : [1]
    content {
      sid       = "BackupRepository"
      actions   = each.value.backup == "write" ? ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] : ["s3:GetObject"]
      resources = ["${aws_s3_bucket.backup.arn}/*"]
    }
  }

  dynamic "statement" {
    for_each = each.value.backup == "none" ? [] : [1]
    content {
      sid       = "ListBackups"
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.backup.arn]
    }
  }

  # Writing SSE-KMS objects needs a data key from the deployment's key.
  dynamic "statement" {
    for_each = each.value.backup == "write" ? [1] : []
    content {
      sid       = "EncryptBackupsViaS3"
      actions   = ["kms:GenerateDataKey", "kms:Encrypt"]
      resources = [aws_kms_key.main.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.region}.amazonaws.com"]
      }
    }
  }

  statement {
    sid       = "DecryptViaS3AndSsm"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com", "ssm.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "host" {
  for_each = local.host_roles
  name     = "boot"
  role     = aws_iam_role.host[each.key].id
  policy   = data.aws_iam_policy_document.host[each.key].json
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  for_each   = local.host_roles
  role       = aws_iam_role.host[each.key].name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "host" {
  for_each = local.host_roles
  name     = "${var.name}-${var.region}-${each.key}"
  role     = aws_iam_role.host[each.key].name
}
