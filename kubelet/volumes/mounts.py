"""A container's ``volumeMounts`` as CRI mounts, given where the pod's volumes are on the host.

``subPath`` (and ``subPathExpr``, expanded from the container's literal env and pod fields) picks a
path inside the volume; as upstream it is created (with the volume dir's permissions) when missing
and must resolve inside the volume, so a symlink in a volume cannot expose the rest of the host.
This does a little blocking file work (stat/mkdir for subPaths); async callers may run it in a thread.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from kubelet.cri import pb
from kubelet.volumes.errors import VolumeError

PROPAGATION: dict[str | None, int] = {
    None: pb.PROPAGATION_PRIVATE,
    "None": pb.PROPAGATION_PRIVATE,
    "HostToContainer": pb.PROPAGATION_HOST_TO_CONTAINER,
    "Bidirectional": pb.PROPAGATION_BIDIRECTIONAL,
}
#: pod fields a subPathExpr may refer to through an env var's fieldRef
_FIELDS: dict[str, tuple[str, ...]] = {
    "metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"),
    "metadata.uid": ("metadata", "uid"), "spec.nodeName": ("spec", "nodeName"),
    "spec.serviceAccountName": ("spec", "serviceAccountName"), "status.podIP": ("status", "podIP"),
    "status.hostIP": ("status", "hostIP"),
}
#: volume sources the kubelet always mounts read-only (upstream, since the 2018 subPath/atomic-writer fixes)
READ_ONLY_SOURCES = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _env(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for var in container.get("env") or []:
        if "value" in var:
            out[var["name"]] = str(var.get("value") or "")
        elif ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") in _FIELDS:
            section, key = _FIELDS[var["valueFrom"]["fieldRef"]["fieldPath"]]
            out[var["name"]] = str((pod.get(section) or {}).get(key) or "")
    return out


def expand(expr: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: unknown references stay as written, ``$$`` is a ``$``."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _VAR.sub(one, expr)


def _sub_path(mount: dict[str, Any], pod: dict[str, Any], container: dict[str, Any]) -> str:
    if mount.get("subPathExpr"):
        sub = expand(mount["subPathExpr"], _env(pod, container))
    else:
        sub = mount.get("subPath") or ""
    if sub and (PurePosixPath(sub).is_absolute() or ".." in PurePosixPath(sub).parts):
        raise VolumeError(f"subPath {sub!r} must be a relative path without '..'")
    return sub


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _host_path(volume_path: str, sub: str) -> str:
    """``volume/sub``, missing parts created, refused if any part resolves outside the volume.

    Walked one component at a time so that no directory is made through a symlink leading out.
    """
    if not sub:
        return volume_path
    base = Path(volume_path)
    real_base = os.path.realpath(base)
    mode = base.stat().st_mode & 0o7777 if base.is_dir() else 0o755
    current = base
    for part in PurePosixPath(sub).parts:
        current = current / part
        if not os.path.lexists(current):
            os.mkdir(current)
            os.chmod(current, mode)
        if not _inside(os.path.realpath(current), real_base):
            raise VolumeError(f"subpath {str(base / sub)!r} not within volume path {volume_path!r}")
    return str(base / sub)


def _recursive_read_only(mount: dict[str, Any], propagation: int) -> bool:
    mode = mount.get("recursiveReadOnly") or "Disabled"
    if mode == "Disabled":
        return False
    if mode not in ("Enabled", "IfPossible"):
        raise VolumeError(f"unknown recursiveReadOnly mode {mode!r}")
    if not mount.get("readOnly") or propagation != pb.PROPAGATION_PRIVATE:
        if mode == "IfPossible":
            return False
        raise VolumeError(f'volume "{mount.get("name")}": recursiveReadOnly requires readOnly and '
                          f'mountPropagation None')
    return True


def container_mounts(pod: dict[str, Any], container: dict[str, Any], paths: dict[str, str]) -> list[pb.Mount]:
    read_only_volumes = {v.get("name") for v in (pod.get("spec") or {}).get("volumes") or []
                         if READ_ONLY_SOURCES & {k for k, spec in v.items() if spec is not None}}
    out: list[pb.Mount] = []
    for mount in container.get("volumeMounts") or []:
        name = mount.get("name", "")
        if name not in paths:
            raise VolumeError(f'cannot find volume "{name}" to mount into container "{container.get("name")}"')
        propagation = mount.get("mountPropagation")
        if propagation not in PROPAGATION:
            raise VolumeError(f'invalid MountPropagation mode: "{propagation}"')
        mode = PROPAGATION[propagation]
        out.append(pb.Mount(
            container_path=mount.get("mountPath", ""),
            host_path=_host_path(paths[name], _sub_path(mount, pod, container)),
            readonly=bool(mount.get("readOnly")) or name in read_only_volumes,
            propagation=mode,
            recursive_read_only=_recursive_read_only(mount, mode),
        ))
    return out
