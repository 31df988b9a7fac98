"""Malformed projects, named (each defect the hardening issue found) and generated (a seeded fuzzer
over a sound project): `farm config validate` and `farm build` must agree, and every refusal is
exit 2 with one line naming file:line and field, no traceback, and nothing uploaded or enqueued.

`farm build` runs against a broker and a registry on a closed port: a build that got past its
checks would fail there with exit 1, so exit 2 proves it stopped before sending anything; the
context store (a temporary directory) must stay empty.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from farm.cli import cli
from farm.plan import SUPPORTED_MODES
from tests.unit.garden.helpers import write

PROJECT = """\
apiVersion: garden.io/v1
kind: Project
name: demo
defaultEnvironment: dev
environments:
  - name: dev
variables:
  greeting: hello
providers:
  - name: kubernetes
    context: ctx
    buildMode: local-docker
    deploymentRegistry:
      hostname: 127.0.0.1
      port: 1
      namespace: demo
      insecure: true
"""
BUILD = """\
kind: Build
type: container
name: api
timeout: 300
spec:
  dockerfile: Dockerfile
  platforms: [linux/amd64]
  buildArgs:
    GREETING: ${var.greeting}
"""
DOCKERFILE = "FROM scratch\nCOPY hello.txt /\n"
ERROR = re.compile(r"^error: (?P<file>\S+\.ya?ml):(?P<line>\d+)(?: (?P<field>\S+))?: (?P<msg>.+)$")


def project(tmp_path: Path, project_text: str = PROJECT, build_text: str = BUILD,
            extra: dict[str, str] | None = None) -> Path:
    root = tmp_path / "p"
    write(root, {"project.garden.yml": project_text, "api/garden.yml": build_text,
                 "api/Dockerfile": DOCKERFILE, "api/hello.txt": "hi\n", **(extra or {})})
    return root


def farm(tmp_path: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    (tmp_path / "docker").mkdir(exist_ok=True)
    base = {"FARM_BROKER_URL": "redis://127.0.0.1:1/0", "FARM_RESULT_BACKEND": "redis://127.0.0.1:1/1",
            "FARM_CONTEXT_STORE": f"file://{store}", "DOCKER_CONFIG": str(tmp_path / "docker"),
            "FARM_REGISTRY_TIMEOUT": "2", "FARM_DEBUG": ""}
    return CliRunner().invoke(cli, list(args), env={**base, **(env or {})})


def refused(tmp_path: Path, root: Path, env: dict[str, str] | None = None) -> list[re.Match[str]]:
    """Run validate and build; both exit 2 with file:line errors and nothing sent. The errors."""
    validate = farm(tmp_path, "config", "validate", "--project", str(root), env=env)
    build = farm(tmp_path, "build", "--project", str(root), "--no-wait", env=env)
    for res in (validate, build):
        assert "Traceback" not in res.output and "internal error" not in res.output, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit), res.output
        assert res.exit_code == 2, res.output
    assert not any((tmp_path / "store").rglob("*")), "something was uploaded"
    lines = [line for line in build.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, build.output                # one defect: one line
    errors = [ERROR.match(line) for line in validate.output.splitlines() if line.startswith("error: ")]
    assert errors and all(errors), validate.output
    assert lines[0] in validate.output                  # validate reports what build refuses
    return [e for e in errors if e]


def test_the_sound_project_passes(tmp_path: Path) -> None:
    res = farm(tmp_path, "config", "validate", "--project", str(project(tmp_path)))
    assert res.exit_code == 0, res.output


# (name, project text, build text, extra files, env, field expected, words of the message)
Case = tuple[str, str, str, dict[str, str], dict[str, str], str, str]
BIG = "x" * (8 * 1024 * 1024)
CASES: list[Case] = [
    ("undefined defaultEnvironment", PROJECT.replace("defaultEnvironment: dev", "defaultEnvironment: prod"),
     BUILD, {}, {}, "defaultEnvironment", "environment 'prod' is not defined"),
    ("no deploymentRegistry", re.sub(r"    deploymentRegistry:\n(      .*\n)+", "", PROJECT), BUILD, {}, {},
     "providers[0].deploymentRegistry", "needs a deploymentRegistry"),
    ("huge port", PROJECT.replace("port: 1", "port: 99999999999999999999"), BUILD, {}, {},
     "providers[0].deploymentRegistry.port", "not a TCP port"),
    ("negative port", PROJECT.replace("port: 1", "port: -1"), BUILD, {}, {},
     "providers[0].deploymentRegistry.port", "not a TCP port"),
    ("hostname with @ and space", PROJECT.replace("hostname: 127.0.0.1", "hostname: a/b:c@d e"), BUILD, {}, {},
     "providers[0].deploymentRegistry.hostname", "not a registry host name"),
    ("namespace with .. and space", PROJECT.replace("namespace: demo", "namespace: Bad NS/../x"), BUILD, {}, {},
     "providers[0].deploymentRegistry.namespace", "lowercase path components"),
    ("type as a list", PROJECT, BUILD.replace("type: container", "type: [container]"), {}, {},
     "type", "a Build needs a type"),
    ("duplicate key", PROJECT, BUILD.replace("timeout: 300", "timeout: 300\ntimeout: 400"), {}, {},
     "timeout", "duplicate key 'timeout'"),
    ("timeout 1e23", PROJECT, BUILD.replace("timeout: 300", "timeout: 1e23"), {}, {},
     "timeout", "out of range"),
    ("timeout above the farm's limit", PROJECT, BUILD, {}, {"FARM_MAX_BUILD_TIMEOUT": "100"},
     "timeout", "above the farm's limit of 100 s"),
    ("a map as a build-arg value", PROJECT, BUILD.replace("${var.greeting}", "{a: 1}"), {}, {},
     "spec.buildArgs.GREETING", "must be a string, an integer, a number or a boolean"),
    ("variables that refer to each other", PROJECT.replace("  greeting: hello", "  greeting: ${var.b}\n  b: ${var.greeting}"),
     BUILD, {}, {}, "variables.greeting", "refer to each other"),
    ("missing local.env", PROJECT, BUILD.replace("${var.greeting}", "${local.env.FARM_FUZZ_UNSET}"), {}, {},
     "spec.buildArgs.GREETING", "the environment variable is not set"),
    ("an 8 MB build arg", PROJECT, BUILD.replace("${var.greeting}", "${var.big}"),
     {"garden.env": f"big={BIG}\n"}, {}, "spec.buildArgs.GREETING", "the farm takes at most"),
    ("too many context files", PROJECT, BUILD, {}, {"FARM_CONTEXT_MAX_FILES": "1"},
     "name", "workers take at most 1"),
    ("too large a context", PROJECT, BUILD, {"api/big.bin": "y" * 5000}, {"FARM_CONTEXT_MAX_BYTES": "4096"},
     "name", "over 4,096 bytes"),
]
if "kaniko" not in SUPPORTED_MODES:
    CASES.append(("buildMode kaniko before it lands", PROJECT.replace("local-docker", "kaniko"), BUILD, {}, {},
                  "providers[0].buildMode", "buildMode kaniko is not supported"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_named_defects(tmp_path: Path, case: Case) -> None:
    _, project_text, build_text, extra, env, field, words = case
    [error] = refused(tmp_path, project(tmp_path, project_text, build_text, extra), env)
    assert error["field"] == field and words in error["msg"], error.string
    assert len(error.string) < 400            # no env listing, no echoed 8 MB value


def test_missing_local_env_does_not_list_the_environment(tmp_path: Path) -> None:
    root = project(tmp_path, build_text=BUILD.replace("${var.greeting}", "${local.env.FARM_FUZZ_UNSET}"))
    res = farm(tmp_path, "config", "validate", "--project", str(root), env={"FARM_FUZZ_OTHER": "x"})
    assert "FARM_FUZZ_OTHER" not in res.output and "PATH" not in res.output


# --- the fuzzer -------------------------------------------------------------------------------------

BAD_VALUES: list[object] = [None, [], {}, ["container"], {"a": 1}, -1, 0, 1e23, 99999999999999999999, True,
                            "", " ", "a b", "Bad NS/../x", "a/b:c@d e", "${var.nope}", "${", "x" * 300]


def _mutations(rng: random.Random, data: dict[str, object]) -> tuple[str, dict[str, object]]:
    """One random defect in a config mapping: a value of the wrong kind, a key removed or misspelt."""
    paths: list[tuple[object, ...]] = []

    def walk(value: object, path: tuple[object, ...]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                paths.append(path + (i,))
                walk(v, path + (i,))

    walk(data, ())
    path = rng.choice(paths)
    parent: object = data
    for part in path[:-1]:
        parent = parent[part]  # type: ignore[index]
    what = rng.choice(["value", "value", "drop", "misspell"])
    if what == "value" or not isinstance(parent, dict):
        parent[path[-1]] = rng.choice(BAD_VALUES)  # type: ignore[index]
    elif what == "drop":
        del parent[path[-1]]
    else:
        parent[str(path[-1]) + "x"] = parent.pop(path[-1])
    return f"{what} {'.'.join(map(str, path))}", data


SEEDS = list(range(120))


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzzed_projects(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    target = rng.choice(["project", "build"])
    data = yaml.safe_load(PROJECT if target == "project" else BUILD)
    what, data = _mutations(rng, data)
    text = yaml.safe_dump(data, sort_keys=False)
    root = project(tmp_path, text if target == "project" else PROJECT, text if target == "build" else BUILD)
    validate = farm(tmp_path, "config", "validate", "--project", str(root))
    assert "Traceback" not in validate.output and "internal error" not in validate.output, (what, validate.output)
    assert validate.exit_code in (0, 2), (what, validate.output)
    if validate.exit_code == 0:
        # validate says sound: build must not refuse it as a config problem (it fails later, at the
        # closed registry or broker: exit 1, never 2)
        build = farm(tmp_path, "build", "--project", str(root), "--no-wait")
        assert build.exit_code != 2 and "internal error" not in build.output, (what, build.output)
        return
    errors = refused(tmp_path, root) if _one_problem(validate.output) else None
    for line in validate.output.splitlines():
        if line.startswith("error: "):
            assert ERROR.match(line), (what, line)
    assert errors is None or errors


def _one_problem(output: str) -> bool:
    return sum(line.startswith("error: ") for line in output.splitlines()) == 1


def test_every_fuzzed_defect_is_a_different_project() -> None:
    seen: set[str] = set()
    for seed in SEEDS:
        rng = random.Random(seed)
        target = rng.choice(["project", "build"])
        what, data = _mutations(rng, yaml.safe_load(PROJECT if target == "project" else BUILD))
        seen.add(target + what + repr(data))
    assert len(seen) > len(SEEDS) // 2


