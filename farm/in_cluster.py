"""What a worker needs to run a cluster-buildkit build in the project's cluster (GARDEN-SPEC §5.1, §5.2):
the provider's `clusterBuildkit` settings and namespace, resolved once by the producer. Pure data.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from farm.garden.models import KubernetesProvider


class BuildkitOptions(BaseModel):
    """The `garden-buildkit` Deployment's settings for one project namespace; no credential."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    kube_context: str | None = None
    rootless: bool = False
    annotations: dict[str, str] = {}
    tolerations: tuple[dict[str, Any], ...] = ()
    node_selector: dict[str, str] = {}
    resources: dict[str, dict[str, str]] = {}
    util_image_registry_domain: str = "docker.io"
    service_account_annotations: dict[str, str] = {}
    image_pull_secrets: tuple[str, ...] = ()

    def deployment_options(self) -> dict[str, Any]:
        """The keyword arguments of `workers.k8s_objects.buildkit_deployment`."""
        return {"rootless": self.rootless, "annotations": dict(self.annotations),
                "tolerations": list(self.tolerations), "node_selector": dict(self.node_selector),
                "resources": dict(self.resources), "image_pull_secrets": list(self.image_pull_secrets),
                "util_image_registry_domain": self.util_image_registry_domain}


def buildkit_options(provider: KubernetesProvider, namespace: str) -> BuildkitOptions:
    cb = provider.cluster_buildkit
    return BuildkitOptions(
        namespace=namespace, kube_context=provider.context, rootless=cb.rootless,
        annotations=dict(cb.annotations or {}),
        tolerations=tuple({k: v for k, v in t.model_dump(by_alias=True).items() if v is not None}
                          for t in cb.tolerations),
        node_selector=dict(cb.node_selector), resources=provider.resources.builder.requirements(),
        util_image_registry_domain=provider.util_image_registry_domain,
        service_account_annotations=dict(cb.service_account_annotations or {}),
        image_pull_secrets=tuple(s.name for s in provider.image_pull_secrets))
