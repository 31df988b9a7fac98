"""The images a Dockerfile pulls: `FROM` lines (and `COPY --from=<image>`), with ARG defaults and
build args substituted; `scratch` and the names of earlier stages are not images (pure). And its
steps, for a worker to tell whether it can build them for a foreign platform."""

from __future__ import annotations

import re
from collections.abc import Mapping

_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-+])?(?P<word>[^}]*)\}|"
                  r"(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*(\S)", re.IGNORECASE)


def _lines(text: str) -> list[str]:
    """Logical instructions: comments dropped, continuation lines joined."""
    escape = "\\"
    out: list[str] = []
    current = ""
    for i, raw in enumerate(text.splitlines()):
        if i == 0 and (m := _DIRECTIVE.match(raw.strip())):
            escape = m.group(1)
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith(escape):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            out.append(current.strip())
        current = ""
    if current.strip():
        out.append(current.strip())
    return out


def substitute(word: str, values: Mapping[str, str]) -> str:
    """`$X`, `${X}`, `${X:-default}`, `${X:+alt}` as Dockerfile ARG substitution does."""
    def one(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("plain")
        value = values.get(name)
        op = m.group("op") or ""
        if op.endswith("-"):
            return value if value else substitute(m.group("word"), values)
        if op.endswith("+"):
            return substitute(m.group("word"), values) if value else ""
        return value or ""
    return _VAR.sub(one, word)


def base_images(text: str, build_args: Mapping[str, str | None] | None = None) -> list[str]:
    """The external images a Dockerfile reads, in order, each once."""
    args = {k: v for k, v in (build_args or {}).items() if v is not None}
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    seen_from = False
    images: list[str] = []

    def add(image: str) -> None:
        if image and image.lower() != "scratch" and image.lower() not in stages and image not in images \
                and not image.isdigit():
            images.append(image)

    for line in _lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not seen_from:
            for item in rest.split():
                name, eq, default = item.partition("=")
                value = args.get(name, substitute(default.strip("\"'"), global_args) if eq else None)
                if value is not None:
                    global_args[name] = value
        elif keyword == "FROM":
            seen_from = True
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                continue
            add(substitute(words[0], global_args))
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
        elif keyword in ("COPY", "RUN"):
            for flag in re.findall(r"--(?:from|mount=[^ ]*?\bfrom)=([^\s,]+)", rest):
                add(substitute(flag, global_args))
    return images


def steps(text: str) -> list[str]:
    """The instructions' keywords in order; a FROM as `FROM scratch` or `FROM image` (what a worker
    needs to know: does a foreign-platform build run anything, or start from nothing?)."""
    out = []
    for line in _lines(text):
        keyword = line.partition(" ")[0].upper()
        if keyword == "FROM":
            words = [w for w in line.split()[1:] if not w.startswith("--")]
            out.append("FROM scratch" if words and words[0].lower() == "scratch" else "FROM image")
        else:
            out.append(keyword)
    return out
