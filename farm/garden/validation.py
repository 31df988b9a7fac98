"""Turn pydantic validation errors into ConfigErrors that name file:line, field path and a fix."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from farm.errors import ConfigError
from farm.garden.loader import Doc, Path_


def suggest(word: str, options: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    opts = [o for o in options if isinstance(o, str)]
    close = difflib.get_close_matches(word, opts, n=1, cutoff=0.6)
    if not close:
        lowered = word.lower()
        close = [o for o in opts if lowered and (lowered in o.lower() or o.lower() in lowered)][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation may hold (through Optional, list, dict)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, dict, tuple):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys (aliases) a config mapping at `loc` inside `model` may have."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if not isinstance(part, str):
            continue
        nxt: list[type[BaseModel]] = []
        for cls in current:
            for name, info in cls.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_unwrap(info.annotation))
        if not nxt:
            break
        current = nxt
    return sorted({(info.alias or name) for cls in current for name, info in cls.model_fields.items()})


def _message(err: dict[str, Any], model: type[BaseModel]) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    value = err.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        return f"unknown field '{key}'" + suggest(key, keys_at(model, loc[:-1]))
    if kind == "missing":
        return "this field is required"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",") if o.strip()]
        hint = suggest(str(value), options) if isinstance(value, str) else ""
        return f"invalid value {value!r}: expected {expected}{hint}"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return f"{err['msg'].lower()} (got {_short(value)})" if "input" in err else err["msg"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_config_errors(exc: ValidationError, doc: Doc, base: Path_, model: type[BaseModel],
                     strip: int = 0) -> list[ConfigError]:
    """One ConfigError per pydantic error; `base` is where the validated mapping sits in the doc.

    `strip` drops leading loc parts that were added by the caller (e.g. a wrapper field).
    """
    out: list[ConfigError] = []
    seen: set[str] = set()
    unions: set[Path_] = set()
    for err in exc.errors():
        # Skip union-branch noise ("namespace.str" etc.): keep only locations that are config keys.
        loc = tuple(p for p in tuple(err["loc"])[strip:] if not _is_union_tag(p))
        msg = _message(dict(err), model)
        path = base + tuple(loc)
        kinds = _union_kinds(exc, tuple(err["loc"]))
        if len(kinds) > 1:
            # A value that fits no branch of a union is one problem, not one per branch.
            if path in unions:
                continue
            unions.add(path)
            listed = ", ".join(kinds[:-1]) + " or " + kinds[-1]
            msg = f"must be {listed} (got {_short(err.get('input'))})"
        key = f"{path}:{msg}"
        if key in seen:
            continue
        seen.add(key)
        out.append(doc.error(msg, path))
    return out


_TYPE_NAMES = {"string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
               "float_type": "a number", "float_parsing": "a number", "bool_type": "a boolean",
               "bool_parsing": "a boolean", "none_required": "null", "list_type": "a list",
               "dict_type": "a mapping"}


def _union_kinds(exc: ValidationError, loc: tuple[Any, ...]) -> list[str]:
    """What a union at this location accepts, when every error there is a type mismatch."""
    def key(l: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(p for p in l if not _is_union_tag(p))

    here = [e for e in exc.errors() if key(tuple(e["loc"])) == key(loc)]
    if len(here) < 2 or any(e["type"] not in _TYPE_NAMES for e in here):
        return []
    return list(dict.fromkeys(_TYPE_NAMES[e["type"]] for e in here))


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        part in ("str", "int", "bool", "float", "none", "list", "dict")
        or "[" in part or part.startswith("function-"))


class Problems:
    """Collects ConfigErrors so `validate` can report them all; loading raises the first."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, *errors: ConfigError) -> None:
        self.errors.extend(errors)
