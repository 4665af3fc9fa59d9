# The backup repository: pgBackRest on the leading database node pushes every WAL segment
# and its scheduled base backups here (deploy/backup.sh, repo1-type=s3,
# instance credentials: no keys anywhere). A private bucket, versioned (a
# deleted or overwritten backup stays recoverable for
# backup_noncurrent_days), encrypted with the deployment's KMS key, TLS
# only, and readable or writable by two roles only: the database nodes', and the
# restore role's (read-only, for a host that restores a new primary or
# rehearses it). pgBackRest's own retention (backup_retention_*) expires
# backups; the lifecycle rule then removes their old versions.
#
# The bucket is not force_destroy: `terraform destroy` stops at a bucket
# with backups in it, on purpose. Empty it yourself when you mean it.

resource "aws_s3_bucket" "backup" {
  #checkov:skip=CKV_AWS_144:One region; cross-region replication of the backups is a choice with its own cost (a second bucket and key), left to the operator.
  #checkov:skip=CKV_AWS_18:Access is limited to two roles by the bucket policy; CloudTrail data events are the place to audit it if needed.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new backups; the backup report (atelier backup metrics) watches them.
  bucket_prefix = "${var.name}-backup-"
  force_destroy = false
}

# Public access blocked, owner-enforced, versioned and KMS-encrypted: the
# same four settings as the release bucket, in bucket.tf (for_each there).

resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id
  rule {
    id     = "expired-backups"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.backup_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

locals {
  # Who may touch the backups' objects at all.
  backup_roles = [aws_iam_role.host["db"].arn, aws_iam_role.host["restore"].arn]
}

data "aws_iam_policy_document" "backup_bucket" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["backup"].json]
  statement {
    sid       = "OnlyThePrimaryAndTheRestoreRole"
    effect    = "Deny"
    actions   = ["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:ListBucket*", "s3:RestoreObject"]
    resources = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = local.backup_roles
    }
  }
}

resource "aws_s3_bucket_policy" "backup" {
  bucket = aws_s3_bucket.backup.id
  policy = data.aws_iam_policy_document.backup_bucket.json
}
