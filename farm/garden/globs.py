"""micromatch-style glob matching with `dot: true`, as Garden's `matchGlobs` / `matchPath`
(`core/src/util/fs.ts`) applies include/exclude globs in its default `repo` git scan mode and
`version.excludeFiles` in both modes.

Supported: `*`, `?`, `**` as a whole path segment, `[...]` / `[!...]` classes, `{a,b}` and
`{1..3}` braces, the `@() +() *() ?() !()` extglobs, a leading `./`, and `!pattern` negation.
A pattern must match the whole relative path (`foo.txt` does not match `dir/foo.txt`).
"""

from __future__ import annotations

import re
from functools import lru_cache


def is_glob(pattern: str) -> bool:
    """is-glob (non-strict), which Garden uses to decide whether to expand a directory name."""
    unescaped = re.sub(r"\\.", "", pattern)
    return unescaped.startswith("!") or bool(re.search(r"[*?{}()\[\]]", unescaped))


def _expand_braces(pattern: str) -> list[str]:
    """`a{b,c{d,e}}f` -> [abf, acdf, acef]; `{1..3}` -> 1, 2, 3. Unbalanced braces stay literal."""
    depth, start = 0, -1
    for i, c in enumerate(pattern):
        if c == "\\":
            continue
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                body, head, tail = pattern[start + 1:i], pattern[:start], pattern[i + 1:]
                options = _split_options(body)
                if options is None:
                    return [head + "{" + body + "}" + t for t in _expand_braces(tail)]
                return [x for o in options for x in _expand_braces(head + o + tail)]
    return [pattern]


def _split_options(body: str) -> list[str] | None:
    rng = re.fullmatch(r"(-?\d+)\.\.(-?\d+)|([a-zA-Z])\.\.([a-zA-Z])", body)
    if rng:
        numeric = rng.group(1) is not None
        a, b = (int(rng.group(1)), int(rng.group(2))) if numeric else (ord(rng.group(3)), ord(rng.group(4)))
        values = range(a, b + 1) if a <= b else range(a, b - 1, -1)
        return [str(v) if numeric else chr(v) for v in values]
    parts, depth, cur = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    parts.append(cur)
    return parts if len(parts) > 1 else None


def _segment(seg: str) -> str:
    """One path segment of a glob as a regex (no `/` inside)."""
    out, i = "", 0
    while i < len(seg):
        c = seg[i]
        if c == "\\" and i + 1 < len(seg):
            out += re.escape(seg[i + 1])
            i += 2
            continue
        if c in "@+*?!" and seg.startswith("(", i + 1):
            close = _closing(seg, i + 1)
            if close > 0:
                inner = "|".join(_segment(alt) for alt in seg[i + 2:close].split("|"))
                out += {"@": f"(?:{inner})", "+": f"(?:{inner})+", "*": f"(?:{inner})*", "?": f"(?:{inner})?",
                        "!": f"(?:(?!(?:{inner})(?:/|$))[^/]*)"}[c]
                i = close + 1
                continue
        if c == "*":
            out += "[^/]*"
            while i + 1 < len(seg) and seg[i + 1] == "*":
                i += 1
        elif c == "?":
            out += "[^/]"
        elif c == "[" and (end := seg.find("]", i + 2)) != -1:
            body = seg[i + 1:end]
            out += "[" + ("^" + body[1:] if body[:1] in "!^" else body).replace("\\", "\\\\") + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return out


def _closing(seg: str, open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(seg)):
        depth += seg[j] == "("
        depth -= seg[j] == ")"
        if depth == 0:
            return j
    return -1


def _regex(pattern: str) -> str:
    segments = pattern.split("/")
    out = ""
    for n, seg in enumerate(segments):
        last = n == len(segments) - 1
        if seg == "**":
            if len(segments) == 1:
                out += ".*"
            elif n == 0:
                out += "(?:.*/)?"
            elif last:
                out = out[:-1] + "(?:/.*)?"
            else:
                out += "(?:.*/)?"
            continue
        out += _segment(seg) + ("" if last else "/")
    return out


@lru_cache(maxsize=2048)
def _compile(pattern: str) -> re.Pattern[str]:
    pattern = pattern.removeprefix("./")
    return re.compile("^(?:" + "|".join(_regex(p) for p in _expand_braces(pattern)) + ")$")


def match_any(path: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """`micromatch([path], patterns, {dot: true}).length === 1`: a positive pattern matches and no
    `!negated` one does (only negated patterns: everything else matches)."""
    positive = [p for p in patterns if not (p.startswith("!") and not p.startswith("!("))]
    negative = [p[1:] for p in patterns if p.startswith("!") and not p.startswith("!(")]
    if any(_compile(p).match(path) for p in negative):
        return False
    return any(_compile(p).match(path) for p in positive) if positive else bool(negative)
