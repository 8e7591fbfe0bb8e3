"""``POST /containers/create``: Docker's request body turned into a ``ContainerConfig``.

The body is Docker's container ``Config`` with ``HostConfig`` and ``NetworkingConfig`` inside it.
Most fields map one to one, so they are rows of tables (Docker key, our field, converter); the rest
(resources, mounts, ports, namespaces, security options) have a small function each. Docker's
"unset" spellings (``0``, ``""``, ``null``) all become "not asked for". What the engine cannot do
(named volumes, user-defined networks, sharing another container's namespaces) is a 400 naming
it, never silently ignored. The request as sent is kept in ``ContainerConfig.extra["docker"]`` so
inspect can show the ``Config`` and ``HostConfig`` a client expects to read back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.containers.config import BindMount, ContainerConfig, PortMapping
from engine.daemon.errors import BadParameter, NotFound
from engine.runtime.resources import Resources

DOCKER_KEY = "docker"  # our key in ContainerConfig.extra
NETWORK_MODES = ("bridge", "none", "host")
NANO = 1_000_000_000


@dataclass(frozen=True)
class CreateRequest:
    config: ContainerConfig
    network_mode: str  # "bridge", "none" or "host"
    network_implicit: bool  # the client did not choose: Docker's "default"
    auto_remove: bool


# ------------------------------------------------------------------------------ typed access


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *, where: str) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind in (int, float):  # JSON true is not a number
        raise BadParameter(f"invalid {where}{key}: expected a number")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BadParameter(f"invalid {where}{key}: expected {_JSON_NAMES.get(names, names)}")
    return value


_JSON_NAMES = {"str": "a string", "bool": "a boolean", "int": "an integer", "list": "a list",
               "dict": "an object", "int/float": "a number", "list/str": "a list of strings"}


def _strings(doc: Mapping[str, Any], key: str, *, where: str, scalar: bool = False) -> list[str] | None:
    """A list of strings; with ``scalar`` one string is a one-item list (Docker's "strslice",
    how old clients send Cmd and Entrypoint)."""
    value = _get(doc, key, (list, str) if scalar else list, where=where)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise BadParameter(f"invalid {where}{key}: expected a list of strings")
    return list(value)


def _string_map(doc: Mapping[str, Any], key: str, *, where: str) -> dict[str, str]:
    value = _get(doc, key, dict, where=where) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadParameter(f"invalid {where}{key}: expected an object of strings")
    return dict(value)


def _positive(doc: Mapping[str, Any], key: str, *, where: str) -> int | None:
    """Docker's "0 means unset" integers."""
    value = _get(doc, key, int, where=where)
    return None if not value else value


# ------------------------------------------------------------------------------- sub-parsers


def _resources(host: Mapping[str, Any]) -> Resources:
    w = "HostConfig."
    nano = _get(host, "NanoCpus", int, where=w)
    pids = _get(host, "PidsLimit", int, where=w)
    swap = _get(host, "MemorySwap", int, where=w)
    if nano and (_get(host, "CpuQuota", int, where=w) or _get(host, "CpuPeriod", int, where=w)):
        raise BadParameter("conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
    memory = _get(host, "Memory", int, where=w)
    if memory is not None and memory < 0:
        raise BadParameter(f"invalid memory limit {memory}: must not be negative")
    return Resources(
        memory=memory or None,
        memory_swap=swap if swap else None,
        cpus=nano / NANO if nano else None,
        cpu_shares=_positive(host, "CpuShares", where=w),
        cpu_quota=_positive(host, "CpuQuota", where=w),
        cpu_period=_positive(host, "CpuPeriod", where=w),
        cpuset_cpus=_get(host, "CpusetCpus", str, where=w) or None,
        pids_limit=pids if pids and pids > 0 else None,
    )


def _mounts(host: Mapping[str, Any]) -> tuple[list[BindMount], dict[str, str]]:
    binds = [_bind(text) for text in _strings(host, "Binds", where="HostConfig.") or []]
    tmpfs = _string_map(host, "Tmpfs", where="HostConfig.")
    for item in _get(host, "Mounts", list, where="HostConfig.") or []:
        if not isinstance(item, dict):
            raise BadParameter("invalid HostConfig.Mounts: expected a list of objects")
        kind, target = item.get("Type", ""), item.get("Target", "")
        if kind == "bind":
            options = item.get("BindOptions") or {}
            binds.append(BindMount(source=item.get("Source", ""), destination=target,
                                   readonly=bool(item.get("ReadOnly")),
                                   propagation=options.get("Propagation") or "rprivate"))
        elif kind == "tmpfs":
            options = item.get("TmpfsOptions") or {}
            extra = [f"size={options['SizeBytes']}"] if options.get("SizeBytes") else []
            extra += [f"mode={options['Mode']:o}"] if options.get("Mode") else []
            tmpfs[target] = ",".join(extra + (["ro"] if item.get("ReadOnly") else []))
        else:
            raise BadParameter(f"mount type {kind!r} is not supported (only bind and tmpfs)")
    return binds, tmpfs


def _bind(text: str) -> BindMount:
    source = text.split(":", 1)[0]
    if source and not source.startswith("/"):
        raise BadParameter(f"invalid volume specification {text!r}: named volumes are not supported, "
                           "give an absolute host path")
    return BindMount.parse(text)


def _ports(host: Mapping[str, Any]) -> list[PortMapping]:
    out = []
    for key, bindings in (_get(host, "PortBindings", dict, where="HostConfig.") or {}).items():
        port, _, proto = key.partition("/")
        for binding in bindings or [{}]:
            host_port = str((binding or {}).get("HostPort") or "0")
            if "-" in host_port or "-" in port:
                raise BadParameter(f"port ranges are not supported: {key} -> {host_port}")
            try:
                mapping = PortMapping(container_port=int(port), host_port=int(host_port),
                                      protocol=proto or "tcp", host_ip=(binding or {}).get("HostIp") or "")
            except ValueError:
                raise BadParameter(f"invalid port binding {key} -> {host_port}") from None
            mapping.validate()
            out.append(mapping)
    return out


def _namespaces(host: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, kind in (("IpcMode", "ipc"), ("PidMode", "pid"), ("UTSMode", "uts")):
        mode = _get(host, key, str, where="HostConfig.") or ""
        if mode == "host":
            out[kind] = "host"
        elif mode not in ("", "private", "shareable"):
            raise BadParameter(f"{key} {mode!r} is not supported (only host or private)")
    return out


def _seccomp(host: Mapping[str, Any]) -> str:
    chosen = "default"
    for option in _strings(host, "SecurityOpt", where="HostConfig.") or []:
        key, _, value = option.replace(":", "=", 1).partition("=")
        if key == "seccomp" and value in ("unconfined", "default"):
            chosen = value
        elif key in ("no-new-privileges", "label", "apparmor"):
            continue  # no-new-privileges is always on; no LSMs here
        else:
            raise BadParameter(f"invalid security option {option!r}")
    return chosen


def _ulimits(host: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    out = {}
    for item in _get(host, "Ulimits", list, where="HostConfig.") or []:
        try:
            out[str(item["Name"])] = (int(item["Soft"]), int(item["Hard"]))
        except (KeyError, TypeError, ValueError):
            raise BadParameter("invalid HostConfig.Ulimits: want [{Name, Soft, Hard}]") from None
    return out


def _restart(host: Mapping[str, Any]) -> str:
    policy = _get(host, "RestartPolicy", dict, where="HostConfig.") or {}
    name = policy.get("Name") or "no"
    retries = policy.get("MaximumRetryCount") or 0
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def network_mode(host: Mapping[str, Any]) -> tuple[str, bool]:
    """(mode, implicit): Docker's "default" and "" mean the bridge, chosen for the client."""
    mode = _get(host, "NetworkMode", str, where="HostConfig.") or "default"
    if mode == "default":
        return "bridge", True
    if mode in NETWORK_MODES:
        return mode, False
    if mode.startswith("container:"):
        raise BadParameter("sharing another container's network (--network container:...) is not supported")
    raise NotFound(f"network {mode} not found")


# ----------------------------------------------------------------------------------- tables

Convert = Callable[[Mapping[str, Any], str, str], Any]


def _text(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    return _get(doc, key, str, where=where) or None


def _flag(doc: Mapping[str, Any], key: str, where: str) -> bool:
    return bool(_get(doc, key, bool, where=where))


def _entrypoint(doc: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    value = _strings(doc, key, where=where, scalar=True)
    return [] if value == [""] else value  # --entrypoint "" clears the image's


# (Docker Config key, ContainerConfig field, converter)
_CONFIG_FIELDS: tuple[tuple[str, str, Convert], ...] = (
    ("Cmd", "command", lambda d, k, w: _strings(d, k, where=w, scalar=True)),
    ("Entrypoint", "entrypoint", _entrypoint),
    ("Env", "env", lambda d, k, w: tuple(_strings(d, k, where=w) or ())),
    ("WorkingDir", "workdir", _text),
    ("User", "user", _text),
    ("Hostname", "hostname", _text),
    ("Labels", "labels", lambda d, k, w: _string_map(d, k, where=w)),
    ("Tty", "tty", _flag),
    ("OpenStdin", "stdin", _flag),
    ("StdinOnce", "stdin_once", _flag),
    ("StopSignal", "stop_signal", _text),
    ("StopTimeout", "stop_timeout", lambda d, k, w: _get(d, k, int, where=w)),
)
# (Docker HostConfig key, ContainerConfig field, converter)
_HOST_FIELDS: tuple[tuple[str, str, Convert], ...] = (
    ("Privileged", "privileged", _flag),
    ("ReadonlyRootfs", "readonly_rootfs", _flag),
    ("CapAdd", "cap_add", lambda d, k, w: tuple(_strings(d, k, where=w) or ())),
    ("CapDrop", "cap_drop", lambda d, k, w: tuple(_strings(d, k, where=w) or ())),
    ("UsernsMode", "userns", lambda d, k, w: None if _text(d, k, w) == "host" else _text(d, k, w)),
    ("Sysctls", "sysctls", lambda d, k, w: _string_map(d, k, where=w)),
    ("ShmSize", "shm_size", lambda d, k, w: _positive(d, k, where=w)),
    ("OomScoreAdj", "oom_score_adj", lambda d, k, w: _positive(d, k, where=w)),
)


def parse(body: Any, *, name: str | None) -> CreateRequest:
    """The create request ``body`` (already JSON-decoded) as a validated ``CreateRequest``;
    ``BadParameter``/``NotFound`` (or the config's ``InvalidArgument``) for anything wrong."""
    if not isinstance(body, dict):
        raise BadParameter("config cannot be empty in order to create a container")
    image = _get(body, "Image", str, where="")
    if not image:
        raise BadParameter("no image specified: the request's Image is empty")
    host = _get(body, "HostConfig", dict, where="") or {}
    fields: dict[str, Any] = {"image": image, "name": name or None}
    for key, field_name, convert in _CONFIG_FIELDS:
        if (value := convert(body, key, "")) is not None:
            fields[field_name] = value
    for key, field_name, convert in _HOST_FIELDS:
        if (value := convert(host, key, "HostConfig.")) is not None:
            fields[field_name] = value
    mode, implicit = network_mode(host)
    binds, tmpfs = _mounts(host)
    fields.update(
        resources=_resources(host),
        mounts=tuple(binds),
        tmpfs=tmpfs,
        ports=tuple(_ports(host)),
        namespace_paths=_namespaces(host),
        seccomp=_seccomp(host),
        ulimits=_ulimits(host),
        restart_policy=_restart(host),
        network="host" if mode == "host" else "none",  # bridge: the networking layer sets a netns path
        extra={DOCKER_KEY: {"Config": {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")},
                            "HostConfig": {**host, "NetworkMode": mode}}},
    )
    config = ContainerConfig(**fields)
    config.validate()
    return CreateRequest(config=config, network_mode=mode, network_implicit=implicit,
                         auto_remove=bool(_get(host, "AutoRemove", bool, where="HostConfig.")))
