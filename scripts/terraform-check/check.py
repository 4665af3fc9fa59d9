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
import struct
import subprocess
import sys
import tempfile

import hcl2

import hclexpr

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


# Values EC2 refuses for a variable (each must fail one of the checks), and
# values it takes (each must pass them all). Instance types: Graviton (Arm)
# families carry a "g" after the generation digit; the image is amd64.
INSTANCE_TYPES = (
    ["m7g.large", "r6g.xlarge", "t4g.small", "c6gn.large", "x2gd.large", "r8g.large", "g5g.xlarge"],
    ["r6i.large", "t3.small", "t3a.micro", "m5.xlarge", "c5n.large", "r7iz.large", "m7a.large", "g5.xlarge"],
)
REFUSED = {
    "db_instance_type": INSTANCE_TYPES,
    "app_instance_type": INSTANCE_TYPES,
    "lb_instance_type": INSTANCE_TYPES,
    "witness_instance_type": INSTANCE_TYPES,
    # gp3: 3000 to 16000 IOPS, whole numbers.
    "db_volume_iops": ([2999, 16001, 3000.5, 0], [3000, 6000, 16000]),
    # A security group takes a network address, not a host inside one.
    "admin_cidr": (["203.0.113.5/24", "10.0.0.1/8", "203.0.113.0", "not-an-address"], [None, "203.0.113.0/24", "198.51.100.7/32"]),
    "products": ([1.5, -1], [0, 1000, 1000000]),
}
# Combinations of variables EC2 refuses together, and ones it takes.
COMBINATIONS = (
    [
        {"admin_cidr": "203.0.113.0/24", "ssh_key_name": None},  # SSH opened with no key to log in with
        {"db_volume_iops": 16000, "db_volume_gb": 20},  # gp3: at most 500 IOPS per GiB
    ],
    [
        {"admin_cidr": "203.0.113.0/24", "ssh_key_name": "operator"},
        {"db_volume_iops": 16000, "db_volume_gb": 32},
        {"db_volume_iops": 3000, "db_volume_gb": 100},
    ],
)


def declared_variables(parsed):
    return {name: body for doc in parsed.values() for block in doc.get("variable", []) for name, body in block.items()}


def resources(parsed):
    for tf, doc in parsed.items():
        for block in doc.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    yield tf, kind, name, body


def preconditions(body):
    for lifecycle in body.get("lifecycle", []):
        yield from lifecycle.get("precondition", [])


def reads_only_variables(condition):
    text = condition if isinstance(condition, str) else ""
    return "var." in text and not re.search(r"\b(local|data|aws_[a-z0-9_]+|random_[a-z_]+|tls_[a-z_]+)\.", text)


def checks_of(parsed, names):
    """(label, condition) of every validation of the named variables, and
    of every precondition that reads only variables, all of them named
    (one that also reads another variable is a combination's check)."""
    variables = declared_variables(parsed)
    for name in names:
        for validation in variables.get(name, {}).get("validation", []):
            yield f"variable {name}", validation["condition"][0]
    for tf, kind, rname, body in resources(parsed):
        for pre in preconditions(body):
            condition = pre["condition"][0]
            read = set(re.findall(r"\bvar\.([a-z0-9_]+)", condition))
            if reads_only_variables(condition) and read <= set(names):
                yield f"{kind}.{rname}", condition


def passes(parsed, values):
    """(True, None) when every check of the variables in values passes with
    them (the others at their defaults); else (False, why)."""
    variables = declared_variables(parsed)
    scope_values = {n: b.get("default", [None])[0] for n, b in variables.items()}
    scope_values.update(values)
    for label, condition in checks_of(parsed, list(values)):
        scope = hclexpr.Scope(scope_values)
        try:
            ok = hclexpr.evaluate(condition, scope)
        except hclexpr.EvalError as e:
            return False, f"{label}: error ({e})"
        if ok is not True:
            return False, f"{label}: fails"
    return True, None


def refusal_problems(parsed, refused=REFUSED, combinations=COMBINATIONS):
    problems = []
    variables = declared_variables(parsed)
    cases = [({name: v}, False) for name, (bad, _) in refused.items() if name in variables for v in bad]
    cases += [({name: v}, True) for name, (_, good) in refused.items() if name in variables for v in good]
    cases += [(c, False) for c in combinations[0] if all(n in variables for n in c)]
    cases += [(c, True) for c in combinations[1] if all(n in variables for n in c)]
    for values, expected in cases:
        shown = ", ".join(f"{n} = {v!r}" for n, v in values.items())
        try:
            ok, why = passes(parsed, values)
        except hclexpr.Unsupported as e:
            problems.append(f"cannot evaluate the checks of {shown}: {e}")
            continue
        if ok and not expected:
            problems.append(f"{shown} passes every check, but EC2 refuses it: validate it")
        elif not ok and expected:
            problems.append(f"{shown} is refused ({why}), but EC2 takes it")
    return problems


def elf_header(machine, elf_class=2):
    """The first 64 bytes of a little-endian ELF executable for machine."""
    ident = b"\x7fELF" + bytes([elf_class, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHI", 2, machine, 1) + bytes(64 - 20)


# What a binary_path can hold, and whether the deployment may upload it.
BINARY_KINDS = {
    "an x86-64 Linux ELF": (elf_header(0x3E), True),
    "an arm64 Linux ELF": (elf_header(0xB7), False),
    "a 32-bit x86 ELF": (elf_header(0x03, elf_class=1), False),
    "a macOS (Mach-O) executable": (bytes.fromhex("cffaedfe07000001") + bytes(56), False),
    "a shell script": (b"#!/bin/sh\necho atelier\n" + bytes(40), False),
}


def binary_problems(parsed, root):
    """The preconditions of the object that uploads var.binary_path, with
    binary_path set to each kind of file."""
    # python-hcl2 gives each local's value as a one-element list.
    local_sources = {
        k: v[0] if isinstance(v, list) and len(v) == 1 else v
        for doc in parsed.values()
        for block in doc.get("locals", [])
        for k, v in block.items()
    }
    uploads = [
        (kind, name, body)
        for _, kind, name, body in resources(parsed)
        if kind == "aws_s3_object" and re.search(r"(var|local)\.binary_path", str(body.get("source", "")))
    ]
    if not uploads:
        return ["no aws_s3_object uploads var.binary_path: nothing checks the binary's platform"] if "binary_path" in declared_variables(parsed) else []
    problems = []
    with tempfile.TemporaryDirectory() as d:
        for label, (content, allowed) in BINARY_KINDS.items():
            path = pathlib.Path(d) / label.replace(" ", "-")
            path.write_bytes(content)
            for kind, name, body in uploads:
                scope = hclexpr.Scope({"binary_path": str(path)}, local_sources, module=str(root))
                try:
                    ok = all(hclexpr.evaluate(p["condition"][0], scope) is True for p in preconditions(body))
                except hclexpr.EvalError:
                    ok = False
                except hclexpr.Unsupported as e:
                    problems.append(f"{kind}.{name}: cannot evaluate its preconditions: {e}")
                    return problems
                if ok and not allowed:
                    problems.append(f"{kind}.{name}: uploads {label} without refusing it (check the ELF header)")
                elif not ok and allowed:
                    problems.append(f"{kind}.{name}: refuses {label}, which is what the hosts run")
    return problems


def moved_problems(parsed):
    declared = {f"{kind}.{name}" for _, kind, name, _ in resources(parsed)}
    resource = re.compile(r"^\$\{([a-z0-9_]+\.[a-z0-9_]+)")
    problems, seen = [], set()
    for tf, doc in parsed.items():
        for move in doc.get("moved", []):
            source, target = move["from"][0], move["to"][0]
            source_resource = resource.match(source).group(1)
            target_resource = resource.match(target).group(1)
            if target_resource not in declared:
                problems.append(f"{tf.name}: moves {source} to {target}, which is not declared")
            if source_resource in declared and source_resource != target_resource:
                problems.append(f"{tf.name}: moves {source} out of a resource that is still declared")
            if source in seen:
                problems.append(f"{tf.name}: moves {source} twice")
            seen.add(source)
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
