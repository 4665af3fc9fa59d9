"""The checks of check.py that read resources and variables as a plan
would (items 7 to 9 of its list): values EC2 refuses are refused by the
validations and preconditions, the binary's upload preconditions refuse
what the hosts cannot run, and moved blocks keep every host."""

import pathlib
import re
import struct
import tempfile

import hclexpr


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
