"""What the CRI tests run against: a private CNI network, a CRI server on a temp socket, cleanup.

The network is the reference ``bridge`` plugin on its own bridge ``cni-test0`` with ``host-local``
IPAM on 10.88.77.0/24 (state in a temp dir, no masquerading), so only namespaces the tests create
carry traffic. ``Harness`` owns one engine root, container manager and ``CRIServer`` plus gRPC stubs;
``close`` removes every sandbox and container it made, and ``scrub`` then deletes whatever a failed
test left (namespace mounts, rootfs mounts, the cgroup parent, the bridge), by path and name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import orjson

from engine.containers.manager import ContainerManager
from engine.cri.proto import api_pb2 as pb
from engine.cri.proto import api_pb2_grpc as pb_grpc
from engine.cri.server import CRIServer
from engine.images.rootfs import unmount
from engine.images.store import ImageStore

BRIDGE = "cni-test0"
SUBNET = "10.88.77.0/24"
GATEWAY = "10.88.77.1"
NETWORK = "cri-test"
BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
MISSING = [n for n in ("crun", "conmon", "unshare", "ip") if shutil.which(n) is None]
if not os.path.exists("/usr/lib/cni/bridge"):
    MISSING.append("containernetworking-plugins")


def conflist(ipam_dir: Path) -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]], "dataDir": str(ipam_dir)},
            }
        ],
    }


def write_conflist(conf_dir: Path, ipam_dir: Path) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "10-cri-test.conflist"
    path.write_bytes(orjson.dumps(conflist(ipam_dir)))
    return path


def ipam_reservations(ipam_dir: Path) -> list[str]:
    """IPs host-local still holds for the test network (its files named after addresses)."""
    state = ipam_dir / NETWORK
    if not state.is_dir():
        return []
    return sorted(p.name for p in state.iterdir() if p.name[:1].isdigit() and p.name.count(".") == 3)


def delete_bridge() -> None:
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


def mounts_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def cgroup_dirs(parent: str) -> list[Path]:
    """``parent`` in every cgroup hierarchy (v1 controllers, named ones like systemd, v2)."""
    with open("/proc/self/mountinfo") as f:
        mounts = [Path(line.split()[4]) for line in f if line.split(" - ")[1].split()[0] in ("cgroup", "cgroup2")]
    return [m / parent for m in mounts if (m / parent).is_dir()]


def remove_cgroup_parent(parent: str) -> None:
    for base in cgroup_dirs(parent):
        for dirpath, _, _ in sorted(os.walk(base), key=lambda t: -len(t[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def sandbox_config(
    name: str,
    *,
    uid: str,
    log_dir: Path | None = None,
    hostname: str = "",
    labels: dict[str, str] | None = None,
    host_network: bool = False,
) -> pb.PodSandboxConfig:
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace="default", uid=uid, attempt=0),
        hostname=hostname or name,
        log_directory=str(log_dir) if log_dir else "",
        dns_config=pb.DNSConfig(servers=[GATEWAY], searches=["default.svc.cluster.local"], options=["ndots:5"]),
        labels=labels or {},
        annotations={"note": "kept as is"},
    )
    if host_network:
        config.linux.security_context.namespace_options.network = pb.NODE
    return config


def container_config(
    name: str, image: str, command: list[str], *, labels: dict[str, str] | None = None, log_path: str = ""
) -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=0),
        image=pb.ImageSpec(image=image),
        command=command,
        labels=labels or {},
        annotations={"io.test/kind": name},
        log_path=log_path,
    )


@dataclass
class Harness:
    """One CRI server on a temp socket, its stubs, and the dirs it uses."""

    base: Path
    store: ImageStore
    cgroup_parent: str
    manager: ContainerManager = field(init=False)
    server: CRIServer = field(init=False)
    channel: grpc.aio.Channel = field(init=False)
    runtime: pb_grpc.RuntimeServiceStub = field(init=False)
    images: pb_grpc.ImageServiceStub = field(init=False)

    @property
    def root(self) -> Path:
        return self.base / "engine"

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    @property
    def ipam_dir(self) -> Path:
        return self.base / "ipam"

    @property
    def conf_dir(self) -> Path:
        return self.base / "net.d"

    @property
    def log_dir(self) -> Path:
        return self.base / "pods"

    @property
    def socket(self) -> Path:
        return self.base / "cri.sock"

    async def start(self) -> Harness:
        write_conflist(self.conf_dir, self.ipam_dir)
        self.manager = ContainerManager(self.root, self.store, cgroup_parent=self.cgroup_parent)
        await self.manager.load()
        self.server = CRIServer(
            store=self.store,
            containers=self.manager,
            socket_path=self.socket,
            run_dir=self.run_dir,
            cni_conf_dir=self.conf_dir,
            cni_bin_dirs=BIN_DIRS,
        )
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"unix:{self.socket}")
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.images = pb_grpc.ImageServiceStub(self.channel)
        return self

    async def close(self) -> None:
        """Remove every sandbox and container through the service, then stop serving (each step
        tolerates a half-done ``start``)."""
        if hasattr(self, "runtime"):
            for sandbox in list(self.server.sandboxes.all()):
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox.id))
        if hasattr(self, "manager"):
            for container in self.manager.list(all=True):
                with contextlib.suppress(Exception):
                    await self.manager.remove(container.id, force=True)
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop serving as an engine stopping would: sandboxes and containers stay."""
        if hasattr(self, "channel"):
            await self.channel.close()
        if hasattr(self, "server"):
            await self.server.stop()
        if hasattr(self, "manager"):
            await self.manager.close()


def new_base() -> Path:
    """A short temp dir (unix socket paths must stay under 108 bytes)."""
    base = Path(tempfile.mkdtemp(prefix="cri-", dir="/tmp"))
    base.chmod(0o711)
    return base


def scrub(base: Path, *, cgroup_parent: str) -> list[str]:
    """Delete what a test left under ``base`` and on the host; returns what there was."""
    left = mounts_under(base)
    for mount in sorted(left, key=len, reverse=True):
        unmount(mount, lazy=True)
    remove_cgroup_parent(cgroup_parent)
    delete_bridge()
    shutil.rmtree(base, ignore_errors=True)
    return left
