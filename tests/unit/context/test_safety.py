"""farm/context/safety.py: every way a crafted manifest could escape, create special files or fill a disk."""

from __future__ import annotations

import stat

import pytest

from farm.context import ContextManifest, Limits, ManifestEntry
from farm.context.manifest import EXEC_MODE, FILE_MODE, SYMLINK_MODE
from farm.context.safety import check_digest, check_manifest, symlink_stays_inside
from farm.errors import ContextError

H = "ab" * 32


def f(path: str, size: int = 1, mode: int = FILE_MODE, sha: str | None = H) -> ManifestEntry:
    return ManifestEntry(path, mode, size, sha)


def ln(path: str, target: str) -> ManifestEntry:
    return ManifestEntry(path, SYMLINK_MODE, 0, None, target)


DEFAULT = Limits()


def check(*entries: ManifestEntry, limits: Limits = DEFAULT) -> None:
    check_manifest(ContextManifest(tuple(entries)), limits, name="sha256:test")


def test_a_normal_manifest_passes() -> None:
    check(f("Dockerfile"), f("src/a.py"), f("bin/run", mode=EXEC_MODE), ln("latest", "src/a.py"),
          ln("src/up", "../Dockerfile"), ln("dangling", "not/there"), ln("dot", "."))


@pytest.mark.parametrize("path,why", [
    ("../evil", "'..'"),
    ("a/../../evil", "'..'"),
    ("a/..", "'..'"),
    ("/etc/passwd", "absolute"),
    ("//etc/passwd", "absolute"),
    ("", "empty"),
    ("./a", "normalised"),
    ("a/./b", "normalised"),
    ("a//b", "normalised"),
    ("a/", "normalised"),
    ("a\x00b", "NUL"),
    ("x" * 5000, "longer"),
])
def test_unsafe_paths_are_refused_naming_the_path(path: str, why: str) -> None:
    with pytest.raises(ContextError, match=why) as exc:
        check(f("ok"), f(path))
    assert repr(path)[:40] in str(exc.value)


@pytest.mark.parametrize("mode,why", [
    (stat.S_IFCHR | 0o666, "device file"),
    (stat.S_IFBLK | 0o660, "device file"),
    (stat.S_IFIFO | 0o644, "fifo"),
    (stat.S_IFSOCK | 0o755, "fifo or socket"),
    (stat.S_IFDIR | 0o755, "directory"),
    (stat.S_IFREG | 0o4755, "unsupported mode"),  # setuid
    (stat.S_IFREG | 0o666, "unsupported mode"),
    (0o644, "unsupported mode"),
])
def test_device_and_special_modes_are_refused(mode: int, why: str) -> None:
    with pytest.raises(ContextError, match=f"'dev/x' refused: {why}"):
        check(f("dev/x", mode=mode))


def test_path_through_a_symlink_is_refused() -> None:
    with pytest.raises(ContextError, match="'link/passwd' refused: goes through the symlink 'link'"):
        check(ln("link", "sub"), f("link/passwd"))
    with pytest.raises(ContextError, match="goes through the symlink 'a/l'"):
        check(ln("a/l", "."), f("a/l/b/c"))


def test_path_under_a_file_is_refused() -> None:
    with pytest.raises(ContextError, match="'a/b' refused: its parent 'a' is a file"):
        check(f("a"), f("a/b"))


def test_duplicates_are_refused() -> None:
    with pytest.raises(ContextError, match="'a' refused: listed twice"):
        check(f("a"), ln("a", "b"))


@pytest.mark.parametrize("target", ["/etc", "..", "../x", "a/../../x", "", "x\x00"])
def test_symlinks_that_leave_are_refused(target: str) -> None:
    with pytest.raises(ContextError, match="symlink 'l'"):
        check(ln("l", target))


def test_symlink_chains_that_climb_out_are_refused() -> None:
    # each link alone looks inside; x/y/t resolves through x/y/s to the root's parent
    with pytest.raises(ContextError, match="symlink 'x/y/t'"):
        check(ln("x/y/s", "../../z"), ln("x/y/t", "s/../.."))
    assert not symlink_stays_inside("b", "a", {"a": "/"})


def test_symlink_loops_are_refused() -> None:
    with pytest.raises(ContextError, match="looping"):
        check(ln("a", "b"), ln("b", "a"))


def test_symlink_resolution() -> None:
    links = {"d/up": ".."}
    assert symlink_stays_inside("d/x", "up/y", links)
    assert not symlink_stays_inside("d/x", "up/../..", links)
    assert symlink_stays_inside("a/b/c", "../../d", {})
    assert not symlink_stays_inside("a/b/c", "../../../d", {})


@pytest.mark.parametrize("entry", [
    ManifestEntry("a", FILE_MODE, 1, None),
    ManifestEntry("a", FILE_MODE, 1, "../../etc/passwd"),
    ManifestEntry("a", FILE_MODE, 1, "AB" * 32),
    ManifestEntry("a", FILE_MODE, -1, H),
    ManifestEntry("a", FILE_MODE, 1, H, "target"),
    ManifestEntry("a", SYMLINK_MODE, 0, H, "b"),
    ManifestEntry("a", SYMLINK_MODE, 0, None, None),
])
def test_inconsistent_entries_are_refused(entry: ManifestEntry) -> None:
    with pytest.raises(ContextError, match="'a' refused"):
        check(entry)


def test_file_count_limit() -> None:
    with pytest.raises(ContextError, match="3 files, more than the limit of 2"):
        check(f("a"), f("b"), f("c"), limits=Limits(max_files=2))
    check(f("a"), f("b"), limits=Limits(max_files=2))


def test_byte_limit() -> None:
    with pytest.raises(ContextError, match="1001 bytes, more than the limit of 1000"):
        check(f("a", 500), f("b", 501), limits=Limits(max_bytes=1000))
    check(f("a", 500), f("b", 500), limits=Limits(max_bytes=1000))


@pytest.mark.parametrize("digest", ["sha256:" + "0" * 63, "sha512:" + H, H, "sha256:../../x", "sha256:" + H + "/"])
def test_context_digests_are_checked(digest: str) -> None:
    with pytest.raises(ContextError, match="not a context digest"):
        check_digest(digest)
    assert check_digest("sha256:" + H) == H
