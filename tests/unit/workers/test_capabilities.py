"""workers/capabilities.py: when a worker offers kaniko."""

from __future__ import annotations


def test_a_worker_without_an_executor_image_does_not_offer_kaniko() -> None:
    from farm.settings import Settings
    from workers.capabilities import missing

    assert "no executor image" in (missing("kaniko", Settings(kaniko_image="")) or "")
    assert "no KUBECONFIG" in (missing("kaniko", Settings(kaniko_image="r/x:1", runtime="kubernetes",
                                                          kubeconfig="")) or "")
