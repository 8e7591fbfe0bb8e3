"""What the kubelet-core integration tests run on: a real engine CRI on a temp root with our CNI
plugins on a bridge and subnet unique to this test session, plus the means to clean it all up.

The CRI server runs in the test's event loop (as tests/engine/cri does); its CNI config dir starts
empty, so the node is NotReady until the kubelet writes its conflist for the podCIDR the test gives
the node. ``scrub`` removes by path and name whatever a failed test left: mounts under the temp
root, the cgroup parent, the bridge.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cni.install import install
from engine.containers.manager import ContainerManager
from engine.cri.server import CRIServer
from engine.images.rootfs import unmount
from engine.images.store import ImageStore
from kubelet.cri import CriClient, pb
from tests.engine.cri import cri_env

SESSION = os.getpid()
BRIDGE = f"kc{SESSION % 100000}"  # short: interface names stop at 15 bytes
SUBNET = f"10.{200 + SESSION % 50}.{(SESSION // 50) % 256}.0/24"


@dataclass
class Engine:
    """One in-process CRI server on ``base``, with our CNI plugins installed into ``base/bin``."""

    base: Path
    store: ImageStore
    cgroup_parent: str
    manager: ContainerManager = field(init=False)
    server: CRIServer = field(init=False)

    @property
    def socket(self) -> Path:
        return self.base / "cri.sock"

    @property
    def conf_dir(self) -> Path:
        return self.base / "net.d"

    @property
    def bin_dir(self) -> Path:
        return self.base / "bin"

    async def start(self) -> Engine:
        install(str(self.bin_dir))
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.manager = ContainerManager(self.base / "engine", self.store, cgroup_parent=self.cgroup_parent)
        await self.manager.load()
        self.server = CRIServer(store=self.store, containers=self.manager, socket_path=self.socket,
                                run_dir=self.base / "run", cni_conf_dir=self.conf_dir,
                                cni_bin_dirs=(str(self.bin_dir),))
        await self.server.start()
        return self

    async def close(self) -> None:
        """Remove every sandbox (CNI DEL included) and container, then stop serving."""
        if hasattr(self, "server"):
            async with CriClient(str(self.socket)) as cri:
                for sandbox in list(self.server.sandboxes.all()):
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox.id),
                                                           timeout=60)
        if hasattr(self, "manager"):
            for container in self.manager.list(all=True):
                with contextlib.suppress(Exception):
                    await self.manager.remove(container.id, force=True)
        if hasattr(self, "server"):
            await self.server.stop()
        if hasattr(self, "manager"):
            await self.manager.close()


def delete_bridge() -> None:
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


def scrub(base: Path, *, cgroup_parent: str) -> list[str]:
    """Unmount what is left under ``base``, drop the cgroup parent, delete ``base``; what was left."""
    left = cri_env.mounts_under(base) if base.exists() else []
    for mount in sorted(left, key=len, reverse=True):
        unmount(mount, lazy=True)
    cri_env.remove_cgroup_parent(cgroup_parent)
    shutil.rmtree(base, ignore_errors=True)
    return left
