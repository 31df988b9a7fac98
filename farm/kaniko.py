"""The `kaniko` build mode as data (GARDEN-SPEC §4.3, §5.4): the executor's flags and arguments.

Pure: the producer resolves a Build's `KanikoOptions` once (flag errors surface at submit time, naming
the field), the worker's builder turns them into the executor's command line with `executor_args`.

Garden's behaviour kept: `--cache=true` by default, action `spec.extraFlags` win over the provider's
`kaniko.extraFlags`, which win over the defaults; a flag that is not `--name[=value]` is a config
error; `--insecure` for an insecure deployment registry; secrets refused with Garden's message.
Fixed (Garden QUIRKs): flags are merged by name across *all* levels, so a flag never appears twice
(a provider `--cache=false` beats the default `--cache=true`, and action flags are not passed twice);
`--flag value` (one item or two) and `--flag=value` are the same flag; `--snapshotMode` and
`--snapshot-mode` are the same flag. Beyond Garden: the cache repository is passed explicitly
(`<deployment image>/cache`, kaniko's own default, so it shows in the log and the pre-build check
can test push access to it), `--insecure-pull` too, and several platforms are built one executor per
platform (`--custom-platform`), merged into an index by the farm's fan-in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from farm.errors import ConfigError
from farm.garden.models import DEFAULT_KANIKO_IMAGE, BuildAction, KubernetesProvider

EXECUTOR = "/kaniko/executor"
CONTEXT_DIR = "/workspace"              # where a runtime puts the context inside the executor's container
DEFAULT_FLAGS: tuple[str, ...] = ("--cache=true",)
SECRETS_REFUSED = "Kaniko does not support secret build arguments"
# Set by the farm itself: a user value would point the executor away from the context it delivers,
# or stop the push the farm verifies.
RESERVED = {"context": "the farm delivers the context", "dockerfile": "use spec.dockerfile",
            "no-push": "the farm pushes and verifies every build", "context-sub-path": "the farm delivers the context"}
# Kaniko flags that may be given several times (pflag string arrays); the others keep one value.
REPEATABLE = frozenset({"destination", "build-arg", "label", "registry-mirror", "insecure-registry",
                        "skip-tls-verify-registry", "registry-certificate", "registry-client-cert",
                        "ignore-path", "annotation", "registry-map", "kaniko-dir-ignore"})
# ECR: pushing a tag that already exists in an immutable repository. Garden counts a failed push
# with both lines as success (the tag already holds the image); so does the farm.
IMMUTABLE_TAG = ("error pushing image: ", "cannot be overwritten because the repository is immutable.")

_FLAG = re.compile(r"^--([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Flag:
    name: str                       # canonical: kebab-case, `snapshotMode` -> `snapshot-mode`
    text: str                       # as rendered on the command line: `--name` or `--name=value`

    @property
    def value(self) -> str | None:
        _, eq, value = self.text.partition("=")
        return value if eq else None


def canonical(name: str) -> str:
    """Kaniko reads `--snapshotMode` as `--snapshot-mode`: one key for both spellings."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name).lower()


def parse_flags(items: Sequence[str], field: str) -> list[Flag]:
    """`--f=v`, `--f v` (one item) and `--f`, `v` (two items) as Flags; anything else is a ConfigError
    naming the item and `field`."""
    out: list[Flag] = []
    pending: str | None = None      # a `--name` without value: the next non-flag item may be its value
    for raw in items:
        item = str(raw).strip()
        if not item.startswith("-") and pending is not None:
            out[-1] = Flag(out[-1].name, f"--{pending}={item}")
            pending = None
            continue
        name_part, sep, rest = item.partition(" ")
        if sep and "=" not in name_part:
            item = f"{name_part}={rest.strip()}"
        match = _FLAG.match(item)
        if not match:
            raise ConfigError(f"Invalid format for a kaniko flag: {raw!r} (expected --name or --name=value)",
                              field=field)
        name = canonical(match.group(1))
        if name in RESERVED:
            raise ConfigError(f"kaniko flag --{match.group(1)} is set by the farm ({RESERVED[name]})", field=field)
        value = match.group(2)
        out.append(Flag(name, f"--{match.group(1)}" if value is None else f"--{match.group(1)}={value}"))
        pending = match.group(1) if value is None else None
    return out


def _level(flags: Sequence[Flag]) -> dict[str, list[Flag]]:
    """One level's flags by name: a single-valued flag keeps its last value, a repeatable one each
    distinct value once."""
    by_name: dict[str, list[Flag]] = {}
    for flag in flags:
        have = by_name.setdefault(flag.name, [])
        if flag.name not in REPEATABLE:
            have[:] = [flag]
        elif flag.text not in {f.text for f in have}:
            have.append(flag)
    return by_name


def merge_flags(action: Sequence[str] | None, provider: Sequence[str] | None,
                defaults: Sequence[str] = DEFAULT_FLAGS) -> list[str]:
    """Action flags, then the provider's flags the action does not name, then the defaults neither
    names: by name, so no flag appears twice (`field`s in errors are the config's)."""
    levels = [_level(parse_flags(action or [], "spec.extraFlags")),
              _level(parse_flags(provider or [], "providers[kubernetes].kaniko.extraFlags")),
              _level(parse_flags(defaults, "defaults"))]
    out: list[str] = []
    seen: set[str] = set()
    for level in levels:
        for name, flags in level.items():
            if name not in seen:
                out += [f.text for f in flags]
        seen |= set(level)
    return out


def flag_value(flags: Sequence[str], name: str) -> str | None:
    """The value of flag `name` in merged flags (`--cache` alone reads as "true"), or None if unset."""
    for flag in parse_flags(flags, "flags"):
        if flag.name == name:
            return flag.value if flag.value is not None else "true"
    return None


def cache_on(flags: Sequence[str]) -> bool:
    return (flag_value(flags, "cache") or "false").lower() in ("true", "1", "t")


class KanikoOptions(BaseModel):
    """A Build's kaniko settings, resolved by the producer: everything the executor's job needs
    besides the request's own fields. No secret: registry credentials stay with the worker."""

    model_config = ConfigDict(frozen=True)

    flags: tuple[str, ...] = DEFAULT_FLAGS          # merged, each flag once
    cache_repo: str | None = None                   # --cache-repo, when caching is on
    image: str | None = None                        # kaniko.image when the user set one; None: the worker's
    namespace: str = "default"                      # kaniko.namespace, else the project namespace
    node_selector: dict[str, str] = {}
    tolerations: tuple[dict[str, Any], ...] = ()    # the user's, in the API's shape (garden-build added later)
    annotations: dict[str, str] = {}
    resources: dict[str, dict[str, str]] = {}       # resources.builder as Kubernetes quantities
    service_account_annotations: dict[str, str] = {}
    kube_context: str | None = None                 # the provider's `context`
    image_pull_secrets: tuple[str, ...] = ()        # names of the provider's imagePullSecrets (Pod pulls)


def check_build(action: BuildAction) -> None:
    """What kaniko cannot do, refused before anything is sent (Garden's message)."""
    if action.spec.secrets:
        raise ConfigError(SECRETS_REFUSED, file=str(action.config_file), field=f"Build {action.name}: spec.secrets")


def options_for(action: BuildAction, provider: KubernetesProvider, project_namespace: str,
                deployment_image_name: str) -> KanikoOptions:
    """The Build's KanikoOptions from the provider's `kaniko` and `resources.builder` fields."""
    check_build(action)
    kaniko = provider.kaniko
    where = str(action.config_file)
    try:
        flags = merge_flags(action.spec.extra_flags, kaniko.extra_flags)
    except ConfigError as exc:
        raise ConfigError(str(exc), file=where, field=f"Build {action.name}: {exc.field or 'extraFlags'}") from None
    cache_repo = None
    if cache_on(flags):
        cache_repo = flag_value(flags, "cache-repo")
        if cache_repo is None:
            cache_repo = f"{deployment_image_name}/cache"
            flags.append(f"--cache-repo={cache_repo}")
    tolerations = tuple({k: v for k, v in t.model_dump(by_alias=True).items() if v is not None}
                        for t in kaniko.tolerations)
    return KanikoOptions(
        flags=tuple(flags), cache_repo=cache_repo,
        image=None if kaniko.image == DEFAULT_KANIKO_IMAGE else kaniko.image,
        namespace=kaniko.namespace or project_namespace,
        node_selector=dict(kaniko.node_selector or {}), tolerations=tolerations,
        annotations=dict(kaniko.annotations or {}),
        resources={side: dict(values) for side, values in provider.resources.builder.requirements().items()},
        service_account_annotations=dict(kaniko.service_account_annotations or {}), kube_context=provider.context,
        image_pull_secrets=tuple(ref.name for ref in provider.image_pull_secrets))


def resolve_build_args(build_args: Mapping[str, str | None], env: Mapping[str, str]) -> dict[str, str]:
    """§4.4 for an executor that does not share the worker's environment: `""` omitted, a None
    value read from `env` (the worker's) or left out when unset there."""
    out: dict[str, str] = {}
    for key, value in build_args.items():
        if value == "":
            continue
        if value is None:
            if key not in env:
                continue
            value = env[key]
        out[key] = value
    return out


def executor_args(*, destination: str, dockerfile: str, options: KanikoOptions,
                  build_args: Mapping[str, str], target: str | None = None, platform: str | None = None,
                  insecure: bool = False, context: str = f"dir://{CONTEXT_DIR}") -> list[str]:
    """The executor's command line (`/kaniko/executor …`), in Garden's order: context, dockerfile,
    destination, the merged flags, insecure, build args, target, platform."""
    # The Dockerfile relative to the context: kaniko resolves it in its build context, wherever a
    # runtime put that (`dir:///workspace` on an engine, `tar://stdin` unpacked in a Pod).
    argv = [EXECUTOR, f"--context={context}", f"--dockerfile={dockerfile}",
            f"--destination={destination}", *options.flags]
    names = {f.name for f in parse_flags(options.flags, "flags")}
    if insecure:
        argv += [f for f in ("--insecure", "--insecure-pull") if f.removeprefix("--") not in names]
    argv += [f"--build-arg={key}={value}" for key, value in build_args.items()]
    if target and "target" not in names:
        argv.append(f"--target={target}")
    if platform and "custom-platform" not in names:
        argv.append(f"--custom-platform={platform}")
    return argv


def immutable_tag_refusal(lines: Sequence[str]) -> bool:
    """The executor failed only because an ECR tag that already exists is immutable (§4.3): success."""
    text = "\n".join(lines)
    return all(part in text for part in IMMUTABLE_TAG)
