"""The local farm stack: start, stop and describe the real services the farm runs on."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from farm.errors import StackError
from farm.stack import _base_image, _buildkit_image, _credentials, _kaniko_image, _worker
from farm.stack._mounts import detach, mounts_under
from farm.stack._packages import PACKAGES, ensure_binaries, static_busybox
from farm.stack._process import ProcessRecord, port_free, spawn, stop, tail, wait_until
from farm.stack._services import Service, Unit, build_services, buildkit_bin, registry_password, unix_answers
from farm.stack._state import PORT_ENV, REGISTRY_USER, StackPaths, StackSettings, resolve_state_dir

SERVICES: tuple[str, ...] = ("redis", "registry", "docker", "flower", "metrics", "buildkitd", "kubernetes")
DEFAULT_SERVICES: tuple[str, ...] = ("redis", "registry", "docker", "flower", "metrics")
# started first, in SERVICES order (kubernetes pushes its pause image with docker to the registry)
NEEDS: dict[str, tuple[str, ...]] = {"flower": ("redis",), "metrics": ("redis",), "kubernetes": ("registry", "docker")}


class Stack:
    """Redis, the registry, a private dockerd, Flower (and optionally buildkitd) on 127.0.0.1,
    with all state under one directory. Only processes this stack started are ever signalled."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.paths = StackPaths(resolve_state_dir(state_dir))

    # --- public API ---------------------------------------------------------------------------

    def up(self, services: Iterable[str] | None = None) -> None:
        """Start the requested services (default: all but buildkitd); running ones are left alone."""
        wanted = self._resolve(DEFAULT_SERVICES if services is None else services)
        with self._locked():
            os.chmod(self.paths.state, 0o700)     # data and credentials below: the stack's user only
            settings = self._settings_for_up()
            settings.save(self.paths.settings)
            ensure_binaries(list(PACKAGES))
            specs = build_services(self.paths, settings)
            for name in wanted:
                self._start(specs[name])
            if self._running(specs["docker"]) and self._running(specs["registry"]):
                self._ensure_base_image(settings)
        if _worker.running(self.paths):
            self.start_worker()     # restarted if what the stack offers it changed (a new buildkitd)

    def restart(self, service: str) -> None:
        """Stop one running service and start it again (what a crash and a supervisor would do)."""
        self._resolve([service])   # a known service, or a StackError naming the known ones
        with self._locked():
            spec = build_services(self.paths, self._settings())[service]
            for unit in reversed(spec.units):
                record = ProcessRecord.read(self.paths.pidfile(unit.name))
                if record is not None:
                    stop(record, timeout=unit.stop_timeout)
                    self.paths.pidfile(unit.name).unlink(missing_ok=True)
            self._start(spec)

    def start_worker(self) -> None:
        """The stack's own worker, consuming every platform queue (idempotent)."""
        _worker.start(self.paths, self.env())

    def worker_status(self) -> str:
        return _worker.status(self.paths)

    def down(self) -> None:
        """Stop the worker, then every service this stack started, newest first, by their pidfiles."""
        if not self.paths.state.is_dir():
            return
        _worker.stop_worker(self.paths)
        with self._locked():
            specs = build_services(self.paths, self._settings())
            stuck: list[str] = []
            for name in reversed(SERVICES):
                stuck_before = len(stuck)
                for unit in reversed(specs[name].units):
                    pidfile = self.paths.pidfile(unit.name)
                    record = ProcessRecord.read(pidfile)
                    if record is not None:
                        if unit.before_stop is not None and record.alive():
                            unit.before_stop()
                        stop(record, timeout=unit.stop_timeout)
                        if record.alive():
                            stuck.append(f"{unit.name} (pid {record.pid}, log {self.paths.log(unit.name)})")
                            continue
                    pidfile.unlink(missing_ok=True)
                if len(stuck) == stuck_before:
                    try:
                        specs[name].cleanup()
                    except StackError as exc:  # stop the other services all the same
                        stuck.append(str(exc))
            if stuck:
                raise StackError(f"could not stop {', '.join(stuck)}")
            self._release_mounts()

    def status(self) -> dict[str, str]:
        """service -> "running (pid N, <addr>)" or "stopped"."""
        specs = build_services(self.paths, self._settings())
        result: dict[str, str] = {}
        for name in SERVICES:
            spec = specs[name]
            record = ProcessRecord.read(self.paths.pidfile(spec.units[-1].name))
            if record is not None and self._running(spec):
                result[name] = f"running (pid {record.pid}, {spec.address})"
            else:
                result[name] = "stopped"
        return result

    def env(self) -> dict[str, str]:
        """Shell variables that point clients at this stack (never the registry password)."""
        settings = StackSettings.load(self.paths.settings)
        if settings is None:
            raise StackError(f"no stack has been started in {self.paths.state}; run `farm stack up`")
        port = settings.redis_port
        env = {
            "FARM_STATE_DIR": str(self.paths.state),
            # Redis ACL users (farm.stack._credentials): producers, workers, and an admin URL for
            # operators; the worker swaps in its own user (FARM_WORKER_REDIS_AUTH) at start.
            "FARM_BROKER_URL": _credentials.redis_url(self.paths, port, "producer", 0),
            "FARM_RESULT_BACKEND": _credentials.redis_url(self.paths, port, "producer", 1),
            "FARM_WORKER_REDIS_AUTH": f"worker:{_credentials.redis_password(self.paths, 'worker')}",
            "FARM_REDIS_ADMIN_URL": _credentials.redis_url(self.paths, port, "admin", None),
            # Build secrets are sealed with this key pair (farm.sealing): workers read the private
            # half from the 0600 file, producers seal with the public half.
            "FARM_SEALING_KEY_FILE": str(_credentials.sealing_key_file(self.paths)),
            "FARM_SEALING_PUBLIC_KEY": _credentials.sealing_public_key(self.paths),
            "FARM_REGISTRY": settings.registry,
            "FARM_REGISTRY_USER": REGISTRY_USER,
            "DOCKER_HOST": f"unix://{self.paths.docker_socket}",
            "DOCKER_CONFIG": str(self.paths.docker_config),
            "FARM_FLOWER_URL": f"http://{_credentials.flower_auth(self.paths)}@127.0.0.1:{settings.flower_port}",
            "FARM_METRICS_URL": f"http://127.0.0.1:{settings.metrics_port}/metrics",
            "FARM_BASE_IMAGE": settings.base_image,
        }
        specs = build_services(self.paths, settings)
        if self._running(specs["buildkitd"]):
            env["BUILDKIT_HOST"] = specs["buildkitd"].address
            env["FARM_BUILDCTL"] = str(buildkit_bin("buildctl"))
        if self._running(specs["kubernetes"]):
            env["KUBECONFIG"] = str(self.paths.kubeconfig)
        marker = self.paths.state / "kaniko-image"
        if marker.is_file() and self._running(specs["registry"]):
            env["FARM_KANIKO_IMAGE"] = marker.read_text().strip()
        return env

    def buildkit_image(self) -> str:
        """`gardendev/buildkit` for cluster-buildkit in the stack's cluster (point the project's
        `utilImageRegistryDomain` at the stack's registry)."""
        with self._locked():
            settings = self._settings()
            specs = build_services(self.paths, settings)
            if not (self._running(specs["docker"]) and self._running(specs["registry"])):
                raise StackError("the BuildKit image needs the stack's docker and registry; run `farm stack up`")
            return _buildkit_image.ensure(self.paths, settings)

    def kaniko_image(self) -> str:
        """The Kaniko executor, built from source if needed and pushed to the stack's registry; from
        then on `env()` exports it as FARM_KANIKO_IMAGE (a worker then serves kaniko)."""
        with self._locked():
            settings = self._settings()
            specs = build_services(self.paths, settings)
            if not (self._running(specs["docker"]) and self._running(specs["registry"])):
                raise StackError("the Kaniko image needs the stack's docker and registry; run `farm stack up`")
            ref = _kaniko_image.ensure(self.paths, settings)
            (self.paths.state / "kaniko-image").write_text(ref + "\n")
        if _worker.running(self.paths):
            self.start_worker()     # restarted with the image in its environment
        return ref

    def base_image(self) -> str:
        """Ensure the busybox base image is in the stack registry and return its ref."""
        with self._locked():
            settings = self._settings()
            specs = build_services(self.paths, settings)
            if not (self._running(specs["docker"]) and self._running(specs["registry"])):
                raise StackError("the base image needs the stack's docker and registry; run `farm stack up`")
            return self._ensure_base_image(settings)

    # --- internals ----------------------------------------------------------------------------

    @staticmethod
    def _resolve(services: Iterable[str]) -> list[str]:
        if isinstance(services, str):
            services = [services]
        requested = set(services)
        unknown = sorted(requested - set(SERVICES))
        if unknown:
            raise StackError(f"unknown stack service {', '.join(unknown)}; known: {', '.join(SERVICES)}")
        for name in list(requested):
            requested.update(NEEDS.get(name, ()))
        return [s for s in SERVICES if s in requested]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise up/down/base_image on one state directory across processes."""
        try:
            self.paths.state.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StackError(f"cannot use state directory {self.paths.state}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _settings(self) -> StackSettings:
        return StackSettings.load(self.paths.settings) or StackSettings.from_env()

    def _settings_for_up(self) -> StackSettings:
        """Ports from the environment, unless services already run: then the ports they run on,
        and an explicit FARM_*_PORT asking for another port is an error rather than a surprise."""
        desired = StackSettings.from_env()
        recorded = StackSettings.load(self.paths.settings)
        if recorded is None or recorded == desired:
            return desired
        specs = build_services(self.paths, recorded)
        if not any(self._running(s) for s in specs.values()):
            return desired
        for service, var in PORT_ENV.items():
            if os.environ.get(var, "").strip() and desired.port(service) != recorded.port(service):
                raise StackError(f"the stack in {self.paths.state} already runs {service} on port "
                                 f"{recorded.port(service)}; run `farm stack down` before setting {var}")
        return recorded

    def _running(self, spec: Service) -> bool:
        for unit in spec.units:
            record = ProcessRecord.read(self.paths.pidfile(unit.name))
            if record is None or not record.alive():
                return False
        return True

    def _start(self, spec: Service) -> None:
        try:
            spec.prepare()
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise StackError(f"cannot prepare {spec.name}: {where}{exc.strerror or exc}") from None
        for unit in spec.units:
            self._start_unit(spec, unit)

    def _start_unit(self, spec: Service, unit: Unit) -> None:
        pidfile = self.paths.pidfile(unit.name)
        log = self.paths.log(unit.name)
        record = ProcessRecord.read(pidfile)
        if record is not None and record.alive():
            why = wait_until(unit.ready, record, unit.start_timeout)
            if why is None:
                return
            raise StackError(f"{spec.name} (pid {record.pid}) is running but not answering ({why}); "
                             f"run `farm stack down` and look at {log}")
        pidfile.unlink(missing_ok=True)
        self._claim_address(spec, unit)
        record = spawn(unit.argv, log, env=unit.env, cwd=self.paths.state, umask=unit.umask)
        record.write(pidfile)
        why = wait_until(unit.ready, record, unit.start_timeout)
        if why is None:
            return
        stop(record, timeout=5.0)
        pidfile.unlink(missing_ok=True)
        raise StackError(f"{spec.name} failed to start: {why}. Last lines of {log}:\n{tail(log)}")

    def _claim_address(self, spec: Service, unit: Unit) -> None:
        """Refuse a port or socket someone else holds; clear a stale socket file of ours."""
        if unit.tcp_port is not None and not port_free(unit.tcp_port):
            var = PORT_ENV.get(spec.name, "")
            raise StackError(f"port 127.0.0.1:{unit.tcp_port} for {spec.name} is taken by another process "
                             f"(not started by this stack); stop it or set {var} to a free port")
        if unit.unix_socket is not None and os.path.lexists(unit.unix_socket):
            if unix_answers(unit.unix_socket):
                raise StackError(f"{unit.unix_socket} for {spec.name} is served by a process this stack "
                                 f"did not start; stop it first")
            unit.unix_socket.unlink()

    def _release_mounts(self) -> None:
        """With dockerd and containerd stopped, detach whatever they left mounted in our dirs and
        drop the short-lived run directory. A daemon still answering on our sockets was not started
        by this stack (or lost its pidfile): its mounts are left alone and the user is told."""
        for sock in (self.paths.docker_socket, self.paths.containerd_socket, self.paths.buildkit_socket):
            if unix_answers(sock):
                raise StackError(f"{sock} is still served by a process this stack has no pidfile for; "
                                 "stop it by hand, then run `farm stack down` again")
        left = detach(mounts_under(self.paths.docker_dir, self.paths.buildkit_dir, self.paths.run))
        if left:
            raise StackError(f"could not unmount {', '.join(left)}")
        shutil.rmtree(self.paths.run, ignore_errors=True)

    def _ensure_base_image(self, settings: StackSettings) -> str:
        busybox = static_busybox()
        if busybox is None:
            ensure_binaries(["busybox"])
            busybox = static_busybox()
        if busybox is None:
            raise StackError("no statically linked busybox found; install busybox-static")
        return _base_image.ensure(settings, registry_password(self.paths), self.paths.docker_socket, busybox)
