"""The config part of a container Build's version, byte for byte as Garden 0.14.20 computes it
(`getActionConfigVersion` in `core/src/actions/base.ts`).

Garden hashes the action config *after* Joi validation (`core/src/graph/actions.ts`, then the
container Build spec schema): defaults filled in, dependencies parsed into `{kind, name}`, values
converted (`"600"` -> 600, `"true"` -> true), secrets as `"***"`, nulls dropped from sparse arrays.
It then leaves out the non-versioned keys, applies `version.excludeFields` and `excludeValues`
with Garden's own walk (quirks kept, because they change the hash), and hashes the sorted JSON:

    configVersion = "v-" + sha256(json-stable-stringify(config))[:10]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from farm.garden.jsvalues import key_string, stringify

NON_VERSIONED = ("internal", "source", "include", "exclude", "description", "disabled", "variables",
                 "varfiles", "version")
EXCLUDED_MARK = "!!!GARDEN-EXCLUDED!!!"
DEFAULT_BUILD_TIMEOUT = 600
ACTION_KINDS = ("Build", "Deploy", "Run", "Test")
LOG_LEVELS = ("error", "warn", "info", "verbose", "debug", "silly", "silent")
_IDENTIFIER = re.compile(r"^(?![0-9]+$)(?!.*-$)(?!-)[a-z0-9-]{1,63}$")
_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$", re.IGNORECASE)


class ActionConfigError(ValueError):
    """A value Garden's schema refuses; `field` is its dotted path in the action config."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


def parse_action_reference(ref: Any, field: str) -> dict[str, str]:
    """`build.api` / `{kind: Build, name: api}` -> {kind, name} (`parseActionReference`):
    strings are lowercased, objects keep only kind and name."""
    if isinstance(ref, str):
        parts = ref.lower().split(".")
        if len(parts) == 2 and parts[0] in ("build", "deploy", "run", "test") and _IDENTIFIER.match(parts[1]):
            return {"kind": parts[0].title(), "name": parts[1]}
    elif isinstance(ref, Mapping):
        kind, name = ref.get("kind"), ref.get("name")
        if kind in ACTION_KINDS and isinstance(name, str) and _IDENTIFIER.match(name):
            return {"kind": kind, "name": name}
    raise ActionConfigError(f"invalid action reference {ref!r}: use <kind>.<name> (e.g. build.api) or "
                            "{kind: Build, name: api}", field)


def reference_key(ref: Any, field: str) -> str:
    """`build.api`: the key Garden compares dependencies by."""
    parsed = parse_action_reference(ref, field)
    return f"{parsed['kind'].lower()}.{parsed['name']}"


def _number(value: Any, field: str, minimum: int | None = None) -> Any:
    if isinstance(value, str) and _NUMERIC.match(value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ActionConfigError("must be a number", field)
    if isinstance(value, float):
        if not value.is_integer():
            raise ActionConfigError("must be an integer", field)
        value = int(value)
    if minimum is not None and value < minimum:
        raise ActionConfigError(f"must be greater than or equal to {minimum}", field)
    return value


def _boolean(value: Any, field: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ActionConfigError("must be a boolean", field)
    return value


def _sparse(value: Any, field: str) -> list[Any]:
    """Joi `sparseArray`: null entries are dropped."""
    if not isinstance(value, list):
        raise ActionConfigError("must be an array", field)
    return [v for v in value if v is not None]


def _copy_from(item: Any, field: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise ActionConfigError("must be an object", field)
    out = dict(item)
    if "targetPath" not in out and "sourcePath" in out:
        out["targetPath"] = out["sourcePath"]
    return out


def _spec(spec: Any) -> dict[str, Any]:
    """The container Build spec after `containerBuildSpecSchema` (`core/src/plugins/container/config.ts`)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ActionConfigError("must be an object", "spec")
    out = dict(spec)
    out.setdefault("buildArgs", {})
    out.setdefault("dockerfile", "Dockerfile")
    for key in ("extraFlags", "platforms"):
        if key in out:
            out[key] = _sparse(out[key], f"spec.{key}")
    for key in ("localId", "publishId"):
        if out.get(key, "") in (None, False):  # `.allow(false, null).empty([false, null])`
            del out[key]
    if isinstance(out.get("secrets"), Mapping):
        out["secrets"] = {k: "***" for k in out["secrets"]}  # Secret.toJSON() redacts
    return out


def validated_build_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A container Build's resolved config as Garden holds it after schema validation."""
    out = {k: v for k, v in raw.items() if v is not None or k in ("spec",)}
    if out.setdefault("apiVersion", "garden.io/v0") != "garden.io/v0":
        raise ActionConfigError('must be [garden.io/v0] (the only apiVersion of an action config)',
                                "apiVersion")
    out["dependencies"] = [parse_action_reference(d, f"dependencies[{i}]")
                           for i, d in enumerate(_sparse(out.get("dependencies", []), "dependencies"))]
    out["timeout"] = _number(out.get("timeout", DEFAULT_BUILD_TIMEOUT), "timeout", minimum=1)
    out["allowPublish"] = _boolean(out.get("allowPublish", True), "allowPublish")
    out["buildAtSource"] = _boolean(out.get("buildAtSource", False), "buildAtSource")
    out["copyFrom"] = [_copy_from(c, f"copyFrom[{i}]")
                       for i, c in enumerate(_sparse(out.get("copyFrom", []), "copyFrom"))]
    if "environments" in out:
        out["environments"] = _sparse(out["environments"], "environments")
    if "logLevel" in out and out["logLevel"] not in LOG_LEVELS:
        raise ActionConfigError(f"must be one of [{', '.join(LOG_LEVELS)}]", "logLevel")
    out["spec"] = _spec(out.get("spec"))
    return out


# --- Garden's version walk (`replaceExcludeValues`) ------------------------------------------------

PathPart = str | int


def _deep_filter(value: Any, keep: Callable[[list[PathPart]], bool], path: list[PathPart]) -> Any:
    """lodash-style deepFilter: list items are filtered first, then walked with their *new* indices."""
    if isinstance(value, list):
        kept = [v for i, v in enumerate(value) if keep(path + [i])]
        return [_deep_filter(v, keep, path + [i]) for i, v in enumerate(kept)]
    if isinstance(value, Mapping):
        return {k: _deep_filter(v, keep, path + [key_string(k)]) for k, v in value.items()
                if keep(path + [key_string(k)])}
    return value


def _deep_map(value: Any, fn: Callable[[Any, list[PathPart]], Any], path: list[PathPart]) -> Any:
    if isinstance(value, list):
        return [_deep_map(v, fn, path + [i]) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _deep_map(v, fn, path + [key_string(k)]) for k, v in value.items()}
    return fn(value, path)


def _same(a: PathPart, b: Any) -> bool:
    return type(a) is type(b) and a == b  # JavaScript `!==`: the index 0 is not the key "0"


def _excluded_field(exclude_fields: Sequence[Sequence[Any]]) -> Callable[[list[PathPart]], bool]:
    def keep(path: list[PathPart]) -> bool:
        for exclude in exclude_fields:
            if len(path) < len(exclude):
                break  # Garden stops at the first longer exclude path (QUIRK kept: it changes the hash)
            if all(i < len(exclude) and (_same(p, exclude[i]) or exclude[i] == "*")
                   for i, p in enumerate(path)):
                return False
        return True
    return keep


def _js_regex(pattern: str) -> re.Pattern[str]:
    """A JavaScript RegExp source as a Python pattern (named groups are the one syntax difference
    users meet in practice)."""
    return re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern))


def replace_exclude_values(config: Mapping[str, Any], exclude_fields: Sequence[Sequence[Any]],
                           exclude_values: Sequence[str]) -> Any:
    """The config minus non-versioned keys and excluded fields, excluded values replaced."""
    out: Any = {k: v for k, v in config.items() if k not in NON_VERSIONED}
    if exclude_fields:
        out = _deep_filter(out, _excluded_field(exclude_fields), [])
    if not exclude_values:
        return out
    regexes = [_js_regex(v) for v in exclude_values]
    dotted = [".".join(key_string(p) for p in f) for f in exclude_fields]

    def replace(value: Any, path: list[PathPart]) -> Any:
        if not isinstance(value, str):
            return value
        if ".".join(str(p) for p in path if isinstance(p, str)) in dotted:
            return EXCLUDED_MARK
        for rx in regexes:
            if rx.search(value):
                return rx.sub(EXCLUDED_MARK, value)  # only the first pattern that matches applies
        return value
    return _deep_map(out, replace, [])


def config_version(config: Mapping[str, Any], exclude_fields: Sequence[Sequence[Any]] = (),
                   exclude_values: Sequence[str] = ()) -> str:
    """`v-` + the first 10 hex digits of sha256 over Garden's stable JSON of the config."""
    text = stringify(replace_exclude_values(config, exclude_fields, exclude_values), sort_keys=True)
    return "v-" + hashlib.sha256(text.encode()).hexdigest()[:10]
