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
                        "--build-arg", "A", "--build-arg", "B=2", "--target", "prod", "--platform", "linux/amd64",
                        "--no-cache", ".")
    assert job.context_dir == "/ctx"
    assert ("DOCKER_BUILDKIT", "0") in job.env


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
