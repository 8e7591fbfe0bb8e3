"""One pod container as a CRI ``ContainerConfig``, as the upstream kubelet's generateContainerConfig.

It joins the parts with one job each: the runAsNonRoot check (first, so a refused container never
reads a Secret), the environment, ``$(VAR)`` expansion of command/args (which otherwise pass
through: the engine applies the image's entrypoint/cmd as Kubernetes defines), resources, the
security context, labels and annotations, the log path ``<name>/<attempt>.log`` and the mounted
termination message file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubelet.config import KubeletConfig
from kubelet.containers.downward import PodAddresses, node_allocatable
from kubelet.containers.env import expand_command, resolve_env
from kubelet.containers.labels import container_annotations, container_labels
from kubelet.containers.resources import linux_resources
from kubelet.containers.security import container_security, verify_run_as_non_root
from kubelet.containers.termination import termination_mount
from kubelet.cri import pb
from kubelet.sources import ObjectSource


def log_path(container: dict[str, Any], attempt: int) -> str:
    return f"{container.get('name', '')}/{attempt}.log"


def _ips(status_ips: Any, first: str) -> tuple[str, ...]:
    ips = [str(i.get("ip", "")) for i in status_ips or [] if isinstance(i, dict) and i.get("ip")]
    if first and first not in ips:
        ips.insert(0, first)
    return tuple(ips)


async def container_config(pod: dict[str, Any], container: dict[str, Any], *, config: KubeletConfig, attempt: int,
                           image_ref: str, image_user: str, mounts: list[pb.Mount], source: ObjectSource,
                           pod_ip: str, host_ip: str, service_env: Mapping[str, str] | None = None,
                           allocatable: dict[str, int] | None = None,
                           memory_capacity: int | None = None) -> pb.ContainerConfig:
    """``image_user`` is the image's user as the CRI's ImageStatus gives it (uid or name, '' = root);
    ``service_env`` the service link variables (KUBERNETES_SERVICE_HOST...), which the kubelet core
    computes; ``allocatable``/``memory_capacity`` override the host's figures (tests)."""
    verify_run_as_non_root(pod, container, image_user=image_user)
    status = pod.get("status") or {}
    addresses = PodAddresses(pod_ips=_ips(status.get("podIPs"), pod_ip), host_ips=_ips(status.get("hostIPs"), host_ip))
    env = await resolve_env(pod, container, source=source, addresses=addresses,
                            allocatable=allocatable or node_allocatable(str(config.root_dir)),
                            service_env=service_env)
    command, args = expand_command(container, env)
    termination = await termination_mount(config, pod, container)
    if termination is not None and all(m.container_path != termination.container_path for m in mounts):
        mounts = [*mounts, termination]
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=container.get("name", ""), attempt=attempt),
        image=pb.ImageSpec(image=image_ref, user_specified_image=container.get("image", "")),
        command=command,
        args=args,
        working_dir=container.get("workingDir") or "",
        envs=[pb.KeyValue(key=k, value=v) for k, v in env.items()],
        mounts=mounts,
        labels=container_labels(pod, container),
        annotations=container_annotations(pod, container, attempt=attempt),
        log_path=log_path(container, attempt),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=pb.LinuxContainerConfig(
            resources=linux_resources(pod, container, memory_capacity=memory_capacity),
            security_context=container_security(pod, container, image_user=image_user),
        ),
    )
