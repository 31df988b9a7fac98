"""Evaluate a parsed template (`template_parser`) against a context, as Garden's `ast.ts` does.

Missing keys are errors, except where Garden keeps its old leniency: the left side of `||`, both
sides of `&&` (false), `!` (true), `typeof` ("undefined") and a ternary's condition (the `else`
branch is taken, and the branch not taken is never evaluated).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from farm.garden import jsvalues as js
from farm.garden.template_ast import (
    Arr,
    Binary,
    Block,
    Call,
    Format,
    If,
    Lit,
    Lookup,
    Member,
    Node,
    TemplateError,
    Ternary,
    Unary,
)
from farm.garden.template_functions import ArgumentError, HelperError, call_helper


class _NotFound:
    """A key that is not in the context, while evaluating where Garden tolerates that."""


NOT_FOUND: Any = _NotFound()


class MissingKey(TemplateError):
    """A key that is not in the context; `key_path` is the full path that was looked up."""

    def __init__(self, message: str, key_path: tuple[str | int, ...], source: str) -> None:
        super().__init__(message, source.strip(), source)
        self.key_path = key_path


def render_key_path(keys: list[str | int] | tuple[str | int, ...]) -> str:
    """`a.b["c.d"]`: Garden's way of naming a key path in messages."""
    if not keys:
        return ""
    out = str(keys[0])
    for key in keys[1:]:
        text = js.key_string(key)
        out += f"[{js.stringify(text)}]" if re.search(r"[.${}]", text) else f".{text}"
    return out


def _child(value: Any, key: str | int) -> Any:
    """`value[key]` in JavaScript, for a dict or a list; NOT_FOUND for undefined."""
    if isinstance(value, Mapping):
        if key in value and not isinstance(key, bool):
            return value[key]
        text = js.key_string(key)
        return next((v for k, v in value.items() if js.key_string(k) == text), NOT_FOUND)
    text = js.key_string(key)
    if text == "length":
        return len(value)
    if re.fullmatch(r"0|[1-9][0-9]*", text) and int(text) < len(value):
        return value[int(text)]
    return NOT_FOUND


def lookup(context: Mapping[str, Any], keys: list[str | int], source: str, optional: bool) -> Any:
    value: Any = context
    for depth, key in enumerate(keys):
        if js.is_primitive(value):
            raise TemplateError(f"Attempted to look up key {key} on primitive value "
                                f"{render_key_path(keys)}.", source.strip(), source)
        found = _child(value, key)
        if found is NOT_FOUND:
            if optional:
                return NOT_FOUND
            under = f" under {render_key_path(keys[:depth])}" if depth else ""
            if isinstance(value, Mapping):
                available = [js.key_string(k) for k in value]
            else:
                available = [str(i) for i in range(len(value))]
            available = [k for k in available if not k.startswith("_") and k != js.key_string(key)]
            listed = ", ".join(available) if available else "(none)"
            raise MissingKey(f"Could not find key {key}{under}. Available keys: {listed}.",
                             tuple(keys[:depth + 1]), source)
        value = found
    return value


def evaluate(node: Node, ctx: Mapping[str, Any], optional: bool = False, keep_escaping: bool = False) -> Any:
    """The node's value, or NOT_FOUND (only when `optional`). Errors carry the `${...}` at fault."""
    def ev(n: Node, opt: bool = optional) -> Any:
        return evaluate(n, ctx, opt, keep_escaping)

    if isinstance(node, Lit):
        return node.value[1:] if node.escaped and not keep_escaping else node.value
    if isinstance(node, Format):
        try:
            return ev(node.inner)
        except TemplateError as exc:
            exc.expression = exc.expression if exc.expression != exc.source.strip() else node.text.strip()
            raise
    if isinstance(node, Block):
        if len(node.parts) == 1:
            return ev(node.parts[0])
        out = ""
        for part in node.parts:
            value = ev(part)
            if value is NOT_FOUND:
                return value
            out += js.to_string(value)
        return out
    if isinstance(node, Lookup):
        keys: list[str | int] = []
        for key in node.keys:
            if isinstance(key, Member):
                key = _member(ev(key.expr), key.source)
                if key is NOT_FOUND:
                    return key
            keys.append(key)
        return lookup(ctx, keys, node.source, optional)
    if isinstance(node, Arr):
        items = [ev(item) for item in node.items]
        return NOT_FOUND if any(i is NOT_FOUND for i in items) else items
    if isinstance(node, Unary):
        inner = ev(node.inner, True)
        if node.op == "typeof":
            return "undefined" if inner is NOT_FOUND else js.typeof(inner)
        return True if inner is NOT_FOUND else not js.truthy(inner)
    if isinstance(node, Ternary):
        cond = ev(node.cond, True)
        return ev(node.yes) if cond is not NOT_FOUND and js.truthy(cond) else ev(node.no)
    if isinstance(node, If):
        cond = ev(node.cond)
        if cond is NOT_FOUND or node.then is None:
            return cond
        branch = node.then if js.truthy(cond) else node.other
        return ev(branch) if branch is not None else ""
    if isinstance(node, Call):
        args = [ev(a) for a in node.args]
        if any(a is NOT_FOUND for a in args):
            return NOT_FOUND
        return _call(node, args)
    if isinstance(node, Binary):
        return _binary(node, ctx, optional, keep_escaping)
    raise TemplateError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover


def _member(value: Any, source: str) -> Any:
    if value is NOT_FOUND or isinstance(value, str) or js.is_number(value):
        return value
    raise TemplateError("Expression in brackets must resolve to a string or number "
                        f"(got {js.type_name(value)}).", source.strip(), source)


def _call(node: Call, args: list[Any]) -> Any:
    try:
        return call_helper(node.name, args)
    except LookupError as exc:
        raise TemplateError(str(exc.args[0]), node.source.strip(), node.source) from None
    except ArgumentError as exc:
        raise TemplateError(str(exc), node.source.strip(), node.source) from None
    except HelperError as exc:
        raise TemplateError(f"Error from helper function {node.name}: {exc.js_name}: {exc}",
                            node.source.strip(), node.source) from None
    except RecursionError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a helper throws is one template error
        raise TemplateError(f"Error from helper function {node.name}: Error: {exc}",
                            node.source.strip(), node.source) from None


def _binary(node: Binary, ctx: Mapping[str, Any], optional: bool, keep: bool) -> Any:
    op = node.op
    if op in ("||", "&&"):
        left = evaluate(node.left, ctx, True, keep)
        if op == "||":
            if left is not NOT_FOUND and js.truthy(left):
                return left
            return evaluate(node.right, ctx, optional, keep)
        if left is NOT_FOUND:
            return False
        if not js.truthy(left):
            return left
        right = evaluate(node.right, ctx, True, keep)
        return False if right is NOT_FOUND else right
    left = evaluate(node.left, ctx, optional, keep)
    if left is NOT_FOUND:
        return left
    right = evaluate(node.right, ctx, optional, keep)
    if right is NOT_FOUND:
        return right

    def fail(message: str) -> TemplateError:
        return TemplateError(message, node.source.strip(), node.source)

    if op == "==":
        return js.strict_equal(left, right)
    if op == "!=":
        return not js.strict_equal(left, right)
    if op == "+":
        if js.is_number(left) and js.is_number(right):
            return js.normalise_number(left + right)
        if isinstance(left, str):  # Garden checks only the left side (`isString(left) && isString(left)`)
            return left + js.to_string(right)
        if isinstance(left, list) and isinstance(right, list):
            return left + right
        raise fail("Both terms need to be either arrays or strings or numbers for + operator "
                   f"(got {js.type_name(left)} and {js.type_name(right)}).")
    if op == "contains":
        return _contains(left, right, fail)
    if not (js.is_number(left) and js.is_number(right)):
        raise fail(f"Both terms need to be numbers for {op} operator "
                   f"(got {js.type_name(left)} and {js.type_name(right)}).")
    return _arithmetic(op, left, right)


def _arithmetic(op: str, a: float, b: float) -> Any:
    if op in ("<", ">", "<=", ">="):
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    if op in ("/", "%") and b == 0:
        if op == "%" or a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1, b)
    if op == "%":
        return js.normalise_number(math.fmod(a, b))
    return js.normalise_number({"-": a - b, "*": a * b, "/": a / b}[op])


def _contains(collection: Any, element: Any, fail: Any) -> bool:
    if not js.is_primitive(element):
        raise fail("The right-hand side of a 'contains' operator must be a string, number, boolean or null "
                   f"(got {js.type_name(element)}).")
    if isinstance(collection, list):
        return any(js.strict_equal(element, v) for v in collection)
    if isinstance(collection, Mapping):
        return js.key_string(element) in {js.key_string(k) for k in collection}
    if isinstance(collection, str):
        return js.to_string(element) in collection
    raise fail("The left-hand side of a 'contains' operator must be a string, array or object "
               f"(got {js.to_string(collection)}).")
