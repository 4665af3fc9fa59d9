"""A small evaluator for the HCL expressions our validations and
preconditions use, so the checker can ask "does terraform/ refuse this
value?" without terraform.

It reads expressions as python-hcl2 normalises them (`${...}` around the
expression, null as None, booleans as True/False) and knows only the
functions listed in FUNCTIONS, with Terraform's meaning. Anything else
raises Unsupported, which the checker reports: an expression it cannot
evaluate is a problem, never a pass. Like Terraform, && and || evaluate
both sides (an error on either side is an error), and a failed function
call is an error that only can() and try() catch.
"""

import base64
import ipaddress
import math
import pathlib
import re


class Unsupported(Exception):
    """An expression this evaluator does not know how to read."""


class EvalError(Exception):
    """What Terraform would report as an error evaluating the expression."""


TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d+)?)
    | (?P<string>")
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:()\[\],.])
    )""",
    re.X,
)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def string_end(text, start):
    """Index just past the string starting after the quote at start - 1,
    with the parts: literal text and ('expr', source) for each ${...}."""
    parts, literal, i = [], [], start
    while i < len(text):
        c = text[i]
        if c == "\\":
            literal.append(ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif c == '"':
            parts.append("".join(literal))
            return i + 1, parts
        elif text.startswith("${", i):
            parts.append("".join(literal))
            literal = []
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise Unsupported("unterminated ${ in a string")
                if text[j] == '"':
                    j, _ = string_end(text, j + 1)
                    continue
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            parts.append(("expr", text[i + 2 : j - 1]))
            i = j
        else:
            literal.append(c)
            i += 1
    raise Unsupported("unterminated string")


def tokens(text):
    out, i = [], 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = TOKEN.match(text, i)
        if not m:
            raise Unsupported(f"cannot read {text[i:i + 20]!r}")
        if m.group("string"):
            i, parts = string_end(text, m.end())
            out.append(("string", parts))
            continue
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        i = m.end()
    out.append(("end", None))
    return out


# Binary operators, loosest first (HCL's precedence).
PRECEDENCE = [("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%")]


class Parser:
    """Expression source to a tree of tuples."""

    def __init__(self, text):
        self.toks, self.pos = tokens(text), 0

    def peek(self):
        return self.toks[self.pos]

    def take(self, value=None):
        tok = self.toks[self.pos]
        if value is not None and tok[1] != value:
            raise Unsupported(f"expected {value!r}, found {tok[1]!r}")
        self.pos += 1
        return tok

    def parse(self):
        tree = self.conditional()
        if self.peek()[0] != "end":
            raise Unsupported(f"unexpected {self.peek()[1]!r}")
        return tree

    def conditional(self):
        cond = self.binary(0)
        if self.peek()[1] == "?":
            self.take("?")
            yes = self.conditional()
            self.take(":")
            return ("if", cond, yes, self.conditional())
        return cond

    def binary(self, level):
        if level == len(PRECEDENCE):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in PRECEDENCE[level]:
            op = self.take()[1]
            left = ("op", op, left, self.binary(level + 1))
        return left

    def unary(self):
        if self.peek()[1] in ("!", "-"):
            return ("unary", self.take()[1], self.unary())
        return self.postfix(self.primary())

    def primary(self):
        kind, value = self.take()
        if kind == "number":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "string":
            return ("template", [p if isinstance(p, str) else Parser(p[1]).parse() for p in value])
        if kind == "name":
            if value in ("None", "null"):
                return ("lit", None)
            if value in ("True", "true", "False", "false"):
                return ("lit", value in ("True", "true"))
            if self.peek()[1] == "(":
                self.take("(")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.conditional())
                    if self.peek()[1] == ",":
                        self.take(",")
                self.take(")")
                return ("call", value, args)
            return ("name", value)
        if value == "(":
            inner = self.conditional()
            self.take(")")
            return inner
        raise Unsupported(f"unexpected {value!r}")

    def postfix(self, tree):
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                tree = ("attr", tree, self.take()[1])
            else:
                tree = ("index", tree, self.conditional())
                self.take("]")
        return tree


def strip(source):
    """The expression inside python-hcl2's `${...}`; a plain string is a literal."""
    if isinstance(source, str) and source.startswith("${") and source.endswith("}"):
        return source[2:-1]
    return None


def regex(pattern, text):
    m = re.search(pattern, text)
    if not m:
        raise EvalError(f"regex {pattern!r} does not match {text!r}")
    return m.group(0) if not m.groups() else list(m.groups())


def cidrhost(prefix, number):
    # Terraform parses the prefix with Go's net.ParseCIDR: the length is required.
    if not isinstance(prefix, str) or "/" not in prefix:
        raise EvalError(f"cidrhost: {prefix!r} is not in CIDR notation")
    try:
        return str(ipaddress.ip_network(prefix, strict=False)[int(number)])
    except (ValueError, IndexError, TypeError) as e:
        raise EvalError(f"cidrhost: {e}")


def coalesce(*values):
    for v in values:
        if v is not None and v != "":
            return v
    raise EvalError("coalesce: no non-null, non-empty argument")


def filebase64(path):
    try:
        return base64.b64encode(pathlib.Path(path).read_bytes()).decode()
    except OSError as e:
        raise EvalError(f"filebase64: {e}")


def substr(text, offset, length):
    return text[offset:] if length == -1 else text[offset : offset + length]


FUNCTIONS = {
    "regex": regex,
    "cidrhost": cidrhost,
    "split": lambda sep, text: text.split(sep),
    "floor": lambda x: math.floor(x),
    "coalesce": coalesce,
    "fileexists": lambda path: pathlib.Path(path).is_file(),
    "filebase64": filebase64,
    "substr": substr,
    "length": len,
    "contains": lambda items, value: value in items,
}


class Scope:
    """What names mean: var.* from a dict, local.* evaluated on demand from
    their sources, path.module."""

    def __init__(self, variables, local_sources=None, module="."):
        self.variables, self.local_sources, self.module = variables, local_sources or {}, module
        self.locals = {}

    def local(self, name):
        if name not in self.locals:
            if name not in self.local_sources:
                raise Unsupported(f"local.{name} is not a local this evaluator was given")
            self.locals[name] = evaluate(self.local_sources[name], self)
        return self.locals[name]


def evaluate(source, scope):
    """The value of a python-hcl2 attribute value (expression or literal)."""
    inner = strip(source)
    if inner is None:
        return source
    return value(Parser(inner).parse(), scope)


def truth(v):
    if not isinstance(v, bool):
        raise EvalError(f"{v!r} is not a bool")
    return v


def value(tree, scope):
    kind = tree[0]
    if kind == "lit":
        return tree[1]
    if kind == "template":
        return "".join(p if isinstance(p, str) else str(value(p, scope)) for p in tree[1])
    if kind == "if":
        return value(tree[2] if truth(value(tree[1], scope)) else tree[3], scope)
    if kind == "unary":
        v = value(tree[2], scope)
        return (not truth(v)) if tree[1] == "!" else -v
    if kind == "op":
        op, left, right = tree[1], value(tree[2], scope), value(tree[3], scope)
        if op in ("&&", "||"):
            return (truth(left) and truth(right)) if op == "&&" else (truth(left) or truth(right))
        if op in ("==", "!="):
            return (left == right) == (op == "==")
        try:
            return {
                "<": lambda: left < right,
                "<=": lambda: left <= right,
                ">": lambda: left > right,
                ">=": lambda: left >= right,
                "+": lambda: left + right,
                "-": lambda: left - right,
                "*": lambda: left * right,
                "/": lambda: left / right,
                "%": lambda: left % right,
            }[op]()
        except TypeError as e:
            raise EvalError(str(e))
    if kind == "call":
        name, args = tree[1], tree[2]
        if name == "can":
            try:
                value(args[0], scope)
                return True
            except EvalError:
                return False
        if name == "try":
            for arg in args:
                try:
                    return value(arg, scope)
                except EvalError:
                    continue
            raise EvalError("try: no argument could be evaluated")
        if name not in FUNCTIONS:
            raise Unsupported(f"function {name}() is not known to this evaluator")
        try:
            return FUNCTIONS[name](*[value(a, scope) for a in args])
        except (TypeError, AttributeError) as e:
            raise EvalError(f"{name}: {e}")
    if kind == "attr":
        base = tree[1]
        if base[0] == "name":
            if base[1] == "var":
                if tree[2] not in scope.variables:
                    raise Unsupported(f"var.{tree[2]} has no value here")
                return scope.variables[tree[2]]
            if base[1] == "local":
                return scope.local(tree[2])
            if base[1] == "path" and tree[2] == "module":
                return scope.module
            raise Unsupported(f"{base[1]}.{tree[2]} (a resource or data source)")
        container = value(base, scope)
        if not isinstance(container, dict) or tree[2] not in container:
            raise EvalError(f"no attribute {tree[2]}")
        return container[tree[2]]
    if kind == "index":
        container, key = value(tree[1], scope), value(tree[2], scope)
        try:
            return container[key]
        except (IndexError, KeyError, TypeError) as e:
            raise EvalError(f"index: {e}")
    if kind == "name":
        raise Unsupported(f"bare name {tree[1]}")
    raise Unsupported(kind)
