from farm.broker import parse_queue, queue_for
from farm.jobs import BuildRequest
from workers.builders import local_docker


def _req(**kw: object) -> BuildRequest:
    base = dict(job_id="j1", project="p", build="api", version="v-0123456789", platform="linux/amd64",
                mode="local-docker", image="127.0.0.1:5050/ns/api:v-0123456789", context="sha256:" + "0" * 64,
                context_store="file:///store")
    return BuildRequest(**{**base, **kw})  # type: ignore[arg-type]


def test_build_argv_in_garden_order() -> None:
    job = local_docker.build_job(_req(dockerfile="docker/Dockerfile", build_args={"B": "2", "A": None},
                                      target="prod", extra_flags=["--no-cache"]), "/ctx")
    assert job.argv == ("docker", "build", "--file", "docker/Dockerfile", "--tag", "127.0.0.1:5050/ns/api:v-0123456789",
                        "--tag", "farm-cache/p-api:linux-amd64", "--cache-from", "farm-cache/p-api:linux-amd64",
                        "--build-arg", "A", "--build-arg", "B", "--target", "prod", "--platform", "linux/amd64",
                        "--no-cache", ".")
    assert job.context_dir == "/ctx"
    assert ("DOCKER_BUILDKIT", "0") in job.env and ("B", "2") in job.env


def test_build_arg_values_are_not_on_the_command_line() -> None:
    big = "x" * 60_000
    job = local_docker.build_job(_req(build_args={"BIG": big, "PATH": "/opt", "DOCKER_HOST": "tcp://x"}), "/ctx")
    assert not any(big in a for a in job.argv) and ("BIG", big) in job.env
    # names the docker CLI itself reads stay on the command line rather than change how it runs
    assert "PATH=/opt" in job.argv and "DOCKER_HOST=tcp://x" in job.argv
    assert not any(k in ("PATH", "DOCKER_HOST") for k, _ in job.env)


def test_each_platform_has_its_own_cache() -> None:
    amd = local_docker.build_job(_req(platform="linux/amd64"), "/ctx")
    arm = local_docker.build_job(_req(platform="linux/arm64"), "/ctx")
    cache = lambda job: job.argv[job.argv.index("--cache-from") + 1]  # noqa: E731
    assert cache(amd) != cache(arm) and cache(arm).endswith(":linux-arm64")


def test_push_has_no_credentials_in_argv() -> None:
    job = local_docker.push_job(_req(), "/ctx")
    assert job.argv == ("docker", "push", "127.0.0.1:5050/ns/api:v-0123456789")


def test_pushed_digest_from_push_output() -> None:
    digest = "sha256:" + "ab" * 32
    lines = ["The push refers to repository [x]", f"v-0123456789: digest: {digest} size: 527"]
    assert local_docker.pushed_digest(lines) == digest
    assert local_docker.pushed_digest(["no digest here"]) is None


def test_queue_names() -> None:
    assert queue_for("local-docker", "linux/amd64") == "build.local-docker.linux-amd64"
    assert queue_for("cluster-buildkit", "linux/arm64/v8") == "build.cluster-buildkit.linux-arm64-v8"
    assert queue_for("kaniko", " Linux/ARM64 ") == "build.kaniko.linux-arm64"
    assert parse_queue("build.kaniko.linux-arm-v7") == ("kaniko", "linux-arm-v7")
    assert parse_queue("build.merge") is None and parse_queue("celery") is None
