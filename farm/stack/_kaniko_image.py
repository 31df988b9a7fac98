"""The Kaniko executor image, in the stack's registry: the root filesystem scripts/install-kaniko.sh
stages under ~/.cache/farm/kaniko-<version>/rootfs (kaniko/executor, kaniko/ssl/certs, kaniko/.docker,
etc/nsswitch.conf, workspace/), imported on the stack's engine with kaniko's own image settings and
pushed, so a Pod on the stack's node (or a container on its engine) can run the executor.
"""

from __future__ import annotations

import os
from pathlib import Path

from farm.errors import StackError
from farm.stack._go_tools import cache_dir, run_install_script
from farm.stack._pushed_image import dir_tar, ensure_pushed
from farm.stack._services import registry_password
from farm.stack._state import StackPaths, StackSettings

KANIKO_VERSION = "v1.25.16"
KANIKO_REPO = "farm/kaniko-executor"
# What kaniko's deploy/Dockerfile sets on its executor image.
CHANGES = (
    'ENTRYPOINT ["/kaniko/executor"]',
    "ENV HOME=/root",
    "ENV USER=root",
    "ENV PATH=/usr/local/bin:/kaniko",
    "ENV SSL_CERT_DIR=/kaniko/ssl/certs",
    "ENV DOCKER_CONFIG=/kaniko/.docker/",
    "WORKDIR /workspace",
)


def kaniko_dir(version: str = KANIKO_VERSION) -> Path:
    return cache_dir() / f"kaniko-{version}"


def rootfs(version: str = KANIKO_VERSION) -> Path:
    return kaniko_dir(version) / "rootfs"


def ensure_built(paths: StackPaths) -> Path:
    """The staged rootfs, building the executor first if this machine has not yet."""
    executor = rootfs() / "kaniko" / "executor"
    if not os.access(executor, os.X_OK):
        run_install_script("install-kaniko.sh", paths.log("install-kaniko"))
    if not os.access(executor, os.X_OK):
        raise StackError(f"scripts/install-kaniko.sh ran but {executor} is missing")
    return rootfs()


def ensure(paths: StackPaths, settings: StackSettings) -> str:
    """``<registry>/farm/kaniko-executor:<version>``, made and pushed unless the registry has it."""
    root = ensure_built(paths)
    return ensure_pushed(settings, registry_password(paths), paths.docker_socket, KANIKO_REPO, KANIKO_VERSION,
                         lambda: dir_tar(root), CHANGES)
