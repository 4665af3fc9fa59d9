# Sourced by the scripts that serve a catalog database of their own on the
# local cluster (jmeter-full.sh, schemathesis.sh):
#
#   source scripts/local-catalog.sh DATABASE
#
# builds the debug binary into $bin and points every command at DATABASE:
# the tools as the operator (`postgres`), the service as its roles (`serve`
# adds the local cluster's passwords).
# shellcheck shell=bash
bin=${bin:-$(scripts/build-bin.sh)}
export ATELIER_DATABASE=$1
export ATELIER_ADMIN_PRIMARY_URL="host=127.0.0.1 port=54320 user=postgres dbname=$1"
export ATELIER_ADMIN_REPLICA_URLS="host=127.0.0.1 port=54321 user=postgres dbname=$1,host=127.0.0.1 port=54322 user=postgres dbname=$1"
export ATELIER_PRIMARY_URL="host=127.0.0.1 port=54320 user=atelier_writer dbname=$1"
export ATELIER_REPLICA_URLS="host=127.0.0.1 port=54321 user=atelier_reader dbname=$1,host=127.0.0.1 port=54322 user=atelier_reader dbname=$1"
