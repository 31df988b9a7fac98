"""Garden's `${...}` template strings: the subset users put in provider and Build fields.

Pure: `resolve(value, context)` walks plain YAML data and returns it resolved, raising
TemplateError (message + expression) that the caller turns into a ConfigError with file:line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from farm.garden.template_functions import FUNCTIONS, TemplateError, render

__all__ = ["FUNCTIONS", "OMIT", "TemplateError", "has_template", "resolve", "resolve_string"]


class _Missing(Exception):
    """A key that does not exist; `a || b` and `${x}?` catch it, everything else reports it."""

    def __init__(self, key: str, available: list[str]) -> None:
        self.key = key
        self.available = available


class _Omit:
    """Marks a `${...}?` whose key is missing: the field is dropped, as Garden does."""


OMIT = _Omit()


# --- lexer ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>\|\||&&|==|!=|<=|>=|[.\[\](),!?:+<>])
  | (?P<name>[A-Za-z_$][A-Za-z0-9_\-$]*)
""", re.VERBOSE)


def _lex(expr: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise TemplateError(f"unexpected character {expr[pos]!r}", expr)
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "ws":
            continue
        if kind == "num":
            tokens.append(("lit", float(text) if "." in text else int(text)))
        elif kind == "str":
            tokens.append(("lit", _unquote(text)))
        elif kind == "name" and text in ("true", "false", "null"):
            tokens.append(("lit", {"true": True, "false": False, "null": None}[text]))
        else:
            tokens.append((kind, text))
    tokens.append(("end", ""))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# --- parser: builds closures evaluated against a context ---------------------------------------

Node = Callable[[Mapping[str, Any]], Any]


def _const(value: Any) -> Node:
    return lambda ctx: value


def _lookup(key: str) -> Node:
    return lambda ctx: _get(ctx, key, key)


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _lex(expr)
        self.i = 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.i]

    def take(self, text: str | None = None) -> tuple[str, Any]:
        tok = self.tokens[self.i]
        if text is not None and tok[1] != text:
            raise TemplateError(f"expected {text!r} but found {tok[1] or 'end'!r}", self.expr)
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.ternary()
        if self.peek()[0] != "end":
            raise TemplateError(f"unexpected {self.peek()[1]!r}", self.expr)
        return node

    def ternary(self) -> Node:
        cond = self.or_()
        if self.peek()[1] != "?":
            return cond
        self.take("?")
        yes = self.ternary()
        self.take(":")
        no = self.ternary()
        return lambda ctx: yes(ctx) if _truthy(cond(ctx)) else no(ctx)

    def or_(self) -> Node:
        left = self.and_()
        while self.peek()[1] == "||":
            self.take()
            right = self.and_()
            left = _or(left, right)
        return left

    def and_(self) -> Node:
        left = self.compare()
        while self.peek()[1] == "&&":
            self.take()
            right = self.compare()
            left = (lambda a, b: lambda ctx: (lambda x: b(ctx) if _truthy(x) else x)(a(ctx)))(left, right)
        return left

    def compare(self) -> Node:
        left = self.add()
        while self.peek()[1] in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.add()
            left = _compare(op, left, right, self.expr)
        return left

    def add(self) -> Node:
        left = self.unary()
        while self.peek()[1] == "+":
            self.take()
            right = self.unary()
            left = _plus(left, right, self.expr)
        return left

    def unary(self) -> Node:
        if self.peek()[1] == "!":
            self.take()
            inner = self.unary()
            return lambda ctx: not _truthy(inner(ctx))
        return self.primary()

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "lit":
            return _const(text)
        if text == "(":
            inner = self.ternary()
            self.take(")")
            return self.suffixes(inner, None)
        if text == "[":
            items: list[Node] = []
            while self.peek()[1] != "]":
                items.append(self.ternary())
                if self.peek()[1] != ",":
                    break
                self.take(",")
            self.take("]")
            return lambda ctx: [item(ctx) for item in items]
        if kind == "name":
            if self.peek()[1] == "(":
                return self.suffixes(self.call(text), None)
            return self.suffixes(_lookup(text), text)
        raise TemplateError(f"unexpected {text or 'end'!r}", self.expr)

    def call(self, name: str) -> Node:
        fn = FUNCTIONS.get(name)
        if fn is None:
            raise TemplateError(f"unknown function {name!r} (known: {', '.join(sorted(FUNCTIONS))})", self.expr)
        self.take("(")
        args: list[Node] = []
        while self.peek()[1] != ")":
            args.append(self.ternary())
            if self.peek()[1] != ",":
                break
            self.take(",")
        self.take(")")
        expr = self.expr

        def run(ctx: Mapping[str, Any]) -> Any:
            values = [a(ctx) for a in args]
            try:
                return fn(*values)
            except TemplateError:
                raise
            except Exception as exc:  # noqa: BLE001 - any bad argument becomes one template error
                raise TemplateError(f"{name}() failed: {exc}", expr) from None
        return run

    def suffixes(self, node: Node, dotted: str | None) -> Node:
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                kind, key = self.take()
                if kind not in ("name", "lit"):
                    raise TemplateError(f"expected a key after '.', found {key!r}", self.expr)
                key = str(key)
            else:
                key_node = self.ternary()
                self.take("]")
                node = _index(node, key_node, dotted)
                dotted = f"{dotted}[...]" if dotted else None
                continue
            label = f"{dotted}.{key}" if dotted else key
            node = (lambda parent, k, lab: lambda ctx: _get(parent(ctx), k, lab))(node, key, label)
            dotted = label
        return node


def _get(obj: Any, key: Any, label: str) -> Any:
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
        raise _Missing(label, sorted(str(k) for k in obj))
    if isinstance(obj, list) and isinstance(key, int):
        if -len(obj) <= key < len(obj):
            return obj[key]
        raise _Missing(label, [])
    raise _Missing(label, [])


def _index(parent: Node, key: Node, dotted: str | None) -> Node:
    return lambda ctx: _get(parent(ctx), key(ctx), f"{dotted or ''}[{key(ctx)!r}]")


def _or(left: Node, right: Node) -> Node:
    def run(ctx: Mapping[str, Any]) -> Any:
        try:
            value = left(ctx)
        except _Missing:
            return right(ctx)
        return value if _truthy(value) else right(ctx)
    return run


def _compare(op: str, left: Node, right: Node, expr: str) -> Node:
    def run(ctx: Mapping[str, Any]) -> Any:
        a, b = left(ctx), right(ctx)
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            raise TemplateError(f"{op} needs numbers", expr)
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    return run


def _plus(left: Node, right: Node, expr: str) -> Node:
    def run(ctx: Mapping[str, Any]) -> Any:
        a, b = left(ctx), right(ctx)
        if isinstance(a, list) and isinstance(b, list):
            return a + b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return a + b
        if isinstance(a, str) or isinstance(b, str):
            return render(a, expr) + render(b, expr)
        raise TemplateError("+ needs two numbers, two strings or two lists", expr)
    return run


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value == value  # NaN is falsy in JS


# --- template strings ----------------------------------------------------------------------------

def _split(text: str) -> list[tuple[bool, str]]:
    """Split into (is_expr, text) parts; `$${` escapes; quotes inside `${...}` may hold `}`."""
    parts: list[tuple[bool, str]] = []
    buf, i = "", 0
    while i < len(text):
        if text.startswith("$${", i):
            buf += "${"
            i += 3
            continue
        if text.startswith("${", i):
            j, quote, depth = i + 2, "", 0
            while j < len(text):
                c = text[j]
                if quote:
                    if c == "\\":
                        j += 1
                    elif c == quote:
                        quote = ""
                elif c in "\"'":
                    quote = c
                elif c == "{":
                    depth += 1
                elif c == "}":
                    if depth == 0:
                        break
                    depth -= 1
                j += 1
            if j >= len(text):
                raise TemplateError("unclosed ${", text[i + 2:])
            if buf:
                parts.append((False, buf))
                buf = ""
            parts.append((True, text[i + 2:j].strip()))
            i = j + 1
            continue
        buf += text[i]
        i += 1
    if buf:
        parts.append((False, buf))
    return parts


def has_template(text: str) -> bool:
    return "${" in text


def resolve_string(text: str, context: Mapping[str, Any]) -> Any:
    """Resolve one string; a string that is exactly one `${...}` keeps the value's type."""
    optional = text.endswith("}?") and text.startswith("${")
    source = text[:-1] if optional else text
    parts = _split(source)
    try:
        if len(parts) == 1 and parts[0][0]:
            return _evaluate(parts[0][1], context)
        return "".join(render(_evaluate(p, context), p) if is_expr else p for is_expr, p in parts)
    except _Missing as missing:
        if optional:
            return OMIT
        expr = next((p for is_expr, p in parts if is_expr), "")
        hint = ""
        if missing.key.startswith("secrets."):
            hint = " (Garden Cloud secrets are not available to the farm; use local.env.* or a varfile)"
        elif missing.key.startswith("actions.build.") and missing.key.count(".") == 2:
            hint = " (no container Build of that name is enabled in this environment)"
        elif missing.key.split(".")[0] in ("actions", "runtime", "modules", "providers"):
            hint = " (references to other actions, modules or providers are not supported by the farm)"
        elif missing.available:
            hint = f" (available: {', '.join(missing.available[:12])})"
        raise TemplateError(f"could not find key {missing.key}{hint}", expr) from None


def _evaluate(expr: str, context: Mapping[str, Any]) -> Any:
    if not expr:
        raise TemplateError("empty template", expr)
    return _Parser(expr).parse()(context)


def resolve(value: Any, context: Mapping[str, Any],
            on_error: Callable[[TemplateError, tuple[str | int, ...]], Exception],
            path: tuple[str | int, ...] = ()) -> Any:
    """Resolve every string in plain YAML data; `on_error` turns a failure at `path` into an exception."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        try:
            return resolve_string(value, context)
        except TemplateError as exc:
            raise on_error(exc, path) from None
        except RecursionError:
            raise on_error(TemplateError("template nested too deeply", value), path) from None
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            resolved = resolve(item, context, on_error, path + (str(key),))
            if resolved is not OMIT:
                out[key] = resolved
        return out
    if isinstance(value, list):
        items = [resolve(item, context, on_error, path + (i,)) for i, item in enumerate(value)]
        return [i for i in items if i is not OMIT]
    return value
