"""Shared fakes for the volume tests: an in-memory ObjectSource and TokenSource, a pod builder."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

from kubelet.config import KubeletConfig
from kubelet.volumes import fs


class FakeSource:
    """ObjectSource over a dict: (plural, namespace, name) -> object."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def put_configmap(self, name: str, data: dict[str, str], namespace: str = "ns") -> None:
        self.objects[("configmaps", namespace, name)] = {"metadata": {"name": name}, "data": data}

    def put_secret(self, name: str, data: dict[str, bytes], namespace: str = "ns") -> None:
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        self.objects[("secrets", namespace, name)] = {"metadata": {"name": name}, "data": encoded}

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, namespace, name))


class FakeTokens:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def token(self, *, namespace: str, service_account: str, audiences: list[str],
                    expiration_seconds: int, pod: dict[str, Any]) -> str:
        self.calls.append({"namespace": namespace, "service_account": service_account, "audiences": audiences,
                           "expiration_seconds": expiration_seconds, "pod": pod["metadata"]["name"]})
        return f"token-{len(self.calls)}"


def config(root: Path) -> KubeletConfig:
    return KubeletConfig(node_name="n1", kubeconfig="", cri_socket="", root_dir=root, log_dir=root / "logs")


def pod(volumes: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": str(uuid.uuid4()),
                         "labels": {"app": "web", "tier": 'f"e'}, "annotations": {"note": "a\nb"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}],
                     "volumes": volumes, **spec}}


def mounts_below(root: Path) -> list[Path]:
    return fs.mounts_under(root)
