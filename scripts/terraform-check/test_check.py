"""The checker must fail on what it is there to catch (run by
scripts/terraform-check.sh before it checks terraform/)."""

import pathlib
import tempfile
import textwrap
import unittest

import check

GOOD_TF = textwrap.dedent('''
    variable "n" {
      description = "How many."
      type        = number
    }
    locals {
      x = templatefile("${path.module}/t.tftpl", {
        a    = var.n
        list = { inner = 1 }
      })
    }
''')
GOOD_TEMPLATE = 'echo ${a} $${bash_var} %{ for k, v in list ~}${k}=${v}%{ endfor ~} ${upper("s")}\n'


def run(tf, template=GOOD_TEMPLATE):
    with tempfile.TemporaryDirectory() as d:
        root = pathlib.Path(d)
        (root / "main.tf").write_text(tf)
        (root / "t.tftpl").write_text(template)
        parsed, problems = check.parse_all(root)
        problems += check.variable_problems(parsed)
        problems += check.template_problems(root)[0]
        problems += check.description_problems(parsed)
        problems += check.zone_literal_problems(root)
        return problems


class CheckerCatches(unittest.TestCase):
    def test_a_good_configuration_passes(self):
        self.assertEqual(run(GOOD_TF), [])

    def test_a_file_that_does_not_parse(self):
        self.assertTrue(any("does not parse" in p for p in run(GOOD_TF + "resource {{{")))

    def test_a_variable_without_description_or_type(self):
        tf = GOOD_TF + 'variable "bare" {\n  default = 1\n}\n'
        problems = run(tf)
        self.assertIn("main.tf: variable bare has no description", problems)
        self.assertIn("main.tf: variable bare has no type", problems)

    def test_a_template_using_a_variable_it_is_not_given(self):
        problems = run(GOOD_TF, GOOD_TEMPLATE + "${secret}\n")
        self.assertIn("t.tftpl: refers to secret, which main.tf does not give it", problems)

    def test_a_variable_given_and_never_used(self):
        problems = run(GOOD_TF, "%{ for k, v in list ~}${k}${v}%{ endfor ~}\n")
        self.assertIn("t.tftpl: main.tf gives it a, which it never uses", problems)

    def test_a_missing_template(self):
        problems = run(GOOD_TF.replace("t.tftpl", "gone.tftpl"))
        self.assertTrue(any("gone.tftpl, which does not exist" in p for p in problems))


    def test_a_zone_made_from_the_region_name(self):
        tf = GOOD_TF + 'locals {\n  az = coalesce(var.zone, "${var.region}a")\n}\n'
        self.assertTrue(any("a zone named from the region" in p for p in run(tf)), run(tf))

    def test_a_security_group_description_ec2_refuses(self):
        tf = GOOD_TF + textwrap.dedent('''
            resource "aws_vpc_security_group_ingress_rule" "http" {
              description = "HTTP from the storefront's clients"
            }
            resource "aws_vpc_security_group_ingress_rule" "either" {
              description = each.value.port == 443 ? "HTTPS (fine)" : "HTTP & more"
            }
            resource "aws_security_group" "ok" {
              description = "${var.n} hosts: PostgreSQL from the apps (reads)"
            }
        ''')
        problems = run(tf)
        self.assertTrue(any("aws_vpc_security_group_ingress_rule.http" in p and "'" in p for p in problems), problems)
        self.assertTrue(any("aws_vpc_security_group_ingress_rule.either" in p and "&" in p for p in problems), problems)
        self.assertFalse(any("aws_security_group.ok" in p for p in problems), problems)


class BashCheck(unittest.TestCase):
    def test_broken_bash_in_a_template_is_caught(self):
        with tempfile.TemporaryDirectory() as d:
            root = pathlib.Path(d)
            (root / "user-data").mkdir()
            (root / "user-data" / "ok.sh.tftpl").write_text('echo "${a}"\nif true; then echo $${b}; fi\n')
            self.assertEqual(check.bash_problems(root), [])
            (root / "user-data" / "bad.sh.tftpl").write_text('if [ "${a}" ]; then echo\n')
            self.assertEqual(len(check.bash_problems(root)), 1)


if __name__ == "__main__":
    unittest.main()

