variable "region" {
  description = "AWS region to deploy in."
  type        = string
  default     = "us-east-1"
}

variable "availability_zone" {
  description = "Availability zone of every subnet (null: the first available zone that offers every instance type used)."
  type        = string
  default     = null
}

variable "name" {
  description = "Name of this deployment: prefixes every resource and the SSM parameters (/<name>/...)."
  type        = string
  default     = "atelier"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name: 2-20 lowercase letters, digits or dashes, starting with a letter (it prefixes the bucket's name)."
  }
}

variable "vpc_cidr" {
  description = "Address range of the VPC; a /16 is split into /24 subnets (public, app, database)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "http_cidrs" {
  description = "Who may reach the balancer on ports 443 (HTTPS) and 80 (reads only): the storefront's clients."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "admin_cidr" {
  description = "Address range allowed to SSH to the balancer (and through it, as a jump host, to the others). null: no SSH at all; use SSM Session Manager. Needs ssh_key_name."
  type        = string
  default     = null

  validation {
    condition     = var.admin_cidr == null || try(cidrhost(var.admin_cidr, 0) == split("/", var.admin_cidr)[0], false)
    error_message = "admin_cidr: a network address with its prefix length, e.g. 203.0.113.0/24 (not a host inside it)."
  }
}

variable "ssh_key_name" {
  description = "Name of an existing EC2 key pair for SSH (only used when admin_cidr is set)."
  type        = string
  default     = null
}

variable "replica_count" {
  description = "Number of read replicas; every app server reads from all of them."
  type        = number
  default     = 2

  validation {
    condition     = var.replica_count >= 1 && var.replica_count <= 20
    error_message = "replica_count: 1 to 20."
  }
}

variable "app_count" {
  description = "Number of app servers behind the balancer."
  type        = number
  default     = 2

  validation {
    condition     = var.app_count >= 1 && var.app_count <= 20
    error_message = "app_count: 1 to 20."
  }
}

variable "db_instance_type" {
  description = "Instance type of the write model's two nodes (primary and synchronous standby) and the replicas (memory-optimised: the catalog's hot set stays in RAM)."
  type        = string
  default     = "r6i.large"

  validation {
    # The image is Debian 12 for amd64 and the binary is x86-64: an Arm
    # (Graviton) type would boot and never run it.
    condition     = !can(regex("^[a-z]+[0-9]+[a-z]*g[a-z]*\\.", var.db_instance_type))
    error_message = "db_instance_type: an Arm (Graviton, ...g.) type; the image and the binary are x86-64."
  }
}

variable "app_instance_type" {
  description = "Instance type of the app servers."
  type        = string
  default     = "t3.small"

  validation {
    # The image is Debian 12 for amd64 and the binary is x86-64: an Arm
    # (Graviton) type would boot and never run it.
    condition     = !can(regex("^[a-z]+[0-9]+[a-z]*g[a-z]*\\.", var.app_instance_type))
    error_message = "app_instance_type: an Arm (Graviton, ...g.) type; the image and the binary are x86-64."
  }
}

variable "lb_instance_type" {
  description = "Instance type of the nginx balancer."
  type        = string
  default     = "t3.small"

  validation {
    # The image is Debian 12 for amd64 and the binary is x86-64: an Arm
    # (Graviton) type would boot and never run it.
    condition     = !can(regex("^[a-z]+[0-9]+[a-z]*g[a-z]*\\.", var.lb_instance_type))
    error_message = "lb_instance_type: an Arm (Graviton, ...g.) type; the image and the binary are x86-64."
  }
}

variable "witness_instance_type" {
  description = "Instance type of the etcd witness, the third etcd member beside the two database nodes (etcd needs little: a leader lock and a few keys)."
  type        = string
  default     = "t3.micro"

  validation {
    # The image is Debian 12 for amd64: an Arm (Graviton) type would not boot it.
    condition     = !can(regex("^[a-z]+[0-9]+[a-z]*g[a-z]*\\.", var.witness_instance_type))
    error_message = "witness_instance_type: an Arm (Graviton, ...g.) type; the image is x86-64."
  }
}

variable "patroni_ttl" {
  description = "Seconds Patroni's leader lock lives without renewal: a failover starts about this long after the primary stops answering (rehearsed at 8; scripts/failover-rehearsal.sh)."
  type        = number
  default     = 8

  validation {
    # Patroni requires ttl >= loop_wait (1) + 2 x retry_timeout (3).
    condition     = var.patroni_ttl >= 7 && var.patroni_ttl <= 60 && floor(var.patroni_ttl) == var.patroni_ttl
    error_message = "patroni_ttl: a whole number of seconds from 7 (loop_wait 1 + 2 x retry_timeout 3) to 60."
  }
}

variable "db_volume_gb" {
  description = "Size in GiB of each database host's gp3 data volume (PostgreSQL lives there)."
  type        = number
  default     = 100
}

variable "db_volume_iops" {
  description = "Provisioned IOPS of each gp3 data volume (3000 is gp3's included baseline; at most 16000 and 500 per GiB)."
  type        = number
  default     = 3000

  validation {
    condition     = floor(var.db_volume_iops) == var.db_volume_iops && var.db_volume_iops >= 3000 && var.db_volume_iops <= 16000
    error_message = "db_volume_iops: a whole number from 3000 to 16000 (gp3), and at most 500 per GiB of db_volume_gb."
  }
}

variable "products" {
  description = "Products of the generated catalog loaded once on the primary at first boot; 0 for an empty catalog."
  type        = number
  default     = 1000000

  validation {
    condition     = floor(var.products) == var.products && var.products >= 0 && var.products <= 100000000
    error_message = "products: a whole number from 0 to 100,000,000."
  }
}

variable "binary_path" {
  description = "The atelier binary to upload (x86-64 Linux, best static). null: this repository's deploy build, target/x86_64-unknown-linux-musl/release/atelier (scripts/build-bin.sh deploy)."
  type        = string
  default     = null
}

variable "app_port" {
  description = "Port the app servers listen on (reachable only from the balancer)."
  type        = number
  default     = 3000
}

variable "app_settings" {
  description = "Extra ATELIER_* settings for the service (docs/operations.md, Configuration), e.g. { ATELIER_READ_POOL_SIZE = \"8\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.app_settings : can(regex("^ATELIER_[A-Z_]+$", k)) && !can(regex("['\n]", v))])
    error_message = "app_settings: keys ATELIER_*, values without single quotes or newlines."
  }
}

variable "db_shared_buffers" {
  description = "PostgreSQL shared_buffers on the database hosts: \"auto\" (a quarter of each host's memory, measured at boot) or a size such as \"4GB\"."
  type        = string
  default     = "auto"

  validation {
    condition     = var.db_shared_buffers == "auto" || can(regex("^[0-9]+(kB|MB|GB)$", var.db_shared_buffers))
    error_message = "db_shared_buffers: \"auto\" or a size in kB, MB or GB (e.g. 4GB)."
  }
}

variable "tls_certificate_pem" {
  description = "The balancer's HTTPS certificate chain (PEM) for the API's name, e.g. from your CA or Let's Encrypt. Null: terraform makes a self-signed one for the balancer's public address (output tls_certificate; clients must trust it explicitly)."
  type        = string
  default     = null
}

variable "tls_private_key_pem" {
  description = "The private key (PEM) of tls_certificate_pem; given together with it or not at all. Kept only as a SecureString parameter that the balancer alone may read."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = (var.tls_private_key_pem == null) == (var.tls_certificate_pem == null)
    error_message = "Give tls_certificate_pem and tls_private_key_pem together, or neither (a self-signed certificate is made)."
  }
}

variable "db_termination_protection" {
  description = "EC2 termination protection on the primary and the replicas (set false, apply, then destroy, to remove a deployment on purpose; the data volumes also carry prevent_destroy)."
  type        = bool
  default     = true
}

variable "backup_retention_full" {
  description = "Full backups pgBackRest keeps in the backup bucket (weekly by default: 2 keeps two weeks of point-in-time restore). Older ones, and the WAL only they need, are expired after each backup."
  type        = number
  default     = 2

  validation {
    condition     = var.backup_retention_full >= 1 && floor(var.backup_retention_full) == var.backup_retention_full
    error_message = "backup_retention_full: a whole number, at least 1."
  }
}

variable "backup_retention_diff" {
  description = "Differential backups pgBackRest keeps (daily by default)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_diff >= 1 && floor(var.backup_retention_diff) == var.backup_retention_diff
    error_message = "backup_retention_diff: a whole number, at least 1."
  }
}

variable "backup_noncurrent_days" {
  description = "Days an expired or overwritten object of the backup bucket stays recoverable (S3 versioning) before the lifecycle rule removes it."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_noncurrent_days >= 1
    error_message = "backup_noncurrent_days: at least 1."
  }
}

variable "archive_timeout" {
  description = "Seconds after which a quiet primary switches WAL segments, so every commit reaches the backup bucket within this long: the most a total loss of the primary can lose."
  type        = number
  default     = 60

  validation {
    condition     = var.archive_timeout >= 10 && var.archive_timeout <= 3600
    error_message = "archive_timeout: between 10 and 3600 seconds (below 10 the archive fills with nearly empty segments)."
  }
}
