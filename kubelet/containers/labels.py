"""The labels and annotations the kubelet writes on CRI sandboxes and containers.

They are how a restarted kubelet, the streaming server and the orphan sweep find which pod and
container a CRI object belongs to, and how the kubelet remembers per-container facts (spec hash,
restart count, preStop handler) across restarts, exactly as the upstream kubelet names them.
"""

from __future__ import annotations

from typing import Any

import orjson

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
TERMINATION_GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
DELETION_GRACE_PERIOD = "io.kubernetes.pod.deletionGracePeriod"
PRESTOP_HANDLER = "io.kubernetes.container.preStopHandler"
CONTAINER_PORTS = "io.kubernetes.container.ports"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _fnv32a(data: bytes) -> int:
    h = _FNV32_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def container_hash(container: dict[str, Any]) -> str:
    """FNV-32a of the spec as canonical JSON, in hex (upstream's HashContainer): a changed spec
    means the running container must be replaced."""
    return format(_fnv32a(_json(container).encode()), "x")


def pod_labels(pod: dict[str, Any]) -> dict[str, str]:
    """The pod's own labels plus the three that identify it (they win over the pod's)."""
    md = pod.get("metadata", {})
    labels = {str(k): str(v) for k, v in (md.get("labels") or {}).items()}
    labels.update({POD_NAME: md.get("name", ""), POD_NAMESPACE: md.get("namespace", ""),
                   POD_UID: md.get("uid", "")})
    return labels


def pod_annotations(pod: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (pod.get("metadata", {}).get("annotations") or {}).items()}


def container_labels(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    md = pod.get("metadata", {})
    return {POD_NAME: md.get("name", ""), POD_NAMESPACE: md.get("namespace", ""), POD_UID: md.get("uid", ""),
            CONTAINER_NAME: container.get("name", "")}


def container_annotations(pod: dict[str, Any], container: dict[str, Any], *, attempt: int) -> dict[str, str]:
    spec, md = pod.get("spec", {}), pod.get("metadata", {})
    annotations = {
        CONTAINER_HASH: container_hash(container),
        RESTART_COUNT: str(attempt),
        TERMINATION_MESSAGE_PATH: container.get("terminationMessagePath", "/dev/termination-log"),
        TERMINATION_MESSAGE_POLICY: container.get("terminationMessagePolicy", "File"),
    }
    if md.get("deletionGracePeriodSeconds") is not None:
        annotations[DELETION_GRACE_PERIOD] = str(md["deletionGracePeriodSeconds"])
    if spec.get("terminationGracePeriodSeconds") is not None:
        annotations[TERMINATION_GRACE_PERIOD] = str(spec["terminationGracePeriodSeconds"])
    pre_stop = (container.get("lifecycle") or {}).get("preStop")
    if pre_stop:
        annotations[PRESTOP_HANDLER] = _json(pre_stop)
    if container.get("ports"):
        annotations[CONTAINER_PORTS] = _json(container["ports"])
    return annotations
