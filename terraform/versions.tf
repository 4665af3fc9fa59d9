# The whole topology of deploy/ on EC2: the write model on two Patroni
# nodes with an etcd witness, var.replica_count replicas, var.app_count app
# servers and one nginx balancer, each
# provisioned at first boot by its role script (deploy/*.sh, unchanged) from
# the user data in user-data/. Terraform creates machines, network, secrets
# and the bucket the binary ships in; it never provisions a host itself.
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project    = "atelier"
      Deployment = var.name
    }
  }
}
