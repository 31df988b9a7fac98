"""Garden 0.14's template language for the fields the farm reads: `${...}` strings (parsed by
`template_parser`, evaluated by `template_eval`) and the structural `$merge`, `$concat`, `$forEach`
and `$if` keys of `core/src/template/templated-collections.ts`.

Pure: `resolve(value, context, on_error)` walks plain YAML data and returns it resolved; a
TemplateError (Garden's message, plus the `${...}` and the YAML path at fault) goes to `on_error`,
which turns it into the caller's exception. A `$if` without `$else` whose condition is false
leaves its key out (Garden sets it to undefined).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from farm.garden import jsvalues as js
from farm.garden.template_eval import MissingKey, evaluate
from farm.garden.template_functions import FUNCTIONS
from farm.garden.template_parser import TemplateError, parse

__all__ = ["FUNCTIONS", "TemplateError", "has_template", "resolve", "resolve_string"]

Path = tuple[str | int, ...]
_UNDEFINED: Any = object()
_FOR_EACH_KEYS = ("$forEach", "$return", "$filter")
_IF_KEYS = ("$if", "$then", "$else")


def has_template(text: str) -> bool:
    return "${" in text


def _hint(key_path: Path) -> str:
    """What the farm can say beyond Garden's message about a key it does not provide."""
    keys = [str(k) for k in key_path]
    if keys[:1] == ["secrets"]:
        return " (Garden Cloud secrets are not available to the farm; use local.env.* or a varfile)"
    if keys[:2] == ["actions", "build"] and len(keys) == 3:
        return f" ({'.'.join(keys)}: no container Build of that name is enabled in this environment)"
    if keys[:1] and keys[0] in ("actions", "runtime", "modules", "providers"):
        return " (references to other actions, modules or providers are not supported by the farm)"
    return ""


def resolve_string(text: str, context: Mapping[str, Any], *, keep_escaping: bool = False) -> Any:
    """Resolve one string; a string that is exactly one `${...}` keeps the value's type.
    `keep_escaping` leaves `$${` escapes as written (Garden's keepEscapingInTemplateStrings)."""
    parsed = parse(text)
    if isinstance(parsed, str):
        return parsed
    try:
        return evaluate(parsed, context, keep_escaping=keep_escaping)
    except MissingKey as exc:
        keys = [str(k) for k in exc.key_path]
        if keys[:2] == ["local", "env"] and len(keys) == 3:
            # Garden lists the available keys; for local.env that is every variable of the machine.
            exc.message = f"Could not find key {keys[2]} under local.env: the environment variable is not set"
        exc.message += _hint(exc.key_path)
        raise
    except RecursionError:
        raise TemplateError("template nested too deeply", text.strip(), text) from None


# --- collections ------------------------------------------------------------------------------------

def _natural(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _check(value: Any) -> None:
    """The structural errors Garden raises while parsing a collection, before evaluating anything."""
    if isinstance(value, list):
        for item in value:
            _check(item)
    if not isinstance(value, dict):
        return
    if "$forEach" in value:
        extra = [js.stringify(k) for k in value if k not in _FOR_EACH_KEYS]
        if extra:
            raise TemplateError(f"Found one or more unexpected keys on $forEach object: {_natural(extra)}. "
                                f"Allowed keys: {_natural(list(_FOR_EACH_KEYS))}")
        if "$return" not in value:
            raise TemplateError(f"Missing $return field next to $forEach field. Got {_natural(list(value))}")
    elif "$if" in value:
        if "$then" not in value:
            raise TemplateError(f"Missing $then field next to $if field. Got: {_natural(list(value))}")
        extra = [js.stringify(k) for k in value if k not in _IF_KEYS]
        if extra:
            raise TemplateError(f"Found one or more unexpected keys on $if object: {_natural(extra)}. "
                                f"Allowed: {_natural(list(_IF_KEYS))}")
    for item in value.values():
        _check(item)


class _Resolver:
    def __init__(self, on_error: Callable[[TemplateError, Path], Exception]) -> None:
        self.on_error = on_error

    def fail(self, exc: TemplateError, path: Path) -> Exception:
        exc.path = exc.path or path
        return self.on_error(exc, path)

    def value(self, value: Any, ctx: Mapping[str, Any], path: Path) -> Any:
        if isinstance(value, str):
            if "${" not in value:
                return value
            try:
                return resolve_string(value, ctx)
            except TemplateError as exc:
                raise self.fail(exc, path) from None
        if isinstance(value, list):
            return self.array(value, ctx, path)
        if isinstance(value, dict):
            if "$forEach" in value:
                return self.for_each(value, ctx, path)
            if "$if" in value:
                return self.conditional(value, ctx, path)
            return self.mapping(value, ctx, path)
        return value

    def mapping(self, value: dict[Any, Any], ctx: Mapping[str, Any], path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key != "$merge":
                resolved = self.value(item, ctx, path + (key,))
                if resolved is not _UNDEFINED:
                    out[key] = resolved
                continue
            merged = self.value(item, ctx, path + (key,))
            if not isinstance(merged, dict):
                raise self.fail(TemplateError("Value of $merge key must be (or resolve to) a mapping object "
                                              f"(got {js.typeof(merged)})"), path + (key,))
            out = {**out, **merged}
        return out

    def array(self, value: list[Any], ctx: Mapping[str, Any], path: Path) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(value):
            if isinstance(item, dict) and "$concat" in item:
                if len(item) > 1:
                    extra = [js.stringify(k) for k in item if k != "$concat"]
                    raise self.fail(TemplateError("A list item with a $concat key cannot have any other keys "
                                                  f"(found {_natural(extra)})"), path + ("$concat",))
                out += self.concat(item["$concat"], ctx, path + (i, "$concat"))
            else:
                resolved = self.value(item, ctx, path + (i,))
                out.append(None if resolved is _UNDEFINED else resolved)
        return out

    def concat(self, value: Any, ctx: Mapping[str, Any], path: Path) -> list[Any]:
        items = self.value(value, ctx, path)
        if not isinstance(items, list):
            raise self.fail(TemplateError("Value of $concat key must be (or resolve to) an array "
                                          f"(got {js.typeof(items)})"), path)
        return items

    def for_each(self, value: dict[Any, Any], ctx: Mapping[str, Any], path: Path) -> list[Any]:
        items = self.value(value["$forEach"], ctx, path + ("$forEach",))
        if not isinstance(items, (list, dict)):
            raise self.fail(TemplateError("Value of $forEach key must be (or resolve to) an array or mapping "
                                          f"object (got {js.typeof(items)})"), path + ("$forEach",))
        pairs = list(enumerate(items)) if isinstance(items, list) else list(items.items())
        template = value["$return"]
        flatten = isinstance(template, dict) and "$concat" in template
        out: list[Any] = []
        for key, item in pairs:
            local = {**ctx, "item": {"key": js.key_string(key), "value": item}}
            if "$filter" in value:
                keep = self.value(value["$filter"], local, path + ("$filter",))
                if not isinstance(keep, bool):
                    raise self.fail(TemplateError("$filter clause in $forEach loop must resolve to a boolean "
                                                  f"value (got {js.typeof(keep)})"), path + ("$filter",))
                if not keep:
                    continue
            if flatten:
                out += self.concat(template["$concat"], local, path + ("$return", "$concat"))
            else:
                resolved = self.value(template, local, path + ("$return",))
                out.append(None if resolved is _UNDEFINED else resolved)
        return out

    def conditional(self, value: dict[Any, Any], ctx: Mapping[str, Any], path: Path) -> Any:
        cond = self.value(value["$if"], ctx, path + ("$if",))
        if not isinstance(cond, bool):
            raise self.fail(TemplateError("Value of $if key must be (or resolve to) a boolean "
                                          f"(got {js.typeof(cond)})"), path + ("$if",))
        key = "$then" if cond else "$else"
        if key not in value:
            return _UNDEFINED
        return self.value(value[key], ctx, path + (key,))


def resolve(value: Any, context: Mapping[str, Any],
            on_error: Callable[[TemplateError, Path], Exception], path: Path = ()) -> Any:
    """Resolve every template in plain YAML data; `on_error` turns a failure at `path` into an exception."""
    try:
        _check(value)
    except TemplateError as exc:
        raise on_error(exc, path) from None
    except RecursionError:  # _check walks the data first, so it is the first to meet a deep nesting
        raise on_error(TemplateError("template nested too deeply"), path) from None
    try:
        resolved = _Resolver(on_error).value(value, context, path)
    except RecursionError:
        raise on_error(TemplateError("template nested too deeply"), path) from None
    return None if resolved is _UNDEFINED else resolved

