"""Whether a worker can build a foreign platform (workers/capabilities.py): pure rules and binfmt."""

from __future__ import annotations

from pathlib import Path

from farm.dockerfile import steps
from workers.capabilities import emulation, foreign_reason

API = 'FROM scratch\nARG GREETING\nLABEL a="${GREETING}"\nCOPY hello.txt /srv/\n'
FILES = "FROM scratch\nCOPY a /a\nADD b /b\n"
RUNS = "FROM busybox\nRUN echo hi\n"


def test_steps() -> None:
    assert steps(API) == ["FROM scratch", "ARG", "LABEL", "COPY"]
    assert steps("# c\nFROM --platform=$X busybox AS b\nRUN a \\\n  b\n") == ["FROM image", "RUN"]


def test_own_platform_and_unknown_steps_always_build() -> None:
    assert foreign_reason("local-docker", "linux/amd64", "linux/amd64", steps(RUNS), False) is None
    assert foreign_reason("local-docker", "linux/arm64", "linux/amd64", [], False) is None


def test_local_docker_foreign() -> None:
    assert foreign_reason("local-docker", "linux/arm64", "linux/amd64", steps(FILES), False) is None
    why = foreign_reason("local-docker", "linux/arm64", "linux/amd64", steps(API), True)
    assert why is not None and "commits ARG, LABEL" in why and "waits for a linux/arm64 worker" in why
    why = foreign_reason("local-docker", "linux/arm64", "linux/amd64", steps(RUNS), False)
    assert why is not None and "no emulation for arm64" in why
    assert foreign_reason("local-docker", "linux/arm64", "linux/amd64", steps(RUNS), True) is None


def test_buildkit_foreign_needs_emulation_only_to_run() -> None:
    assert foreign_reason("cluster-buildkit", "linux/arm64", "linux/amd64", steps(API), False) is None
    why = foreign_reason("cluster-buildkit", "linux/arm64", "linux/amd64", steps(RUNS), False)
    assert why is not None and "RUN steps need emulation for arm64" in why


def test_emulation_reads_binfmt(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64-static\n")
    (tmp_path / "qemu-s390x").write_text("disabled\n")
    assert emulation("linux/arm64", tmp_path) and not emulation("linux/s390x", tmp_path)
    assert not emulation("linux/ppc64le", tmp_path)


def test_kaniko_runs_on_a_node_of_the_platform() -> None:
    assert foreign_reason("kaniko", "linux/arm64", "linux/amd64", steps(RUNS), False) is None


def test_a_worker_without_an_executor_image_does_not_offer_kaniko() -> None:
    from farm.settings import Settings
    from workers.capabilities import missing

    assert "no executor image" in (missing("kaniko", Settings(kaniko_image="")) or "")
    assert "no KUBECONFIG" in (missing("kaniko", Settings(kaniko_image="r/x:1", runtime="kubernetes",
                                                          kubeconfig="")) or "")
