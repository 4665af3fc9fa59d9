"""What CI can check of terraform/ without terraform (no binary here):

1. every .tf file parses (python-hcl2, a maintained HCL2 parser);
2. every variable has a description and a type;
3. every templatefile() call names a template that exists, and the
   template refers only to variables the call gives it (plus its own
   %{ for } loop variables); every variable given is used;
4. every user-data template, rendered roughly (directives kept or dropped,
   each ${...} replaced by a word), is valid bash (`bash -n`);
5. every security group's and security-group rule's description uses only
   the characters EC2 accepts there (it answers InvalidParameterValue for
   anything else, and the provider does not check): a-z A-Z 0-9, space and
   ._-:/()#,@[]+=;{}!$* (the strictest documented set);
6. no availability zone is made from the region's name and a letter
   (`"${var.region}a"`): some accounts have no "a" zone; zones come from
   the aws_availability_zones data source;
7. values EC2 refuses are refused at plan time: for each variable of
   REFUSED (and each combination of COMBINATIONS), the variables'
   validations and the preconditions that read only variables are
   evaluated (hclexpr.py) with every value EC2 would refuse, which must
   fail one, and with values it takes, which must pass all;
8. the release binary is checked before it is uploaded: the preconditions
   of the aws_s3_object whose source is the binary, evaluated with
   binary_path set to files of each kind (an x86-64 Linux ELF, and
   arm64, 32-bit, Mach-O and script files, which must be refused);
9. every `moved` block moves to a resource that is declared, from one
   that is not (or from another instance of the same resource), and no
   address is moved twice: a typo there would destroy and re-create a
   host instead of keeping it.

checkov runs separately (scripts/terraform-check.sh). None of this replaces
`terraform validate` and `terraform plan` (docs/deployment.md).
"""

import pathlib
import re
import subprocess
import sys

import hcl2

from plan import REFUSED, binary_problems, declared_variables, moved_problems, refusal_problems, resources

KEYWORDS = {"if", "else", "endif", "for", "endfor", "in", "true", "false", "null"}


def parse_all(root):
    parsed, problems = {}, []
    for tf in sorted(root.glob("*.tf")):
        try:
            with tf.open() as f:
                parsed[tf] = hcl2.load(f)
        except Exception as e:  # the parser's own message says where
            problems.append(f"{tf.name}: does not parse: {e}")
    if not parsed:
        problems.append(f"no .tf files in {root}")
    return parsed, problems


def variable_problems(parsed):
    problems = []
    for tf, doc in parsed.items():
        for block in doc.get("variable", []):
            for name, body in block.items():
                for field in ("description", "type"):
                    if not body.get(field):
                        problems.append(f"{tf.name}: variable {name} has no {field}")
    return problems


def matching_brace(text, start):
    """Index of the } closing the { at start, skipping strings."""
    depth, i, quote = 0, start, False
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced braces")


def top_level_keys(body):
    """Keys of an HCL object literal's body (nested objects skipped)."""
    keys, depth = set(), 0
    for line in body.splitlines():
        if depth == 0:
            m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
            if m:
                keys.add(m.group(1))
        depth += line.count("{") + line.count("[") + line.count("(")
        depth -= line.count("}") + line.count("]") + line.count(")")
    return keys


def template_calls(root):
    call = re.compile(r'templatefile\(\s*"\$\{path\.module\}/([^"]+)"\s*,\s*\{')
    for tf in sorted(root.glob("*.tf")):
        text = tf.read_text()
        for m in call.finditer(text):
            open_brace = m.end() - 1
            body = text[open_brace + 1 : matching_brace(text, open_brace)]
            yield tf, m.group(1), top_level_keys(body)


def template_references(text):
    """Names a template uses, and the names its %{ for } loops bind."""
    used, bound = set(), set()
    # ${...} and %{...}, but not the escapes $${ and %%{.
    for m in re.finditer(r"(?<![$%])([$%])\{(.*?)\}", text, re.S):
        kind, expr = m.group(1), re.sub(r'"[^"]*"', "", m.group(2)).strip("~ ")
        if kind == "%":
            loop = re.match(r"for\s+([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?\s+in\s+(.*)", expr)
            if loop:
                bound.update(n for n in loop.group(1, 2) if n)
                expr = loop.group(3)
        for name in re.finditer(r"(?<![\w.])([A-Za-z_]\w*)(\s*\()?", expr):
            if name.group(2) or name.group(1) in KEYWORDS:
                continue  # a function, or a keyword
            used.add(name.group(1))
    return used, bound


def template_problems(root):
    problems, calls = [], 0
    for tf, rel, given in template_calls(root):
        calls += 1
        path = root / rel
        if not path.is_file():
            problems.append(f"{tf.name}: templatefile names {rel}, which does not exist")
            continue
        used, bound = template_references(path.read_text())
        for name in sorted(used - given - bound):
            problems.append(f"{rel}: refers to {name}, which {tf.name} does not give it")
        for name in sorted(given - used):
            problems.append(f"{rel}: {tf.name} gives it {name}, which it never uses")
    if calls == 0:
        problems.append("no templatefile() calls found: the user data is not rendered from templates")
    return problems, calls


def rough_render(text):
    """A template as bash would see it, near enough for `bash -n`: loop
    bodies dropped, if bodies kept, interpolations replaced by a word."""
    text = re.sub(r"%\{\s*for .*?%\{\s*endfor\s*~?\}", "", text, flags=re.S)
    text = re.sub(r"%\{[^}]*\}", "", text)
    text = re.sub(r"(?<!\$)\$\{[^}]*\}", "x", text)
    return text.replace("$${", "${").replace("%%{", "%{")


def bash_problems(root):
    problems = []
    for template in sorted((root / "user-data").glob("*.sh.tftpl")):
        result = subprocess.run(["bash", "-n"], input=rough_render(template.read_text()),
                                capture_output=True, text=True)
        if result.returncode != 0:
            problems.append(f"{template.name}: not valid bash: {result.stderr.strip()}")
    return problems


# EC2's set for security group and rule descriptions (the strictest one
# documented; `&` is allowed only for some rule kinds, so not here).
DESCRIPTION_CHARS = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]*")
SECURITY_GROUP_TYPES = {
    "aws_security_group",
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
}


def description_texts(value):
    """The literal text of a description: the string itself, or, for an
    expression (`${a ? "x" : "y"}`), each quoted string in it."""
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, str):
            continue
        if v.startswith("${") and v.endswith("}"):
            yield from re.findall(r'"((?:[^"\\]|\\.)*)"', v)
        else:
            yield re.sub(r"\$\{[^}]*\}", "x", v)


def description_problems(parsed):
    problems = []
    for tf, kind, name, body in resources(parsed):
        if kind not in SECURITY_GROUP_TYPES:
            continue
        bodies = [body] + [rule for key in ("ingress", "egress") for rule in body.get(key, [])]
        for part in bodies:
            for text in description_texts(part.get("description", [])):
                if not DESCRIPTION_CHARS.fullmatch(text):
                    bad = sorted(set(re.sub(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]", "", text)))
                    problems.append(
                        f"{tf.name}: {kind}.{name}: description {text!r} has characters EC2 refuses: {''.join(bad)}"
                    )
    return problems


def zone_literal_problems(root):
    problems = []
    for tf in sorted(root.glob("*.tf")):
        for number, line in enumerate(tf.read_text().splitlines(), 1):
            if re.search(r'"\$\{var\.region\}[a-z]"', line.split("#")[0]):
                problems.append(f"{tf.name}:{number}: a zone named from the region and a letter; use aws_availability_zones")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "terraform")
    parsed, problems = parse_all(root)
    problems += variable_problems(parsed)
    more, calls = template_problems(root)
    problems += more
    problems += bash_problems(root)
    problems += description_problems(parsed)
    problems += zone_literal_problems(root)
    problems += refusal_problems(parsed)
    problems += [f"terraform/ has no variable {n}, which REFUSED names" for n in REFUSED if n not in declared_variables(parsed)]
    problems += binary_problems(parsed, root)
    problems += moved_problems(parsed)
    for p in problems:
        print(f"terraform check: {p}")
    variables = sum(len(b) for doc in parsed.values() for b in doc.get("variable", []))
    print(
        f"terraform check: {len(parsed)} files parsed, {variables} variables, "
        f"{calls} templatefile calls: {len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
