"""farm/context/safety.py pinned at its edges: `.` and `//` in link targets, empty files, exact
limits, nested symlinked directories (issue 19: each case here kills a mutant the other tests let live).

Expected values are literals written from the rules, never the module's own constants.
"""

from __future__ import annotations

import pytest

from farm.context import ContextManifest, Limits, ManifestEntry
from farm.context.safety import check_digest, check_manifest, check_relpath, is_blob_hex, symlink_stays_inside
from farm.errors import ContextError

H = "0123456789abcdef" * 4
FILE, EXEC, LINK = 0o100644, 0o100755, 0o120000


def f(path: str, size: int = 1, mode: int = FILE) -> ManifestEntry:
    return ManifestEntry(path, mode, size, H)


def ln(path: str, target: str) -> ManifestEntry:
    return ManifestEntry(path, LINK, 0, None, target)


def check(*entries: ManifestEntry, limits: Limits | None = None) -> None:
    check_manifest(ContextManifest(tuple(entries)), limits or Limits(), name="sha256:pin")


# --- `.`, `//` and `..` inside link targets -------------------------------------------------------

@pytest.mark.parametrize("path,target,inside", [
    ("s", "./..", False),            # `.` is skipped, not a directory to climb back out of
    ("s", ".//..", False),
    ("s", "a/./../..", False),
    ("s", "a//../..", False),        # `//` is one separator: a/ then .. then .. leaves
    ("a/s", "./..", True),           # from a/ up to the root: still inside
    ("a/s", ".//..//.", True),
    ("a/s", "./../..", False),
    ("a/s", "..//b", True),
    ("s", ".", True),
    ("s", "./", True),
    ("s", "a/b/../../..", False),
    ("s", "a/b/../..", True),
    ("a/b/s", "../../x", True),
    ("a/b/s", "../../../x", False),
])
def test_dot_and_double_slash_in_targets(path: str, target: str, inside: bool) -> None:
    assert symlink_stays_inside(path, target, {}) is inside


@pytest.mark.parametrize("target", ["./..", ".//..", "a//../.."])
def test_a_manifest_with_a_dotted_target_that_leaves_is_refused(target: str) -> None:
    with pytest.raises(ContextError, match=r"symlink 's' -> .* refused: absolute, looping or pointing outside"):
        check(ln("s", target))


@pytest.mark.parametrize("target", ["", "/", "/x", "a\x00b"])
def test_empty_absolute_and_nul_targets(target: str) -> None:
    assert symlink_stays_inside("s", target, {}) is False


def test_an_absolute_hop_leaves_the_root() -> None:
    assert symlink_stays_inside("s", "t/x", {"t": "/etc"}) is False
    assert symlink_stays_inside("s", "t/x", {"t": "etc"}) is True


def test_a_hop_continues_from_the_link_directory() -> None:
    # d/up -> .. resolves to the root, so d/x -> up/y is y at the root; one more .. leaves
    links = {"d/up": ".."}
    assert symlink_stays_inside("d/x", "up/y", links) is True
    assert symlink_stays_inside("d/x", "up/..", links) is False
    assert symlink_stays_inside("d/e/x", "../up/y", links) is True


# --- exact hop limit: 40 hops like the kernel ------------------------------------------------------

def chain(n: int) -> dict[str, str]:
    """l0 -> l1 -> ... -> l<n>, l<n> a plain name: resolving l0 takes n hops."""
    return {f"l{i}": f"l{i + 1}" for i in range(n)}


def test_forty_hops_are_allowed_forty_one_are_not() -> None:
    assert symlink_stays_inside("s", "l0", chain(40)) is True
    assert symlink_stays_inside("s", "l0", chain(41)) is False


def test_a_manifest_chain_at_the_hop_limit() -> None:
    # s -> l0 costs 40 hops through l0..l39 (l40 is a file); l0 itself resolves in 39
    links = [ln(f"l{i}", f"l{i + 1}") for i in range(40)]
    check(*links, f("l40"), ln("s", "l0"))
    with pytest.raises(ContextError, match="symlink 's'"):
        check(*links, ln("l40", "l41"), f("l41"), ln("s", "l0"))


# --- exact length limit ------------------------------------------------------------------------------

def test_a_path_of_4096_characters_passes_4097_is_refused() -> None:
    check_relpath("x" * 4096, where="w")
    check_relpath("/".join(["y" * 255] * 16), where="w")  # 16*255 + 15 = 4095
    with pytest.raises(ContextError, match=r"^w: path 'xxx.*' refused: longer than 4096 characters$"):
        check_relpath("x" * 4097, where="w")


@pytest.mark.parametrize("path,why", [
    ("", "empty path"),
    ("a\x00", "contains a NUL byte"),
    ("/a", "absolute path"),
    ("a/../b", "contains '..'"),
    ("..", "contains '..'"),
    ("a/.", "not a normalised relative path (empty or '.' component)"),
    (".", "not a normalised relative path (empty or '.' component)"),
    ("a//b", "not a normalised relative path (empty or '.' component)"),
])
def test_relpath_messages(path: str, why: str) -> None:
    with pytest.raises(ContextError) as exc:
        check_relpath(path, where="context sha256:pin")
    assert str(exc.value) == f"context sha256:pin: path {path!r} refused: {why}"


@pytest.mark.parametrize("path", ["a", "a/b", ".a", "a/.b", "a..b", "..a", "a/b.."])
def test_dotted_names_that_are_not_dot_components_pass(path: str) -> None:
    check_relpath(path, where="w")


# --- empty files, sizes and limits -------------------------------------------------------------------

def test_a_zero_byte_file_is_accepted() -> None:
    check(f("empty", size=0))
    check(f("empty", size=0, mode=EXEC), limits=Limits(max_files=1, max_bytes=0))


def test_limits_are_inclusive() -> None:
    check(f("a", 3), f("b", 4), limits=Limits(max_files=2, max_bytes=7))
    with pytest.raises(ContextError, match=r"^context sha256:pin: 8 bytes, more than the limit of 7$"):
        check(f("a", 4), f("b", 4), limits=Limits(max_files=2, max_bytes=7))
    with pytest.raises(ContextError, match=r"^context sha256:pin: 3 files, more than the limit of 2$"):
        check(f("a", 0), f("b", 0), ln("c", "a"), limits=Limits(max_files=2, max_bytes=7))


def test_symlinks_do_not_count_as_bytes() -> None:
    check(f("a", 5), ln("b", "a"), limits=Limits(max_bytes=5))


def test_default_limits() -> None:
    assert Limits() == Limits(max_files=100_000, max_bytes=10_737_418_240)


# --- nested symlinked directories: every parent is checked ------------------------------------------

@pytest.mark.parametrize("link,path", [
    ("src/link", "src/link/a.py"),
    ("src/pkg/link", "src/pkg/link/a.py"),
    ("a/b/c", "a/b/c/d/e"),
    ("top", "top/a/b/c"),
])
def test_a_path_through_a_nested_symlink_is_refused(link: str, path: str) -> None:
    with pytest.raises(ContextError) as exc:
        check(f("src/other.py"), ln(link, "."), f(path))
    assert str(exc.value) == f"context sha256:pin: path {path!r} refused: goes through the symlink {link!r}"


def test_a_path_under_a_nested_file_is_refused() -> None:
    with pytest.raises(ContextError) as exc:
        check(f("a/b/c"), f("a/b/c/d"))
    assert str(exc.value) == "context sha256:pin: path 'a/b/c/d' refused: its parent 'a/b/c' is a file"


def test_siblings_sharing_a_prefix_are_fine() -> None:
    check(f("a/b"), f("a/bc"), f("ab/c"), ln("a/l", "b"), f("a/lx"))


# --- entry shapes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry,why", [
    (ManifestEntry("a", LINK, 0, H, "b"), "symlink entry without a target"),
    (ManifestEntry("a", LINK, 0, None, None), "symlink entry without a target"),
    (ManifestEntry("a", FILE, 0, None), "file entry needs a sha256 and a size"),
    (ManifestEntry("a", EXEC, 0, H, "t"), "file entry needs a sha256 and a size"),
    (ManifestEntry("a", FILE, -1, H), "file entry needs a sha256 and a size"),
    (ManifestEntry("a", 0o40755, 0, None), "directory entry (mode 40755); directories are implied by file paths"),
    (ManifestEntry("a", 0o20666, 0, None), "device file (mode 20666)"),
    (ManifestEntry("a", 0o60660, 0, None), "device file (mode 60660)"),
    (ManifestEntry("a", 0o10644, 0, None), "fifo or socket (mode 10644)"),
    (ManifestEntry("a", 0o140755, 0, None), "fifo or socket (mode 140755)"),
    (ManifestEntry("a", 0o100664, 0, H), "unsupported mode 100664 (only 100644, 100755 and 120000)"),
])
def test_entry_messages(entry: ManifestEntry, why: str) -> None:
    with pytest.raises(ContextError) as exc:
        check(entry)
    assert str(exc.value) == f"context sha256:pin: path 'a' refused: {why}"


def test_messages_name_the_context() -> None:
    with pytest.raises(ContextError) as exc:
        check(f("a"), f("a"))
    assert str(exc.value) == "context sha256:pin: path 'a' refused: listed twice"
    with pytest.raises(ContextError) as exc:
        check(ln("l", "../x"))
    assert str(exc.value) == ("context sha256:pin: symlink 'l' -> '../x' refused: absolute, looping or "
                              "pointing outside the context")


@pytest.mark.parametrize("value,ok", [
    (H, True), ("f" * 64, True), ("0" * 64, True), ("F" * 64, False), ("0" * 63, False), ("0" * 65, False),
    ("g" + "0" * 63, False), ("X" * 64, False), ("X" + "0" * 63, False), (None, False), (123, False),
    (H + "\n", False),
])
def test_blob_hex(value: object, ok: bool) -> None:
    assert is_blob_hex(value) is ok


def test_check_digest_message() -> None:
    assert check_digest("sha256:" + H) == H
    with pytest.raises(ContextError) as exc:
        check_digest("sha256:xyz")
    assert str(exc.value) == "'sha256:xyz' is not a context digest (expected sha256:<64 hex digits>)"
    with pytest.raises(ContextError):
        check_digest("SHA256:" + H)
    with pytest.raises(ContextError):
        check_digest(None)  # type: ignore[arg-type]


def test_a_bad_path_in_a_manifest_names_the_context() -> None:
    with pytest.raises(ContextError) as exc:
        check(f("ok"), f("a/../b"))
    assert str(exc.value) == "context sha256:pin: path 'a/../b' refused: contains '..'"
