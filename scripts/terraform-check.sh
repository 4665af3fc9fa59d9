#!/usr/bin/env bash
# What CI can check of terraform/ without terraform or AWS (no terraform
# binary can be installed here): every .tf parses (python-hcl2), every
# variable has a description and a type, every user-data template refers
# only to the variables its templatefile() call gives it
# (scripts/terraform-check/check.py, which first proves on its own fixtures
# that it catches each of these), and checkov reports no failed check (each
# intentional skip is written inline with its reason). Tools from PyPI,
# pinned, in a virtualenv under out/. Not a substitute for
# `terraform validate` and `terraform plan` (docs/deployment.md).
set -euo pipefail
cd "$(dirname "$0")/.."
hcl2_version=8.1.4
checkov_version=3.3.30
venv=out/terraform-venv
installed() { "$venv/bin/pip" show "$1" 2>/dev/null | grep -qx "Version: $2"; }
if ! installed checkov "$checkov_version" || ! installed python-hcl2 "$hcl2_version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "python-hcl2==$hcl2_version" "checkov==$checkov_version"
fi
(cd scripts/terraform-check && "../../$venv/bin/python" -m unittest -q test_check)
"$venv/bin/python" scripts/terraform-check/check.py terraform
# --skip-download: checkov would fetch guidelines from its vendor; offline here.
"$venv/bin/checkov" -d terraform --framework terraform --quiet --compact --skip-download
echo "terraform checks: passed (not a substitute for terraform validate/plan)"
