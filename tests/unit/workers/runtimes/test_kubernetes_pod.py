"""workers/runtimes/kubernetes_pod.py: a Pod's status read into the build's outcome (pure)."""

from __future__ import annotations

from kubernetes import client as k8s

from farm.errors import PermanentBuildError, TransientBuildError
from workers.runtimes.kubernetes_pod import diagnose, loopback_registry


def pod(phase: str = "Pending", waiting: str | None = None, running: bool = False, reason: str | None = None,
        scheduled: tuple[str, str] | None = None) -> k8s.V1Pod:
    state = k8s.V1ContainerState(
        waiting=k8s.V1ContainerStateWaiting(reason=waiting, message=f"{waiting} detail") if waiting else None,
        running=k8s.V1ContainerStateRunning() if running else None)
    statuses = [k8s.V1ContainerStatus(name="kaniko", image="i", image_id="", ready=running, restart_count=0,
                                      state=state)] if (waiting or running) else None
    conditions = [k8s.V1PodCondition(type="PodScheduled", status=scheduled[0], message=scheduled[1])] \
        if scheduled else None
    return k8s.V1Pod(status=k8s.V1PodStatus(phase=phase, reason=reason, message=f"{reason} message",
                                            container_statuses=statuses, conditions=conditions))


def verdict(p: k8s.V1Pod, age: float = 1.0):  # type: ignore[no-untyped-def]
    return diagnose(p, age=age, schedule_timeout=30, memory="1Gi")


def test_running_and_pending() -> None:
    assert verdict(pod(running=True)).running
    v = verdict(pod())
    assert not v.running and not v.done and v.error is None


def test_image_pull_errors_are_permanent_and_named() -> None:
    for reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
        v = verdict(pod(waiting=reason))
        assert v.done and isinstance(v.error, PermanentBuildError)
        assert f"could not be pulled ({reason}): {reason} detail" in str(v.error)
    assert verdict(pod(waiting="ContainerCreating")).error is None


def test_never_scheduled_after_the_deadline_with_the_schedulers_reason() -> None:
    unschedulable = ("False", "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")
    assert verdict(pod(scheduled=unschedulable), age=10).error is None
    v = verdict(pod(scheduled=unschedulable), age=31)
    assert isinstance(v.error, PermanentBuildError)
    assert str(v.error) == f"kaniko: the Pod was never scheduled within 30 s: {unschedulable[1]}"
    short = ("False", "0/1 nodes are available: 1 Insufficient memory.")
    assert isinstance(verdict(pod(scheduled=short), age=31).error, TransientBuildError)   # capacity may come


def test_evicted_and_deadline() -> None:
    v = verdict(pod(phase="Failed", reason="Evicted"))
    assert v.done and isinstance(v.error, TransientBuildError) and "evicted" in str(v.error)
    v = verdict(pod(phase="Failed", reason="DeadlineExceeded"))
    assert "activeDeadlineSeconds" in str(v.error)
    v = verdict(pod(phase="Failed"))
    assert v.done and v.error is None           # the executor's own end: read from its container


def test_loopback_registry() -> None:
    assert loopback_registry(("x", "--destination=127.0.0.1:5050/a/b:1"))
    assert loopback_registry(("--destination=localhost:5000/a:1",))
    assert not loopback_registry(("--destination=ghcr.io/a/b:1",))
