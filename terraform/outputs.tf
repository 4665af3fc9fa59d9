output "url" {
  description = "The API, through the balancer (HTTPS; plain HTTP serves reads only)."
  value       = "https://${aws_eip.lb.public_ip}"
}

output "tls_certificate" {
  description = "The balancer's certificate (PEM): the one given, or the self-signed one made for its address (trust it with curl --cacert)."
  value       = local.tls_certificate
}

output "private_addresses" {
  description = "Private addresses of every host."
  value = {
    lb       = local.lb_address
    db       = { for name, node in local.db_addrs : name => node.address }
    witness  = local.witness_addr
    replicas = local.replica_addrs
    apps     = local.app_addrs
  }
}

output "instance_ids" {
  description = "Instance ids, for aws ssm start-session --target."
  value = {
    lb       = local.instances["lb"].id
    db       = { for name in keys(local.db_addrs) : name => local.instances[name].id }
    witness  = local.instances["witness"].id
    replicas = [for i in range(var.replica_count) : local.instances["replica${i + 1}"].id]
    apps     = [for i in range(var.app_count) : local.instances["app${i + 1}"].id]
  }
}

output "psql" {
  description = "How to read query plans with psql on the primary and on a replica (Session Manager; no inbound port)."
  value       = <<-EOT
    which node leads: curl -s http://${local.db_addrs.db1.address}:8008/cluster   (from a database node), or /readyz's "primary"
    db1:      aws ssm start-session --region ${var.region} --target ${local.instances["db1"].id}
              sudo -u postgres psql -h /var/lib/atelier/run atelier
    db2:      aws ssm start-session --region ${var.region} --target ${local.instances["db2"].id}
    replica1: aws ssm start-session --region ${var.region} --target ${local.instances["replica1"].id}
              sudo -u postgres psql -h /var/lib/atelier/run atelier   (then \i /opt/atelier/sql/explain.sql)
    boot log: sudo cat /var/log/atelier-boot.log
  EOT
}

output "jmeter" {
  description = "The JMeter plan and the stepped stress test against this deployment, from a checkout (the ids come from the primary through a Session Manager tunnel)."
  value       = <<-EOT
    # 1. a tunnel to the leading node, db1 unless a failover moved it (keep it open in its own terminal)
    aws ssm start-session --region ${var.region} --target ${local.instances["db1"].id} \
      --document-name AWS-StartPortForwardingSessionToRemoteHost \
      --parameters host=${local.db_addrs.db1.address},portNumber=5432,localPortNumber=15432
    # 2. the owner's password, for the tools
    export ATELIER_ADMIN_PRIMARY_URL="host=127.0.0.1 port=15432 user=atelier_owner dbname=atelier password=$(aws ssm get-parameter --region ${var.region} --with-decryption --name ${local.parameter["owner"]} --query Parameter.Value --output text)"
    # 3. a token for the POSTs (stock:write), in the environment only
    export ATELIER_TOKEN=$(atelier token create --name load-test --scope stock:write)
    # 4. JMeter over HTTPS (the plan's defaults: 128 GET threads per GET group, 64 POST threads),
    #    and the stepped stress test of the reads over plain HTTP (it speaks no TLS; writes need HTTPS)
    scripts/jmeter.sh -Jhost=${aws_eip.lb.public_ip} -Jport=443 -Jprotocol=https
    atelier stress --server ${aws_eip.lb.public_ip}:80 --routes list,product,styles,related --rates 100,500,1000,2000,4000 --step-seconds 30
  EOT
}

output "ssh" {
  description = "SSH through the balancer as a jump host, when admin_cidr and ssh_key_name are set."
  value       = var.admin_cidr == null ? "SSH is off (admin_cidr unset): use Session Manager (see the psql output)." : "ssh -J admin@${aws_eip.lb.public_ip} admin@${local.db_addrs.db1.address}"
}

output "backup_bucket" {
  description = "The backup repository (pgBackRest, repo1-type=s3, prefix /atelier): WAL archive and base backups of whichever write model node leads."
  value       = aws_s3_bucket.backup.id
}

output "restore_instance_profile" {
  description = "Attach to the host that restores a new primary from the backup bucket (read-only on it); docs/operations.md."
  value       = aws_iam_instance_profile.host["restore"].name
}

output "boot_logs" {
  description = "How to read each host's first-boot log (the user data's output, also in /var/log/atelier-boot.log on the host): EC2's console output, no login needed."
  value = join("\n", [
    for name, host in local.instances : "${name}: aws ec2 get-console-output --region ${var.region} --latest --output text --instance-id ${host.id} | grep 'atelier boot'"
  ])
}

output "release_bucket" {
  description = "The bucket the hosts fetch the binary (bin/atelier) and the scripts (source/) from."
  value       = aws_s3_bucket.release.id
}
