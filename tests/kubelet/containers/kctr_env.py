"""Shared test helpers: pod builders and an in-memory ObjectSource."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from kubelet.config import KubeletConfig


class FakeSource:
    """ConfigMaps/Secrets from a dict keyed by (plural, namespace, name); counts reads."""

    def __init__(self, objects: dict[tuple[str, str, str], dict[str, Any]] | None = None) -> None:
        self.objects = objects or {}
        self.reads: list[tuple[str, str, str]] = []

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((plural, namespace, name))
        return self.objects.get((plural, namespace, name))


def secret(data: dict[str, str]) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def make_pod(*containers: dict[str, Any], name: str = "web", namespace: str = "default", uid: str = "u-1",
             **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "labels": {"app": "web"},
                     "annotations": {"note": "x"}},
        "spec": {"containers": list(containers) or [{"name": "c", "image": "busybox"}], "nodeName": "n1",
                 "serviceAccountName": "default", **spec},
        "status": {},
    }


def make_config(tmp: Path | str, **overrides: Any) -> KubeletConfig:
    """A config rooted at ``tmp`` (container_config writes termination message files under it)."""
    root = Path(tmp)
    values: dict[str, Any] = {"node_name": "n1", "kubeconfig": "", "cri_socket": "", "root_dir": root,
                              "log_dir": root / "logs", "cluster_dns": ("10.96.0.10",)}
    values.update(overrides)
    return KubeletConfig(**values)
