"""A CRI ``ContainerConfig`` in a sandbox, turned into the engine's ``ContainerConfig``.

Kubernetes semantics are mapped onto Docker's: ``command`` replaces the image's entrypoint (and
drops its cmd), ``args`` replace the cmd. The container joins the sandbox's namespaces by path
(network, IPC, UTS; the host's for host-network/host-IPC pods), gets the pod's resolv.conf,
hostname and hosts files unless it mounts its own, and the pod's sysctls. CRI mount propagation,
seccomp profiles, run-as user/group/name and Linux resources (0 = unset) are translated by tables.
What the engine cannot honour (devices, image volumes, user namespaces, a pod-wide PID namespace,
localhost seccomp profiles) is refused with INVALID_ARGUMENT rather than silently ignored.

Everything the CRI must hand back unchanged (metadata, image spec, labels, annotations, log path,
the mounts as asked) travels in ``ContainerConfig.extra["cri"]`` (``CriInfo``), so it lives in the
container's own ``config.json`` and survives an engine restart with it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from google.protobuf import json_format

from engine.containers.config import BindMount, ContainerConfig
from engine.cri.errors import InvalidArgument
from engine.cri.proto import api_pb2 as pb
from engine.cri.sandboxes import Sandbox
from engine.runtime.resources import Resources

EXTRA_KEY = "cri"
ETC_FILES = ("resolv.conf", "hostname", "hosts")
PROPAGATION: dict[int, str] = {
    pb.PROPAGATION_PRIVATE: "rprivate",
    pb.PROPAGATION_HOST_TO_CONTAINER: "rslave",
    pb.PROPAGATION_BIDIRECTIONAL: "rshared",
}
# SecurityProfile type -> the engine's seccomp setting (None: refused)
SECCOMP_TYPES: dict[int, str | None] = {
    pb.SecurityProfile.RuntimeDefault: "default",
    pb.SecurityProfile.Unconfined: "unconfined",
    pb.SecurityProfile.Localhost: None,
}
# the deprecated seccomp_profile_path values ("" means unconfined, as the CRI says)
SECCOMP_PATHS: dict[str, str] = {"": "unconfined", "unconfined": "unconfined", "runtime/default": "default",
                                 "docker/default": "default"}
_NAME_PART = re.compile(r"[a-zA-Z0-9_.-]+")
MAX_NAME = 254


@dataclass(frozen=True)
class CriInfo:
    """What the CRI layer keeps with an engine container (``extra["cri"]``)."""

    sandbox_id: str
    name: str
    attempt: int
    image: dict[str, Any]  # the ImageSpec as sent, as a JSON dict
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""  # absolute: sandbox log_directory / ContainerConfig.log_path ("" = none)
    mounts: list[dict[str, Any]] = field(default_factory=list)  # the CRI Mounts as sent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> CriInfo | None:
        doc = extra.get(EXTRA_KEY)
        if not isinstance(doc, Mapping):
            return None
        try:
            return cls(**doc)
        except TypeError:
            return None

    @property
    def image_spec(self) -> pb.ImageSpec:
        return json_format.ParseDict(self.image, pb.ImageSpec(), ignore_unknown_fields=True)

    @property
    def mount_messages(self) -> list[pb.Mount]:
        return [json_format.ParseDict(m, pb.Mount(), ignore_unknown_fields=True) for m in self.mounts]


def _dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def engine_name(config: pb.ContainerConfig, sandbox: Sandbox) -> str:
    """A unique, readable engine name: ``k8s_<ctr>_<pod>_<ns>_<uid>_<attempt>`` as dockershim
    named them, or ``k8s_<ctr>_<sandbox id>_<attempt>`` when the parts do not fit a name."""
    meta, pod = config.metadata, sandbox.metadata
    parts = [meta.name, pod.name, pod.namespace, pod.uid]
    name = "_".join(["k8s", *parts, str(meta.attempt)])
    if len(name) <= MAX_NAME and all(_NAME_PART.fullmatch(p) for p in parts):
        return name
    return f"k8s_{meta.name if _NAME_PART.fullmatch(meta.name) else 'ctr'}_{sandbox.id}_{meta.attempt}"[:MAX_NAME]


def resources(linux: pb.LinuxContainerResources) -> Resources:
    """CRI limits (0 = unset) as engine ``Resources``."""
    return Resources(
        memory=linux.memory_limit_in_bytes or None,
        memory_swap=linux.memory_swap_limit_in_bytes or None,
        cpu_shares=linux.cpu_shares or None,
        cpu_quota=linux.cpu_quota or None,
        cpu_period=linux.cpu_period or None,
        cpuset_cpus=linux.cpuset_cpus or None,
    )


def resources_message(limits: Resources, *, oom_score_adj: int | None) -> pb.LinuxContainerResources:
    """The inverse of ``resources``: engine limits as CRI fields (unset = 0)."""
    return pb.LinuxContainerResources(
        memory_limit_in_bytes=limits.memory or 0,
        memory_swap_limit_in_bytes=limits.memory_swap or 0,
        cpu_shares=limits.cpu_shares or 0,
        cpu_quota=limits.cpu_quota or 0,
        cpu_period=limits.cpu_period or 0,
        cpuset_cpus=limits.cpuset_cpus or "",
        oom_score_adj=oom_score_adj or 0,
    )


def _user(ctx: pb.LinuxContainerSecurityContext) -> str | None:
    if ctx.HasField("run_as_user") and ctx.run_as_username:
        raise InvalidArgument("run_as_user and run_as_username cannot both be set")
    if ctx.HasField("run_as_group") and not (ctx.HasField("run_as_user") or ctx.run_as_username):
        raise InvalidArgument("run_as_group needs run_as_user or run_as_username")
    user = str(ctx.run_as_user.value) if ctx.HasField("run_as_user") else ctx.run_as_username
    if not user:
        return None
    return f"{user}:{ctx.run_as_group.value}" if ctx.HasField("run_as_group") else user


def _seccomp(ctx: pb.LinuxContainerSecurityContext) -> str:
    if ctx.HasField("seccomp"):
        chosen = SECCOMP_TYPES.get(ctx.seccomp.profile_type)
        if chosen is None:
            raise InvalidArgument("localhost seccomp profiles are not supported; use RuntimeDefault or Unconfined")
        return chosen
    path = ctx.seccomp_profile_path
    if path not in SECCOMP_PATHS:
        raise InvalidArgument(f"seccomp profile {path!r} is not supported; use runtime/default or unconfined")
    return SECCOMP_PATHS[path]


def _bind(mount: pb.Mount) -> BindMount:
    if mount.HasField("image") and mount.image.image:
        raise InvalidArgument("image volume mounts are not supported")
    if not mount.host_path:
        raise InvalidArgument(f"mount {mount.container_path!r} has no host path")
    if mount.uidMappings or mount.gidMappings:
        raise InvalidArgument("idmapped mounts are not supported")
    if mount.propagation not in PROPAGATION:
        raise InvalidArgument(f"unknown mount propagation {mount.propagation}")
    source = os.path.realpath(mount.host_path)  # the CRI says: follow symlinks on the host
    return BindMount(
        source=source,
        destination=mount.container_path,
        readonly=mount.readonly or mount.recursive_read_only,
        propagation=PROPAGATION[mount.propagation],
    )


def _namespaces(ctx: pb.LinuxContainerSecurityContext, sandbox: Sandbox, *, target_pid: int) -> tuple[str, dict]:
    """(network, namespace_paths) for a container of ``sandbox``."""
    opts = ctx.namespace_options
    if opts.HasField("userns_options") and opts.userns_options.mode not in (pb.NODE,):
        if opts.userns_options.uids or opts.userns_options.gids:
            raise InvalidArgument("user namespaces for pods are not supported")
    paths: dict[str, str] = {}
    if sandbox.host_network:
        network = "host"
        paths["uts"] = "host"
    else:
        network = sandbox.netns
        paths["uts"] = sandbox.namespaces["uts"]
    paths["ipc"] = "host" if sandbox.host_ipc else sandbox.namespaces["ipc"]
    if opts.pid == pb.NODE or sandbox.host_pid:
        paths["pid"] = "host"
    elif opts.pid == pb.TARGET:
        if target_pid <= 0:
            raise InvalidArgument(f"target container {opts.target_id!r} for the PID namespace is not running")
        paths["pid"] = f"/proc/{target_pid}/ns/pid"
    # POD-wide PID namespaces need a pod init process, which this runtime has not: each container
    # gets its own (what the kubelet asks for unless shareProcessNamespace is set)
    return network, paths


def _pod_file_mounts(sandbox: Sandbox, wanted: set[str]) -> list[BindMount]:
    files = {"resolv.conf": sandbox.resolv_conf, "hostname": sandbox.hostname_file, "hosts": sandbox.hosts_file}
    return [
        BindMount(source=str(files[name]), destination=f"/etc/{name}")
        for name in ETC_FILES
        if f"/etc/{name}" not in wanted
    ]


def log_path(config: pb.ContainerConfig, sandbox: Sandbox) -> str:
    """Where the container's log goes: the sandbox's log dir joined with the container's log path."""
    if not config.log_path:
        return ""
    if os.path.isabs(config.log_path) or ".." in config.log_path.split("/"):
        raise InvalidArgument(f"log path {config.log_path!r} must be relative to the sandbox's log directory")
    if not sandbox.log_directory:
        raise InvalidArgument("a container log path needs the sandbox's log_directory")
    return os.path.join(sandbox.log_directory, config.log_path)


def translate(
    config: pb.ContainerConfig, sandbox: Sandbox, *, image: str, target_pid: int = 0
) -> ContainerConfig:
    """The engine config for CRI ``config`` in ``sandbox``; ``image`` is the resolved image id."""
    if not config.HasField("metadata") or not config.metadata.name:
        raise InvalidArgument("container config needs metadata with a name")
    if config.devices or config.CDI_devices:
        raise InvalidArgument("devices are not supported by this runtime")
    ctx = config.linux.security_context
    binds = [_bind(m) for m in config.mounts]
    wanted = {os.path.normpath(b.destination) for b in binds}
    network, ns_paths = _namespaces(ctx, sandbox, target_pid=target_pid)
    linux_resources = config.linux.resources
    info = CriInfo(
        sandbox_id=sandbox.id,
        name=config.metadata.name,
        attempt=config.metadata.attempt,
        image=_dict(config.image),
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        log_path=log_path(config, sandbox),
        mounts=[_dict(m) for m in config.mounts],
    )
    return ContainerConfig(
        image=image,
        name=engine_name(config, sandbox),
        entrypoint=list(config.command) if config.command else None,
        command=list(config.args) if config.args else None,
        env=[f"{kv.key}={kv.value}" for kv in config.envs],
        workdir=config.working_dir or None,
        user=_user(ctx),
        hostname=None if sandbox.host_network else sandbox.hostname,
        mounts=[*binds, *_pod_file_mounts(sandbox, wanted)],
        labels=dict(config.labels),
        tty=config.tty,
        stdin=config.stdin,
        stdin_once=config.stdin_once,
        resources=resources(linux_resources),
        readonly_rootfs=ctx.readonly_rootfs,
        privileged=ctx.privileged,
        cap_add=list(ctx.capabilities.add_capabilities),
        cap_drop=list(ctx.capabilities.drop_capabilities),
        seccomp="unconfined" if ctx.privileged else _seccomp(ctx),
        network=network,
        namespace_paths=ns_paths,
        sysctls=dict(sandbox.config.linux.sysctls),
        oom_score_adj=linux_resources.oom_score_adj or None,
        extra={EXTRA_KEY: info.to_dict()},
    )
