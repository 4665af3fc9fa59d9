"""The checker must fail on what it is there to catch (run by
scripts/terraform-check.sh before it checks terraform/)."""

import pathlib
import tempfile
import textwrap
import unittest

import check
import elfcheck
import hclexpr
import plan

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
        problems += plan.refusal_problems(parsed)
        problems += plan.binary_problems(parsed, root)
        problems += plan.moved_problems(parsed)
        return problems


class CheckerCatches(unittest.TestCase):
    def test_a_good_configuration_passes(self):
        self.assertEqual(run(GOOD_TF), [])

    def test_moves_that_would_lose_a_host(self):
        tf = GOOD_TF + textwrap.dedent('''
            resource "aws_instance" "kept" {
              ami = "x"
            }
            resource "aws_instance" "old" {
              ami = "x"
            }
            moved {
              from = aws_instance.gone[0]
              to   = aws_instance.kept["a"]
            }
            moved {
              from = aws_instance.gone[0]
              to   = aws_instance.kept["b"]
            }
            moved {
              from = aws_instance.old
              to   = aws_instance.kept["c"]
            }
            moved {
              from = aws_instance.gone[1]
              to   = aws_instance.typo["d"]
            }
            moved {
              from = aws_instance.kept["z"]
              to   = aws_instance.kept["y"]
            }
        ''')
        problems = run(tf)
        self.assertIn('main.tf: moves ${aws_instance.gone[0]} twice', problems)
        self.assertIn('main.tf: moves ${aws_instance.old} out of a resource that is still declared', problems)
        self.assertIn('main.tf: moves ${aws_instance.gone[1]} to ${aws_instance.typo["d"]}, which is not declared', problems)
        self.assertEqual(len(problems), 3, problems)

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


INSTANCE_TYPE = textwrap.dedent('''
    variable "db_instance_type" {
      description = "Type."
      type        = string
      default     = "r6i.large"
      %s
    }
''')
GRAVITON_REFUSED = '''validation {
        condition     = !can(regex("^[a-z]+[0-9]+[a-z]*g[a-z]*\\\\.", var.db_instance_type))
        error_message = "Arm."
      }'''
SSH = textwrap.dedent('''
    variable "admin_cidr" {
      description = "CIDR."
      type        = string
      default     = null
      validation {
        condition     = var.admin_cidr == null || try(cidrhost(var.admin_cidr, 0) == split("/", var.admin_cidr)[0], false)
        error_message = "A network."
      }
    }
    variable "ssh_key_name" {
      description = "Key."
      type        = string
      default     = null
    }
''')
BINARY = textwrap.dedent('''
    variable "binary_path" {
      description = "Binary."
      type        = string
      default     = null
    }
    locals {
      binary_path = coalesce(var.binary_path, "${path.module}/atelier")
      binary_head = fileexists(local.binary_path) ? substr(filebase64(local.binary_path), 0, 28) : ""
    }
    resource "aws_s3_object" "binary" {
      source = local.binary_path
      %s
    }
''')


class RefusedValues(unittest.TestCase):
    def test_an_arm_instance_type_that_validation_lets_through(self):
        problems = run(GOOD_TF + INSTANCE_TYPE % "")
        self.assertTrue(any("db_instance_type = 'm7g.large' passes every check" in p for p in problems), problems)
        self.assertEqual(run(GOOD_TF + INSTANCE_TYPE % GRAVITON_REFUSED), [])

    def test_a_validation_that_refuses_what_ec2_takes(self):
        too_strict = GRAVITON_REFUSED.replace("[a-z]*g[a-z]*", "[a-z]*")
        problems = run(GOOD_TF + INSTANCE_TYPE % too_strict)
        self.assertTrue(any("'r6i.large' is refused" in p for p in problems), problems)

    def test_ssh_opened_without_a_key(self):
        problems = run(GOOD_TF + SSH)
        self.assertTrue(any("admin_cidr = '203.0.113.0/24', ssh_key_name = None passes" in p for p in problems), problems)
        guarded = SSH + textwrap.dedent('''
            resource "aws_instance" "lb" {
              lifecycle {
                precondition {
                  condition     = var.admin_cidr == null || var.ssh_key_name != null
                  error_message = "Needs a key."
                }
              }
            }
        ''')
        self.assertEqual(run(GOOD_TF + guarded), [])

    def test_a_host_address_as_admin_cidr(self):
        loose = SSH.replace('try(cidrhost(var.admin_cidr, 0) == split("/", var.admin_cidr)[0], false)', "can(cidrhost(var.admin_cidr, 0))")
        problems = run(GOOD_TF + loose)
        self.assertTrue(any("admin_cidr = '203.0.113.5/24' passes every check" in p for p in problems), problems)

    def test_a_check_it_cannot_evaluate_is_a_problem(self):
        odd = INSTANCE_TYPE % GRAVITON_REFUSED.replace("!can(", "!startswith_unknown(var.db_instance_type) && !can(")
        self.assertTrue(any("cannot evaluate" in p for p in run(GOOD_TF + odd)))


class BinaryPlatform(unittest.TestCase):
    ELF_CHECK = '''lifecycle {
        precondition {
          condition     = substr(local.binary_head, 0, 8) == "f0VMRgIB" && substr(local.binary_head, 24, 4) == "PgAB"
          error_message = "Not x86-64."
        }
      }'''

    def test_a_binary_uploaded_unchecked(self):
        problems = run(GOOD_TF + BINARY % "")
        for kind in ("arm64", "32-bit x86", "Mach-O", "shell script"):
            self.assertTrue(any("aws_s3_object.binary: uploads" in p and kind in p for p in problems), (kind, problems))

    def test_a_check_of_the_elf_magic_alone_lets_arm64_through(self):
        magic_only = self.ELF_CHECK.replace(' && substr(local.binary_head, 24, 4) == "PgAB"', "")
        problems = run(GOOD_TF + BINARY % magic_only)
        self.assertTrue(any("uploads an arm64 Linux ELF" in p for p in problems), problems)
        self.assertFalse(any("Mach-O" in p for p in problems), problems)

    def test_the_header_check_passes_x86_64_only(self):
        self.assertEqual(run(GOOD_TF + BINARY % self.ELF_CHECK), [])

    def test_the_real_binary_passes_when_built(self):
        built = [p for p in (pathlib.Path("../../target/x86_64-unknown-linux-musl/release/atelier"), pathlib.Path("/bin/true")) if p.exists()]
        with tempfile.TemporaryDirectory() as d:
            root = pathlib.Path(d)
            (root / "main.tf").write_text(BINARY % self.ELF_CHECK)
            parsed, _ = check.parse_all(root)
            for path in built:
                (root / "atelier").write_bytes(path.read_bytes()[:64])
                self.assertEqual(plan.binary_problems(parsed, root), [])


class DeployBinary(unittest.TestCase):
    """scripts/build-bin.sh deploy refuses what the hosts could not run."""

    def with_interpreter(self, header):
        # One program header, PT_INTERP, right after the 64-byte ELF header.
        data = bytearray(header) + bytes(56)
        data[32:40] = (64).to_bytes(8, "little")  # e_phoff
        data[54:56] = (56).to_bytes(2, "little")  # e_phentsize
        data[56:58] = (1).to_bytes(2, "little")  # e_phnum
        data[64:68] = elfcheck.PT_INTERP.to_bytes(4, "little")
        return bytes(data)

    def test_kinds(self):
        self.assertEqual(elfcheck.problems(plan.elf_header(0x3E)), [])
        for label, (content, allowed) in plan.BINARY_KINDS.items():
            self.assertEqual(elfcheck.problems(content) == [], allowed, label)
        self.assertTrue(any("interpreter" in p for p in elfcheck.problems(self.with_interpreter(plan.elf_header(0x3E)))))

    def test_the_dynamic_build_of_this_machine_is_refused(self):
        dynamic = pathlib.Path("/bin/true").read_bytes()
        self.assertTrue(any("interpreter" in p for p in elfcheck.problems(dynamic)))


class Evaluator(unittest.TestCase):
    def value(self, expression, **variables):
        return hclexpr.evaluate("${" + expression + "}", hclexpr.Scope(variables))

    def test_like_terraform(self):
        self.assertIs(self.value('can(regex("^a", var.s))', s="abc"), True)
        self.assertIs(self.value('can(regex("^a", var.s))', s="xbc"), False)
        self.assertEqual(self.value('try(split("/", var.c)[5], "none")', c="10.0.0.0/8"), "none")
        self.assertEqual(self.value("var.n > 2 ? \"big\" : \"small\"", n=3), "big")
        self.assertEqual(self.value('"${var.a}-x"', a="q"), "q-x")
        # && and || evaluate both sides, as Terraform does: an error is not hidden.
        with self.assertRaises(hclexpr.EvalError):
            self.value('var.c == null || cidrhost(var.c, 0) == "x"', c=None)
        with self.assertRaises(hclexpr.EvalError):
            self.value('cidrhost("10.0.0.1", 0)')


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

