# A private, encrypted bucket holding what the hosts run: the release binary
# (bin/atelier) and the role scripts with the SQL and settings they apply
# (source/deploy, source/sql, source/replication). Nothing is built on an
# instance. Only the instance roles can read it (iam.tf), and only over TLS.

resource "aws_s3_bucket" "release" {
  #checkov:skip=CKV_AWS_144:Holds a copy of build output that terraform re-uploads; cross-region replication adds cost and nothing to recover.
  #checkov:skip=CKV_AWS_18:Read only by this deployment's instance roles; CloudTrail data events are the place to audit that if needed.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to uploads; the instances read the objects at boot.
  bucket_prefix = "${var.name}-release-"
  force_destroy = true
}

# What every bucket of the deployment is: public access blocked,
# owner-enforced, versioned, encrypted with the deployment's key. The
# release bucket (here) and the backup bucket (backups.tf).
locals {
  private_buckets = {
    release = aws_s3_bucket.release.id
    backup  = aws_s3_bucket.backup.id
  }
}

resource "aws_s3_bucket_public_access_block" "private" {
  for_each                = local.private_buckets
  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "private" {
  for_each = local.private_buckets
  bucket   = each.value
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "private" {
  for_each = local.private_buckets
  bucket   = each.value
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "private" {
  for_each = local.private_buckets
  bucket   = each.value
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "release" {
  bucket = aws_s3_bucket.release.id
  rule {
    id     = "old-releases"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# TLS only, for every private bucket (the backup bucket adds its own
# statements to this, in backups.tf).
data "aws_iam_policy_document" "tls_only" {
  for_each = { release = aws_s3_bucket.release.arn, backup = aws_s3_bucket.backup.arn }
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value, "${each.value}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "release" {
  bucket = aws_s3_bucket.release.id
  policy = data.aws_iam_policy_document.tls_only["release"].json
}

# The release binary. Checked at plan time: that it exists (a readable
# message, not filemd5's), and that it is an x86-64 Linux ELF executable
# (its first bytes: the ELF magic, 64-bit, little-endian, version 1; e_machine
# 0x3E): a macOS or arm64 build would otherwise upload fine and fail at
# every boot. That it is static (no host's glibc matters) is checked where
# it is built (scripts/build-bin.sh deploy); terraform cannot read that far.
locals {
  binary_path   = coalesce(var.binary_path, "${path.module}/../target/x86_64-unknown-linux-musl/release/atelier")
  binary_exists = fileexists(local.binary_path)
  binary_head   = local.binary_exists ? substr(filebase64(local.binary_path), 0, 28) : ""
}

resource "aws_s3_object" "binary" {
  bucket      = aws_s3_bucket.release.id
  key         = "bin/atelier"
  source      = local.binary_path
  source_hash = local.binary_exists ? filemd5(local.binary_path) : null
  kms_key_id  = aws_kms_key.main.arn

  lifecycle {
    precondition {
      condition     = local.binary_exists
      error_message = "No atelier binary at ${local.binary_path}: run scripts/build-bin.sh deploy in the repository (a static x86-64 build), or set binary_path."
    }
    precondition {
      condition     = substr(local.binary_head, 0, 8) == "f0VMRgIB" && substr(local.binary_head, 24, 4) == "PgAB"
      error_message = "${local.binary_path} is not an x86-64 Linux ELF executable (built on macOS, or for arm64?): build it with scripts/build-bin.sh deploy (static, x86_64-unknown-linux-musl)."
    }
  }
}

locals {
  repo = "${path.module}/.."
  source_files = toset(concat(
    [for f in fileset(local.repo, "deploy/*.sh") : f],
    [for f in fileset(local.repo, "sql/*.sql") : f],
    [for f in fileset(local.repo, "replication/*") : f],
  ))
}

resource "aws_s3_object" "source" {
  for_each    = local.source_files
  bucket      = aws_s3_bucket.release.id
  key         = "source/${each.value}"
  source      = "${local.repo}/${each.value}"
  source_hash = filemd5("${local.repo}/${each.value}")
  kms_key_id  = aws_kms_key.main.arn
}

# Where these settings were before they served both buckets.
moved {
  from = aws_s3_bucket_public_access_block.release
  to   = aws_s3_bucket_public_access_block.private["release"]
}

moved {
  from = aws_s3_bucket_ownership_controls.release
  to   = aws_s3_bucket_ownership_controls.private["release"]
}

moved {
  from = aws_s3_bucket_versioning.release
  to   = aws_s3_bucket_versioning.private["release"]
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.release
  to   = aws_s3_bucket_server_side_encryption_configuration.private["release"]
}
