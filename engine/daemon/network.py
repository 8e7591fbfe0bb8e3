"""Container networking of the Docker API: ``none``, ``host`` and the ``bridge`` network (``-p`` too).

``none`` and ``host`` need nothing from us (the runtime gives the container a new empty network
namespace, or none). ``bridge`` is Docker's default: each container gets a network namespace of
its own, pinned by a bind-mounted nsfs file (``engine.cri.namespaces``, which also brings ``lo``
up), and is plugged into a ``pinnace0`` Linux bridge by the CNI reference plugins through
``engine.cri.cni``: ``bridge`` with ``host-local`` IPAM, then ``portmap`` for published ports. The
daemon writes that network list itself under its root. The subnet is 10.89.0.0/16 rather than
podman's 10.88.0.0/16, so both engines' bridges can coexist on one host (the benchmark runs them
side by side). Addresses are allocated in one host-wide store (``IPAM_DIR``, on /run so a reboot
forgets them with the namespaces): every daemon on the host plugs into the same bridge, and
``host-local`` hands addresses out round-robin from it, so no address is given to two containers,
nor straight back to a new interface while the host still caches the old one's MAC. The ADD
result is kept on disk next to the namespace so that a restarted daemon can still DEL it, and so
that inspect can show the address. If the CNI modules or plugins are missing,
``bridge`` is unavailable and says why.

Plugging in (~35 ms) and especially unplugging (the bridge plugin's DEL: ~60-90 ms of veth and
iptables work) would dominate a short ``run --rm``, so neither is on that path: endpoints without
published ports are kept ready (``acquire`` takes one; a new one is made in the background),
``release`` unplugs in the background, and ``recycle`` puts the endpoint of a removed container
back among the ready ones instead, when that container could not have changed its namespace
(the caller decides: no published ports, no NET_ADMIN, not privileged, no sysctls; /proc/sys is
read-only in containers, and sockets die with their processes). ``drain`` waits for background
work at shutdown and ``collect`` unplugs whatever a previous daemon left that no container uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import secrets
import shutil
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.containers.config import PortMapping
from engine.daemon.errors import ApiError

log = logging.getLogger(__name__)

BRIDGE_NAME = "pinnace0"
NETWORK_NAME = "pinnace"
SUBNET = "10.89.0.0/16"
GATEWAY = "10.89.0.1"
PLUGINS = ("bridge", "host-local", "portmap", "loopback")
CNI_VERSION = "1.0.0"
IPAM_DIR = Path("/run/pinnace/ipam")
POOL_SIZE = 1  # ready endpoints made ahead of need
POOL_MAX = 8  # ready endpoints kept at most (recycled ones included)


class NetworkUnavailable(ApiError):
    status = 400


@dataclass(frozen=True)
class Endpoint:
    """A container's place on the bridge: what inspect shows and what DEL needs."""

    netns: str
    ip: str = ""
    prefix: int = 0
    gateway: str = ""
    mac: str = ""
    ports: tuple[dict[str, Any], ...] = ()  # CNI portMappings (hostPort always concrete)
    result: dict[str, Any] = field(default_factory=dict)


def conflist(ipam_dir: Path) -> dict[str, Any]:
    """The bridge network the daemon writes for itself."""
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE_NAME,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": SUBNET, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def _free_port(protocol: str, host_ip: str) -> int:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        return int(s.getsockname()[1])


def port_mappings(ports: Sequence[PortMapping]) -> tuple[dict[str, Any], ...]:
    """CNI ``portMappings``; a host port of 0 (``-p 80``) gets a free one now, as Docker does."""
    out = []
    for p in ports:
        host_port = p.host_port or _free_port(p.protocol, p.host_ip)
        out.append({"hostPort": host_port, "containerPort": p.container_port, "protocol": p.protocol,
                    "hostIP": p.host_ip})
    return tuple(out)


def _first_ip(result: dict[str, Any]) -> tuple[str, int, str, str]:
    """(ip, prefix length, gateway, mac) of the container's interface in a CNI result."""
    interfaces = result.get("interfaces") or []
    for entry in result.get("ips") or []:
        address = entry.get("address", "")
        if "/" not in address or ":" in address:
            continue
        index = entry.get("interface")
        if isinstance(index, int) and 0 <= index < len(interfaces) and not interfaces[index].get("sandbox"):
            continue  # the bridge's own address
        ip, _, prefix = address.partition("/")
        mac = interfaces[index].get("mac", "") if isinstance(index, int) and index < len(interfaces) else ""
        return ip, int(prefix), entry.get("gateway", ""), mac
    return "", 0, "", ""


async def _forget_neighbour(ip: str) -> None:
    """Drop the host's ARP entry for ``ip`` on the bridge: it may still name the MAC of an earlier
    interface with that address, and the host would send there for seconds (best effort)."""
    with contextlib.suppress(OSError):
        proc = await asyncio.create_subprocess_exec("ip", "neigh", "del", ip, "dev", BRIDGE_NAME,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()


class Networks:
    """Bridge endpoints of one daemon root (``none``/``host`` need no state)."""

    def __init__(self, root: Path, *, bin_dirs: Sequence[str] | None = None, ipam_dir: Path = IPAM_DIR) -> None:
        self.dir = root / "network"
        self._bin_dirs = bin_dirs
        self._ipam_dir = ipam_dir
        self._cni: Any = None
        self._namespaces: Any = None
        self._pool: list[tuple[str, Endpoint]] = []
        self._refilling: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.unavailable_reason = self._load_modules()

    def _load_modules(self) -> str:
        try:
            cni = importlib.import_module("engine.cri.cni")
            namespaces = importlib.import_module("engine.cri.namespaces")
        except ImportError as exc:
            return f"network bridge is not available yet ({exc})"
        bin_dirs = tuple(self._bin_dirs or cni.DEFAULT_BIN_DIRS)
        missing = [p for p in PLUGINS if not any(os.access(os.path.join(d, p), os.X_OK) for d in bin_dirs)]
        if missing:
            where = ":".join(bin_dirs)
            return f"network bridge is not available: CNI plugins {', '.join(missing)} not found in {where}"
        if shutil.which("unshare") is None:
            return "network bridge is not available: util-linux unshare not found"
        self._cni = cni.CNI(conf_dir=self.dir / "net.d", bin_dirs=bin_dirs)
        self._namespaces = namespaces
        return ""

    @property
    def bridge_available(self) -> bool:
        return not self.unavailable_reason

    def require_bridge(self) -> None:
        if self.unavailable_reason:
            raise NetworkUnavailable(self.unavailable_reason)

    # ------------------------------------------------------------------------------ files

    def _record(self, container_id: str) -> Path:
        return self.dir / "endpoints" / f"{container_id}.json"

    def prepare(self) -> None:
        """Blocking: the network list and state dirs (called at daemon start)."""
        if not self.bridge_available:
            return
        for sub in ("net.d", "endpoints", "netns"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._ipam_dir.mkdir(parents=True, exist_ok=True)
        target = self.dir / "net.d" / "10-pinnace.conflist"
        doc = orjson.dumps(conflist(self._ipam_dir), option=orjson.OPT_INDENT_2)
        if not target.exists() or target.read_bytes() != doc:
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(doc)
            os.replace(tmp, target)

    def endpoint(self, container_id: str) -> Endpoint | None:
        """Blocking (one small read): the container's bridge endpoint, if it has one."""
        try:
            doc = orjson.loads(self._record(container_id).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        doc["ports"] = tuple(doc.get("ports") or ())
        return Endpoint(**doc)

    # ------------------------------------------------------------------- pooled lifecycle

    async def acquire(self, ports: Sequence[PortMapping]) -> tuple[str, Endpoint]:
        """(key, endpoint) for a new container: a ready one when it publishes no ports."""
        self.require_bridge()
        if not ports and self._pool:
            key, endpoint = self._pool.pop()
        else:
            key = secrets.token_hex(16)
            endpoint = await self.attach(key, ports)
        self._refill()
        return key, endpoint

    def _refill(self) -> None:
        if self._refilling is None or self._refilling.done():
            self._refilling = self._track(self._fill_pool())

    async def _fill_pool(self) -> None:
        while len(self._pool) < POOL_SIZE:
            key = secrets.token_hex(16)
            try:
                self._pool.append((key, await self.attach(key, ())))
            except Exception as exc:  # the next acquire attaches directly and reports the error
                log.warning("cannot prepare a bridge endpoint: %s", exc)
                return

    def release(self, key: str) -> None:
        """Unplug ``key`` in the background."""
        self._track(self.detach(key))

    async def recycle(self, key: str) -> None:
        """Keep ``key``'s endpoint ready for the next container (see the module doc for when a
        caller may), or unplug it if enough are ready already."""
        endpoint = await asyncio.to_thread(self.endpoint, key)
        if any(k == key for k, _ in self._pool):
            return  # already ready: never hand one namespace to two containers
        if endpoint is None or endpoint.ports or len(self._pool) >= POOL_MAX:
            self.release(key)
            return
        self._pool.append((key, endpoint))

    def _track(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def collect(self, used: set[str]) -> None:
        """Unplug endpoints on disk that no container uses (a previous daemon's pool, or work it
        did not finish)."""
        if not self.bridge_available:
            return
        keys = await asyncio.to_thread(lambda: sorted(p.stem for p in (self.dir / "endpoints").glob("*.json")))
        netns = await asyncio.to_thread(lambda: sorted(p.name for p in (self.dir / "netns").iterdir()))
        for key in sorted(set(keys) | set(netns)):
            if key not in used and all(key != k for k, _ in self._pool):
                await self.detach(key)
        self._refill()

    async def drain(self) -> None:
        """Finish background work, and unplug the ready endpoints (called at shutdown)."""
        if self._refilling is not None:
            await asyncio.gather(self._refilling, return_exceptions=True)
        pool, self._pool = self._pool, []
        for key, _ in pool:
            self.release(key)
        await asyncio.gather(*list(self._background), return_exceptions=True)

    # ------------------------------------------------------------------------ lifecycle

    async def attach(self, container_id: str, ports: Sequence[PortMapping]) -> Endpoint:
        """A namespace for the container, plugged into the bridge; all undone if any step fails."""
        self.require_bridge()
        paths = await self._namespaces.create(run_dir=self.dir, sandbox_id=container_id, kinds=("net",))
        netns = paths["net"]
        mappings = port_mappings(ports)
        cni = importlib.import_module("engine.cri.cni")
        attachment = cni.Attachment(container_id=container_id, netns=netns,
                                    capability_args={"portMappings": list(mappings)} if mappings else {})
        try:
            network = await self._cni.network()
            result = await self._cni.add(network, attachment)
            ip, prefix, gateway, mac = _first_ip(dict(result.document))
            if ip:
                await _forget_neighbour(ip)
            endpoint = Endpoint(netns=netns, ip=ip or result.primary_ip, prefix=prefix, gateway=gateway or GATEWAY,
                                mac=mac, ports=mappings, result=dict(result.document))
            await asyncio.to_thread(self._write, container_id, endpoint)
        except BaseException:
            await asyncio.shield(self._teardown(container_id, netns, mappings, None))
            raise
        return endpoint

    def _write(self, container_id: str, endpoint: Endpoint) -> None:
        path = self._record(container_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(asdict(endpoint)))
        os.replace(tmp, path)

    async def detach(self, container_id: str) -> None:
        """Undo ``attach`` (idempotent; a container without an endpoint is fine)."""
        if not self.bridge_available:
            return
        endpoint = await asyncio.to_thread(self.endpoint, container_id)
        if endpoint is None:
            netns = str(self._namespaces.ns_path(self.dir, "net", container_id))
            if not await asyncio.to_thread(os.path.exists, netns):
                return
            await self._teardown(container_id, netns, (), None)
            return
        await self._teardown(container_id, endpoint.netns, endpoint.ports, endpoint.result)

    async def _teardown(self, container_id: str, netns: str, ports: Sequence[dict[str, Any]],
                        result: dict[str, Any] | None) -> None:
        cni = importlib.import_module("engine.cri.cni")
        attachment = cni.Attachment(container_id=container_id, netns=netns,
                                    capability_args={"portMappings": list(ports)} if ports else {})
        try:
            network = await self._cni.network()
            await self._cni.delete(network, attachment, prev_result=result)
        except Exception as exc:  # a failed DEL must not keep the container: log and go on
            log.warning("CNI DEL for container %s failed: %s", container_id[:12], exc)
        await self._namespaces.release([netns])
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._record(container_id).unlink)
