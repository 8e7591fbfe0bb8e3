"""securityContext → CRI Linux security contexts, and the runAsNonRoot check, as the upstream kubelet.

The effective context takes the container's settings over the pod's for user, group, runAsNonRoot
and seccomp; capabilities, privileged, readOnlyRootFilesystem and allowPrivilegeEscalation are the
container's own. When no user is set, the image's user is sent (numeric as ``run_as_user``, a name as
``run_as_username``), which is also what runAsNonRoot is verified against. Seccomp without a profile
is Unconfined (the kubelet's SeccompDefault is off by default).
"""

from __future__ import annotations

from typing import Any

from kubelet.containers.errors import ConfigError
from kubelet.cri import pb

POD_LEVEL = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "seLinuxOptions", "appArmorProfile")
SECCOMP_TYPES: dict[str, int] = {
    "RuntimeDefault": pb.SecurityProfile.RuntimeDefault,
    "Unconfined": pb.SecurityProfile.Unconfined,
    "Localhost": pb.SecurityProfile.Localhost,
}
SECCOMP_ROOT = "/var/lib/kubelet/seccomp"
MAX_USER_ID = 2**31 - 1


def effective(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    pod_sc = pod.get("spec", {}).get("securityContext") or {}
    merged = {k: pod_sc[k] for k in POD_LEVEL if pod_sc.get(k) is not None}
    merged.update({k: v for k, v in (container.get("securityContext") or {}).items() if v is not None})
    return merged


def pod_ref(pod: dict[str, Any]) -> str:
    """upstream's format.Pod: ``name_namespace(uid)``."""
    md = pod.get("metadata", {})
    return f"{md.get('name', '')}_{md.get('namespace', '')}({md.get('uid', '')})"


def image_identity(image_user: str) -> tuple[int | None, str]:
    """(uid, username) of an image's user as the CRI reports it; no user means root (uid 0)."""
    user = image_user.split(":", 1)[0].strip()
    if not user:
        return 0, ""
    return (int(user), "") if user.isdigit() else (None, user)


def verify_run_as_non_root(pod: dict[str, Any], container: dict[str, Any], *, image_user: str) -> None:
    sc = effective(pod, container)
    if not sc.get("runAsNonRoot"):
        return
    where = f"(pod: {_go_quote(pod_ref(pod))}, container: {container.get('name', '')})"
    if sc.get("runAsUser") is not None:
        if int(sc["runAsUser"]) == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    uid, username = image_identity(image_user)
    if uid == 0:
        raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
    if uid is not None and uid > MAX_USER_ID:
        raise ConfigError(f"container has runAsNonRoot and image has an invalid user id ({uid}). "
                          f"(Must be 1-({MAX_USER_ID})): must be between 0 and {MAX_USER_ID}, inclusive {where}")
    if uid is None and username:
        raise ConfigError(f"container has runAsNonRoot and image has non-numeric user ({username}), "
                          f"cannot verify user is non-root {where}")


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def seccomp_profile(profile: dict[str, Any] | None) -> pb.SecurityProfile:
    if not profile:
        return pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined)
    kind = profile.get("type", "")
    if kind not in SECCOMP_TYPES:
        raise ConfigError(f"unsupported seccomp profile type {kind!r}")
    message = pb.SecurityProfile(profile_type=SECCOMP_TYPES[kind])
    if kind == "Localhost":
        message.localhost_ref = f"{SECCOMP_ROOT}/{profile.get('localhostProfile', '')}"
    return message


def _supplemental_groups(pod: dict[str, Any]) -> list[int]:
    pod_sc = pod.get("spec", {}).get("securityContext") or {}
    groups = [int(pod_sc["fsGroup"])] if pod_sc.get("fsGroup") is not None else []
    return groups + [int(g) for g in pod_sc.get("supplementalGroups") or []]


def container_security(pod: dict[str, Any], container: dict[str, Any], *,
                       image_user: str) -> pb.LinuxContainerSecurityContext:
    sc = effective(pod, container)
    caps = sc.get("capabilities") or {}
    ctx = pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(add_capabilities=[str(c) for c in caps.get("add") or []],
                                   drop_capabilities=[str(c) for c in caps.get("drop") or []]),
        privileged=bool(sc.get("privileged")),
        readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        supplemental_groups=_supplemental_groups(pod),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        seccomp=seccomp_profile(sc.get("seccompProfile")),
        namespace_options=namespace_options(pod),
    )
    if sc.get("runAsUser") is not None:
        ctx.run_as_user.value = int(sc["runAsUser"])
    else:
        uid, username = image_identity(image_user)
        if uid is not None:
            ctx.run_as_user.value = uid
        ctx.run_as_username = username
    if sc.get("runAsGroup") is not None:
        ctx.run_as_group.value = int(sc["runAsGroup"])
    return ctx


def namespace_options(pod: dict[str, Any]) -> pb.NamespaceOption:
    spec = pod.get("spec", {})
    return pb.NamespaceOption(
        network=pb.NODE if spec.get("hostNetwork") else pb.POD,
        pid=pb.NODE if spec.get("hostPID") else (pb.POD if spec.get("shareProcessNamespace") else pb.CONTAINER),
        ipc=pb.NODE if spec.get("hostIPC") else pb.POD,
    )


def sandbox_security(pod: dict[str, Any]) -> pb.LinuxSandboxSecurityContext:
    spec = pod.get("spec", {})
    pod_sc = spec.get("securityContext") or {}
    every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    ctx = pb.LinuxSandboxSecurityContext(
        namespace_options=namespace_options(pod),
        supplemental_groups=_supplemental_groups(pod),
        privileged=any((c.get("securityContext") or {}).get("privileged") for c in every),
        seccomp=seccomp_profile(pod_sc.get("seccompProfile")),
    )
    if pod_sc.get("runAsUser") is not None:
        ctx.run_as_user.value = int(pod_sc["runAsUser"])
    if pod_sc.get("runAsGroup") is not None:
        ctx.run_as_group.value = int(pod_sc["runAsGroup"])
    return ctx
