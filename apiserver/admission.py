"""Mutating admission that only applies when a pod is created: the ServiceAccount plugin's token volume.

Upstream's ServiceAccount admission gives every pod that does not opt out
(``automountServiceAccountToken: false``) a projected ``kube-api-access-<5 chars>`` volume: a bound
token for the pod's ServiceAccount, the cluster CA from the ``kube-root-ca.crt`` ConfigMap and the
namespace, mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container,
so in-cluster clients (the official Python client's ``load_incluster_config``) find them. It runs
on create only: a pod's volumes are immutable afterwards.
"""

from __future__ import annotations

import secrets
from typing import Any

TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION = 3607  # seconds, as upstream (an hour plus jitter the kubelet refreshes within)
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's random-suffix alphabet (no vowels, no 0/1/3)
_CONTAINER_LISTS = ("initContainers", "containers")


def _api_access_volume(name: str) -> dict[str, Any]:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}},
    ]}}


def service_account_token(pod: dict[str, Any]) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict) or spec.get("automountServiceAccountToken") is False:
        return
    if "kubernetes.io/config.mirror" in ((pod.get("metadata") or {}).get("annotations") or {}):
        return  # mirror pods never get tokens
    containers = [c for key in _CONTAINER_LISTS for c in spec.get(key) or () if isinstance(c, dict)]
    if any(m.get("mountPath") == TOKEN_MOUNT_PATH for c in containers for m in c.get("volumeMounts") or ()
           if isinstance(m, dict)):
        return  # the user mounts something there already
    volumes = spec.setdefault("volumes", [])
    taken = {v.get("name") for v in volumes if isinstance(v, dict)}
    name = VOLUME_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(5))
    while name in taken:
        name = VOLUME_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(5))
    volumes.append(_api_access_volume(name))
    for container in containers:
        container.setdefault("volumeMounts", []).append(
            {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
