"""Pod sandboxes: the namespaces, network and files a pod's containers share, kept on disk.

A sandbox is no process here (no pause container): its network, IPC and UTS namespaces are held
by bind-mounted nsfs files (``namespaces``), its network is set up by the CNI plugins
(``cni``) inside that network namespace, and its resolv.conf, hostname and hosts files
(``podfiles``) sit in its state dir, ``<state_dir>/sandboxes/<id>/``, beside ``sandbox.json``,
which records the config as the kubelet sent it, the namespace paths, the network config used and
the CNI result. The engine can therefore restart without losing a pod: ``load`` reads every
record back, and a sandbox whose namespaces vanished (a reboot emptied /run) is NOTREADY.

Life: ``run`` (namespaces, files, CNI ADD; any failure undoes all of it, CNI DEL included) ->
``stop`` (CNI DEL with the cached result, namespaces released, NOTREADY; idempotent) ->
``remove`` (stop, then the state dir). Host-network pods skip the network namespace and CNI and
use the node's hostname; host-IPC pods skip the IPC namespace. Stopping and removing the pod's
containers is the runtime service's job, before it calls ``stop``/``remove`` here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import json_format

from engine.cri import namespaces, podfiles
from engine.cri.cni import CNI, Attachment, NetworkList, NetworkResult
from engine.cri.errors import AlreadyExists, CRIError, InvalidArgument, NetworkError
from engine.cri.filters import id_matches, labels_match, resolve_id
from engine.cri.proto import api_pb2 as pb

log = logging.getLogger(__name__)

READY, NOTREADY = "ready", "notready"
STATE_FILE = "sandbox.json"
IFNAME = "eth0"
# CRI port-mapping protocol enum -> the portmap plugin's protocol name
PROTOCOLS: dict[int, str] = {pb.TCP: "tcp", pb.UDP: "udp", pb.SCTP: "sctp"}


@dataclass
class Sandbox:
    """One pod sandbox as recorded on disk (mutable: state and network change over its life)."""

    id: str
    config: pb.PodSandboxConfig
    dir: Path
    created_at: int  # nanoseconds since the epoch
    runtime_handler: str = ""
    state: str = READY
    namespaces: dict[str, str] = field(default_factory=dict)  # kind -> pinned nsfs file
    host_network: bool = False
    host_ipc: bool = False
    host_pid: bool = False
    hostname: str = ""
    network: dict[str, Any] | None = None  # the conflist used at ADD (DEL must use the same)
    network_result: dict[str, Any] | None = None
    ips: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> pb.PodSandboxMetadata:
        return self.config.metadata

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def netns(self) -> str:
        return self.namespaces.get("net", "")

    @property
    def resolv_conf(self) -> Path:
        return self.dir / "resolv.conf"

    @property
    def hostname_file(self) -> Path:
        return self.dir / "hostname"

    @property
    def hosts_file(self) -> Path:
        return self.dir / "hosts"

    @property
    def log_directory(self) -> str:
        return self.config.log_directory

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config": json_format.MessageToDict(self.config, preserving_proto_field_name=True),
            "created_at": self.created_at,
            "runtime_handler": self.runtime_handler,
            "state": self.state,
            "namespaces": self.namespaces,
            "host_network": self.host_network,
            "host_ipc": self.host_ipc,
            "host_pid": self.host_pid,
            "hostname": self.hostname,
            "network": self.network,
            "network_result": self.network_result,
            "ips": self.ips,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, directory: Path) -> Sandbox:
        config = json_format.ParseDict(doc.get("config") or {}, pb.PodSandboxConfig(), ignore_unknown_fields=True)
        return cls(
            id=doc["id"],
            config=config,
            dir=directory,
            created_at=int(doc.get("created_at", 0)),
            runtime_handler=doc.get("runtime_handler", ""),
            state=doc.get("state", NOTREADY),
            namespaces=dict(doc.get("namespaces") or {}),
            host_network=bool(doc.get("host_network")),
            host_ipc=bool(doc.get("host_ipc")),
            host_pid=bool(doc.get("host_pid")),
            hostname=doc.get("hostname", ""),
            network=doc.get("network"),
            network_result=doc.get("network_result"),
            ips=list(doc.get("ips") or []),
        )


def _save(sandbox: Sandbox) -> None:
    path = sandbox.dir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    tmp.write_bytes(orjson.dumps(sandbox.to_dict(), option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def validate_config(config: pb.PodSandboxConfig) -> None:
    """Refuse what no sandbox can be made of (the kubelet always sends these)."""
    meta = config.metadata
    if not config.HasField("metadata") or not meta.name or not meta.namespace:
        raise InvalidArgument("sandbox config needs metadata with a name and a namespace")
    if config.log_directory and not os.path.isabs(config.log_directory):
        raise InvalidArgument(f"log directory {config.log_directory!r} must be an absolute path")
    for mapping in config.port_mappings:
        if not 0 < mapping.container_port < 65536 or not 0 <= mapping.host_port < 65536:
            raise InvalidArgument(f"invalid port mapping {mapping.host_port}:{mapping.container_port}")
    dns = config.dns_config
    podfiles.resolv_conf(servers=dns.servers, searches=dns.searches, options=dns.options)


def _default_hostname(config: pb.PodSandboxConfig) -> str:
    """The pod's name cut to a DNS label's 63 characters, as the kubelet cuts it."""
    return config.metadata.name[:63].rstrip("-.") or "pod"


def _pod_key(meta: pb.PodSandboxMetadata) -> tuple[str, str, str, int]:
    return (meta.name, meta.namespace, meta.uid, meta.attempt)


class SandboxManager:
    """Every sandbox of this engine, in memory and under ``state_dir/sandboxes``."""

    def __init__(
        self,
        *,
        state_dir: str | os.PathLike[str],
        run_dir: str | os.PathLike[str] = namespaces.DEFAULT_RUN_DIR,
        cni: CNI | None = None,
    ) -> None:
        self.dir = Path(state_dir) / "sandboxes"
        self.run_dir = Path(run_dir)
        self.cni = cni or CNI()
        self._sandboxes: dict[str, Sandbox] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------------------- lookups

    def load(self) -> None:
        """Read every recorded sandbox (blocking; once, at start-up)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.dir.iterdir()):
            path = entry / STATE_FILE
            try:
                sandbox = Sandbox.from_dict(orjson.loads(path.read_bytes()), directory=entry)
            except (OSError, orjson.JSONDecodeError, KeyError, ValueError, json_format.ParseError) as exc:
                log.warning("ignoring sandbox dir %s: %s", entry, exc)
                continue
            if sandbox.ready and not all(namespaces.is_held(p) for p in sandbox.namespaces.values()):
                sandbox.state = NOTREADY  # the host rebooted: its namespaces are gone
                _save(sandbox)
            self._sandboxes[sandbox.id] = sandbox

    def get(self, wanted: str) -> Sandbox:
        """The sandbox with this id or unique id prefix (NotFound otherwise)."""
        return self._sandboxes[resolve_id(wanted, self._sandboxes, what="pod sandbox")]

    def find(self, wanted: str) -> Sandbox | None:
        try:
            return self.get(wanted)
        except CRIError:
            return None

    def list(
        self, *, id_prefix: str = "", state: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Sandbox]:
        return [
            s
            for s in self._sandboxes.values()
            if id_matches(s.id, id_prefix)
            and (state is None or s.state == state)
            and labels_match(s.config.labels, labels or {})
        ]

    def all(self) -> Iterable[Sandbox]:
        return list(self._sandboxes.values())

    def lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    # ---------------------------------------------------------------------------------- run

    async def run(self, config: pb.PodSandboxConfig, *, runtime_handler: str = "") -> Sandbox:
        """Create and start a sandbox; all or nothing."""
        validate_config(config)
        options = config.linux.security_context.namespace_options
        host_network = options.network == pb.NODE
        sandbox_id = secrets.token_hex(32)
        sandbox = Sandbox(
            id=sandbox_id,
            config=config,
            dir=self.dir / sandbox_id,
            created_at=time.time_ns(),
            runtime_handler=runtime_handler,
            state=NOTREADY,  # until every part is set up
            host_network=host_network,
            host_ipc=options.ipc == pb.NODE,
            host_pid=options.pid == pb.NODE,
            hostname=socket.gethostname() if host_network else (config.hostname or _default_hostname(config)),
        )
        key = _pod_key(config.metadata)  # reserved at once (no await before the insert)
        if any(_pod_key(s.metadata) == key for s in self._sandboxes.values()):
            raise AlreadyExists(
                f"a sandbox for pod {config.metadata.namespace}/{config.metadata.name} "
                f"attempt {config.metadata.attempt} already exists"
            )
        self._sandboxes[sandbox_id] = sandbox
        try:
            async with self.lock(sandbox_id):
                await self._set_up(sandbox)
        except BaseException:
            self._sandboxes.pop(sandbox_id, None)
            self._locks.pop(sandbox_id, None)
            raise
        return sandbox

    async def _set_up(self, sandbox: Sandbox) -> None:
        try:
            await asyncio.to_thread(self._prepare_dirs, sandbox)
            # a host-network pod has the node's name, hence the node's UTS namespace too
            own = {"net": not sandbox.host_network, "ipc": not sandbox.host_ipc, "uts": not sandbox.host_network}
            kinds = [kind for kind, wanted in own.items() if wanted]
            sandbox.namespaces = await namespaces.create(
                run_dir=self.run_dir,
                sandbox_id=sandbox.id,
                kinds=kinds,
                hostname="" if sandbox.host_network else sandbox.hostname,
            )
            if not sandbox.host_network:
                await self._attach(sandbox)
            await asyncio.to_thread(self._write_files, sandbox)
            sandbox.state = READY
            await asyncio.to_thread(_save, sandbox)
        except BaseException:
            await asyncio.shield(self._undo(sandbox))
            raise

    def _prepare_dirs(self, sandbox: Sandbox) -> None:
        sandbox.dir.mkdir(parents=True)
        if sandbox.log_directory:
            Path(sandbox.log_directory).mkdir(parents=True, exist_ok=True)

    def _write_files(self, sandbox: Sandbox) -> None:
        dns = sandbox.config.dns_config
        podfiles.write_resolv_conf(sandbox.resolv_conf, servers=dns.servers, searches=dns.searches,
                                   options=dns.options)
        podfiles.write_hostname(sandbox.hostname_file, sandbox.hostname)
        podfiles.write_hosts(sandbox.hosts_file, hostname=sandbox.hostname, ips=sandbox.ips,
                             host_network=sandbox.host_network)

    def _attachment(self, sandbox: Sandbox) -> Attachment:
        meta = sandbox.metadata
        ports = [
            {
                "hostPort": m.host_port,
                "containerPort": m.container_port,
                "protocol": PROTOCOLS.get(m.protocol, "tcp"),
                **({"hostIP": m.host_ip} if m.host_ip else {}),
            }
            for m in sandbox.config.port_mappings
            if m.host_port > 0
        ]
        return Attachment(
            container_id=sandbox.id,
            netns=sandbox.netns,
            ifname=IFNAME,
            args={
                "IgnoreUnknown": "1",
                "K8S_POD_NAMESPACE": meta.namespace,
                "K8S_POD_NAME": meta.name,
                "K8S_POD_INFRA_CONTAINER_ID": sandbox.id,
                "K8S_POD_UID": meta.uid,
            },
            capability_args={"portMappings": ports} if ports else {},
        )

    async def _attach(self, sandbox: Sandbox) -> None:
        network = await self.cni.network()
        sandbox.network = {"name": network.name, "cniVersion": network.cni_version,
                           "plugins": [dict(p) for p in network.plugins]}
        await asyncio.to_thread(_save, sandbox)  # recorded first: a crash mid-ADD can still DEL
        result: NetworkResult = await self.cni.add(network, self._attachment(sandbox))
        if not result.ips:
            raise NetworkError(f"CNI network {network.name!r} gave the pod no IP address")
        sandbox.network_result = dict(result.document)
        sandbox.ips = list(result.ips)

    async def _detach(self, sandbox: Sandbox) -> None:
        """CNI DEL with what ADD used; after a failed ADD too (there is then no cached result)."""
        if sandbox.network is None or not sandbox.netns:
            return
        network = NetworkList(
            name=sandbox.network["name"],
            cni_version=sandbox.network["cniVersion"],
            plugins=tuple(sandbox.network["plugins"]),
        )
        await self.cni.delete(network, self._attachment(sandbox), prev_result=sandbox.network_result)
        sandbox.network = None
        sandbox.network_result = None
        sandbox.ips = []

    async def _undo(self, sandbox: Sandbox) -> None:
        """Release everything a failed ``run`` made, logging (not raising) what cannot be undone."""
        try:
            await self._detach(sandbox)
        except CRIError as exc:
            log.warning("sandbox %s: CNI DEL after a failed start: %s", sandbox.id[:12], exc)
        await namespaces.release(sandbox.namespaces)
        await asyncio.to_thread(shutil.rmtree, sandbox.dir, True)

    # ------------------------------------------------------------------------ stop and remove

    async def stop(self, sandbox: Sandbox) -> None:
        """Give the network back and release the namespaces; a stopped sandbox stays listed."""
        async with self.lock(sandbox.id):
            await self._detach(sandbox)  # raises on failure: the kubelet retries StopPodSandbox
            await namespaces.release(sandbox.namespaces)
            sandbox.namespaces = {}
            sandbox.state = NOTREADY
            if sandbox.dir.is_dir():
                await asyncio.to_thread(_save, sandbox)

    async def remove(self, sandbox: Sandbox) -> None:
        await self.stop(sandbox)
        async with self.lock(sandbox.id):
            await asyncio.to_thread(shutil.rmtree, sandbox.dir, True)
            self._sandboxes.pop(sandbox.id, None)
        self._locks.pop(sandbox.id, None)

    def status_info(self, sandbox: Sandbox) -> dict[str, str]:
        """Verbose PodSandboxStatus info: where things are, as JSON strings (CRI's convention)."""
        doc = {
            "namespaces": sandbox.namespaces,
            "stateDir": str(sandbox.dir),
            "network": sandbox.network and sandbox.network.get("name"),
            "cniResult": sandbox.network_result,
        }
        return {"info": orjson.dumps(doc).decode()}

