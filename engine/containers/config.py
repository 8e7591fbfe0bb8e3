"""What a caller asks for when creating a container: ``ContainerConfig`` and its parts.

The record is deliberately close to what ``docker run`` and the CRI's ContainerConfig carry, so the
Docker API, the CRI server and the CLI can all fill it in. It is validated once (``validate``), raising
``InvalidArgument`` with a one-line reason, before anything is created; it is persisted as JSON in
the container's directory (``to_dict``/``from_dict``) so a restarted engine knows what it ran.
``extra`` is an opaque, JSON-serialisable dict the layers above may keep with the container (Docker's
HostConfig as sent, CRI metadata such as the pod sandbox id) without this package knowing its shape.
Ports are recorded only: wiring them is the network layer's job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import orjson

from engine.containers.errors import InvalidArgument
from engine.containers.names import check_name, parse_signal
from engine.runtime.errors import SpecError
from engine.runtime.idmap import IdMapping
from engine.runtime.resources import Resources

NETWORK_MODES = ("none", "host")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
MOUNT_FLAGS = {"ro": True, "rw": False}
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_ENV_KEY = re.compile(r"[^=\0]+")


def _check_container_path(path: str, *, what: str) -> str:
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid mount config: {what} {path!r} must be an absolute path")
    if any(part == ".." for part in path.split("/")):
        raise InvalidArgument(f"invalid mount config: {what} {path!r} must not contain '..'")
    if "\0" in path or "," in path:
        raise InvalidArgument(f"invalid mount config: {what} {path!r} contains a forbidden character")
    return os.path.normpath(path)


@dataclass(frozen=True)
class BindMount:
    """A host path bound into the container (``-v /host:/ctr[:ro]``)."""

    source: str
    destination: str
    readonly: bool = False
    propagation: str = "rprivate"

    @classmethod
    def parse(cls, text: str) -> BindMount:
        """``/host:/ctr``, ``/host:/ctr:ro`` or ``/host:/ctr:ro,rshared``."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise InvalidArgument(f"invalid volume specification {text!r}: want /host:/container[:ro]")
        readonly, propagation = False, "rprivate"
        for opt in (parts[2].split(",") if len(parts) == 3 else []):
            if opt in MOUNT_FLAGS:
                readonly = MOUNT_FLAGS[opt]
            elif opt in PROPAGATIONS:
                propagation = opt
            else:
                raise InvalidArgument(f"invalid volume specification {text!r}: unknown option {opt!r}")
        mount = cls(source=parts[0], destination=parts[1], readonly=readonly, propagation=propagation)
        mount.validate()
        return mount

    def validate(self) -> None:
        _check_container_path(self.source, what="bind source")
        dest = _check_container_path(self.destination, what="destination")
        if dest == "/":
            raise InvalidArgument("invalid mount config: destination can't be '/'")
        if self.propagation not in PROPAGATIONS:
            raise InvalidArgument(f"invalid mount config: unknown propagation {self.propagation!r}")


@dataclass(frozen=True)
class PortMapping:
    """``-p [ip:]host:container[/proto]``, recorded for the network layer."""

    container_port: int
    host_port: int = 0
    protocol: str = "tcp"
    host_ip: str = ""

    @classmethod
    def parse(cls, text: str) -> PortMapping:
        spec, _, proto = text.partition("/")
        parts = spec.rsplit(":", 2)
        try:
            ports = [int(p) if p else 0 for p in parts[-2:]]
        except ValueError:
            raise InvalidArgument(f"invalid port specification {text!r}") from None
        mapping = cls(
            container_port=ports[-1],
            host_port=ports[0] if len(parts) > 1 else 0,
            protocol=proto or "tcp",
            host_ip=parts[0] if len(parts) == 3 else "",
        )
        mapping.validate()
        return mapping

    def validate(self) -> None:
        if not 0 < self.container_port < 65536 or not 0 <= self.host_port < 65536:
            raise InvalidArgument(f"invalid port mapping {self.host_port}:{self.container_port}")
        if self.protocol not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid port protocol {self.protocol!r}")


@dataclass(frozen=True)
class ContainerConfig:
    """Everything ``ContainerManager.create`` needs; unset fields take the image's or Docker's default."""

    image: str
    name: str | None = None
    command: Sequence[str] | None = None  # replaces the image's Cmd
    entrypoint: Sequence[str] | None = None  # replaces the image's Entrypoint ([] clears it)
    env: Sequence[str] = ()  # "KEY=value", added to (and overriding) the image's Env
    workdir: str | None = None
    user: str | None = None  # "user[:group]", names resolved in the image's /etc/passwd and /etc/group
    hostname: str | None = None  # default: the short container id
    mounts: Sequence[BindMount] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)  # container path -> extra mount options
    ports: Sequence[PortMapping] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)  # passed to the OCI spec
    tty: bool = False
    stdin: bool = False  # keep the container's stdin open for attach
    stdin_once: bool = False  # close it when the first attached client detaches
    resources: Resources = field(default_factory=Resources)
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    seccomp: str = "default"  # or "unconfined"
    network: str = "none"  # "none" (own empty netns), "host", or a netns path to join
    namespace_paths: Mapping[str, str] = field(default_factory=dict)  # "ipc"/"uts"/"pid" -> path or "host"
    userns: str | None = None  # None (host ids), "auto" (a free 65536-id range) or "HOSTID[:SIZE]"
    ulimits: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # "nofile" -> (soft, hard)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    shm_size: int | None = None
    oom_score_adj: int | None = None
    stop_signal: str | None = None  # default: the image's StopSignal, else SIGTERM
    stop_timeout: int | None = None  # seconds; default 10
    restart_policy: str = "no"  # recorded for the daemon: no | always | unless-stopped | on-failure[:N]
    log_size_max: int | None = None  # bytes; conmon starts the log afresh past this
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ``InvalidArgument`` for anything malformed (nothing here touches the host)."""
        if not self.image or not isinstance(self.image, str):
            raise InvalidArgument("no image given")
        if self.name is not None:
            check_name(self.name)
        for key in ("command", "entrypoint"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, str) or not all(isinstance(a, str) for a in value)):
                raise InvalidArgument(f"{key} must be a list of strings")
        for entry in self.env:
            key, eq, _ = entry.partition("=")
            if not eq or not _ENV_KEY.fullmatch(key):
                raise InvalidArgument(f"invalid environment variable {entry!r}: want KEY=value")
        if self.workdir is not None and self.workdir and not self.workdir.startswith("/"):
            raise InvalidArgument(f"the working directory {self.workdir!r} is invalid, it needs to be an absolute path")
        if self.hostname is not None and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}", self.hostname):
            raise InvalidArgument(f"invalid hostname {self.hostname!r}")
        for mount in self.mounts:
            mount.validate()
        for path in self.tmpfs:
            _check_container_path(path, what="tmpfs destination")
        for port in self.ports:
            port.validate()
        if self.seccomp not in ("default", "unconfined"):
            raise InvalidArgument(f"seccomp must be 'default' or 'unconfined', not {self.seccomp!r}")
        if self.network not in NETWORK_MODES and not self.network.startswith("/"):
            raise InvalidArgument(f"network must be 'none', 'host' or a netns path, not {self.network!r}")
        self.id_mapping(None)
        if self.stop_signal is not None:
            parse_signal(self.stop_signal)
        if self.stop_timeout is not None and self.stop_timeout < 0:
            raise InvalidArgument(f"stop timeout must not be negative: {self.stop_timeout}")
        policy, _, retries = self.restart_policy.partition(":")
        if policy not in RESTART_POLICIES or (retries and (policy != "on-failure" or not retries.isdigit())):
            raise InvalidArgument(f"invalid restart policy {self.restart_policy!r}")
        if self.log_size_max is not None and self.log_size_max <= 0:
            raise InvalidArgument(f"log size max must be positive, not {self.log_size_max}")
        if self.shm_size is not None and self.shm_size <= 0:
            raise InvalidArgument(f"shm size must be positive, not {self.shm_size}")
        try:
            self.resources.validate()
        except SpecError as exc:
            raise InvalidArgument(str(exc)) from None

    def id_mapping(self, auto: IdMapping | None) -> IdMapping | None:
        """The user-namespace mapping asked for (``auto`` is what "auto" resolved to)."""
        if self.userns in (None, "", "host"):
            return None
        if self.userns == "auto":
            return auto
        try:
            return IdMapping.parse(self.userns)
        except SpecError as exc:
            raise InvalidArgument(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON document (lists, not tuples), as persisted in the container's directory."""
        return orjson.loads(orjson.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ContainerConfig:
        """The inverse of ``to_dict``; unknown keys are ignored (written by a newer engine)."""
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: v for k, v in doc.items() if k in known}
        try:
            kw["mounts"] = tuple(BindMount(**m) for m in kw.get("mounts", ()))
            kw["ports"] = tuple(PortMapping(**p) for p in kw.get("ports", ()))
            kw["resources"] = Resources(**(kw.get("resources") or {}))
            kw["ulimits"] = {k: (int(v[0]), int(v[1])) for k, v in (kw.get("ulimits") or {}).items()}
            return cls(**kw)
        except (TypeError, ValueError, IndexError) as exc:
            raise InvalidArgument(f"invalid container config: {exc}") from None

    def with_name(self, name: str) -> ContainerConfig:
        return replace(self, name=name)
