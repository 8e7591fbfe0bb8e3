"""Fixtures of the kubelet-core tests: a real ``pinnace server`` per session, a busybox image store,
and per test a real engine CRI (our CNI plugins, a session-unique bridge and subnet) plus a Kubelet
in the test's event loop registered as a fresh node. Everything is removed afterwards, also when a
test fails: pods' sandboxes and containers through the CRI, then mounts, cgroups and the temp dir
by path, the bridge by name at the end of the session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Server
from engine.images.store import ImageStore
from kubelet.backoff import Backoff
from kubelet.config import KubeletConfig
from kubelet.cri import CriClient
from kubelet.kubelet import Kubelet
from kubelet.node import NODES
from kubelet.pod_worker import PODS
from kubelet.sources import ApiSource
from kubelet.volumes import VolumeManager
from machinery.client import ApiClient, ApiError, Resource
from machinery.kubeconfig import load_kubeconfig
from tests.engine.cri import cri_env
from tests.engine.daemon.engine_env import busybox_image
from tests.kubelet.core import kcore_env

NAMESPACES = Resource("", "v1", "namespaces", False)
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", True)
CONFIGMAPS = Resource("", "v1", "configmaps", True)
MISSING = [n for n in ("crun", "conmon", "unshare", "ip") if shutil.which(n) is None]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("kcore") / "data"
    data.mkdir()
    # only the controller that gives each namespace what pods mount (the default ServiceAccount's
    # token and kube-root-ca.crt); nothing else may act on the test's nodes and pods
    srv = Server(data).start("--controllers", "serviceaccount")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def kstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageStore]:
    base = tmp_path_factory.mktemp("kcore-store")
    store = ImageStore(base / "store")
    busybox_image(store, base / "tree", names=("busybox:latest", "busybox:v2"))
    try:
        yield store
    finally:
        store.close()
        kcore_env.delete_bridge()


async def wait_for(check: Callable[[], Any], *, within: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _namespace_ready(client: ApiClient, namespace: str) -> bool:
    try:
        await client.get(SERVICEACCOUNTS, "default", namespace=namespace)
        await client.get(CONFIGMAPS, "kube-root-ca.crt", namespace=namespace)
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise
    return True


@dataclass
class NodeEnv:
    """A node under test: the API client, the engine, the kubelet running on it, and a namespace."""

    client: ApiClient
    engine: kcore_env.Engine
    config: KubeletConfig
    namespace: str
    backoff_initial: float = 1.0
    kubelet: Kubelet | None = None
    cri: CriClient | None = None
    _kubelets: list[Kubelet] = field(default_factory=list)

    async def start_kubelet(self) -> Kubelet:
        assert self.cri is not None
        self.kubelet = Kubelet(config=self.config, client=self.client, cri=self.cri,
                               backoff=Backoff(initial=self.backoff_initial, cap=8 * self.backoff_initial),
                               image_backoff=Backoff(initial=self.backoff_initial))
        await self.kubelet.start()
        return self.kubelet

    async def stop_kubelet(self) -> None:
        if self.kubelet is not None:
            kubelet, self.kubelet = self.kubelet, None
            await kubelet.stop()

    async def create_pod(self, name: str, containers: list[dict], **spec: Any) -> dict:
        for c in containers + spec.get("initContainers", []):
            c.setdefault("image", "busybox:latest")
            c.setdefault("imagePullPolicy", "IfNotPresent")
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"nodeName": self.config.node_name, "containers": containers,
                         "terminationGracePeriodSeconds": 2, **spec}}
        return await self.client.create(PODS, body, namespace=self.namespace)

    async def pod(self, name: str) -> dict | None:
        try:
            return await self.client.get(PODS, name, namespace=self.namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise


@pytest.fixture
async def node(server: Server, kstore: ImageStore, request: pytest.FixtureRequest) -> AsyncIterator[NodeEnv]:
    if MISSING or os.geteuid() != 0:
        pytest.skip(f"needs root and {', '.join(MISSING) or 'crun, conmon'}")
    base = cri_env.new_base()
    parent = f"pinnace-kcore-{os.getpid()}-{abs(hash(request.node.nodeid)) % 10**8}"
    engine = kcore_env.Engine(base=base, store=kstore, cgroup_parent=parent)
    node_name = f"kc-{uuid.uuid4().hex[:8]}"
    config = KubeletConfig(node_name=node_name, kubeconfig=str(server.kubeconfig), cri_socket=str(engine.socket),
                           root_dir=base / "kubelet", log_dir=base / "logs", node_ip="127.0.0.1", port=10250,
                           cni_conf_dir=engine.conf_dir, cni_bridge=kcore_env.BRIDGE,
                           cni_ipam_dir=base / "ipam", heartbeat_interval=0.5, sync_interval=0.3, sync_frequency=1.0)
    namespace = f"kc-{uuid.uuid4().hex[:8]}"
    env: NodeEnv | None = None
    left: list[str] = []
    try:
        async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=20) as client:
            await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            await wait_for(lambda: _namespace_ready(client, namespace), what="default ServiceAccount and CA")
            # the node exists with its podCIDR before the kubelet starts: the kubelet adopts it
            await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name},
                                        "spec": {"podCIDR": kcore_env.SUBNET, "podCIDRs": [kcore_env.SUBNET]}})
            try:
                await engine.start()
                async with CriClient(str(engine.socket)) as cri:
                    env = NodeEnv(client=client, engine=engine, config=config, namespace=namespace, cri=cri)
                    try:
                        await env.start_kubelet()
                        yield env
                    finally:
                        await env.stop_kubelet()
            finally:
                await engine.close()
                # the pods outlive the kubelet (as on a node): their volumes go the way the kubelet's do
                volumes = VolumeManager(config=config, source=ApiSource(client), tokens=None)
                for uid in volumes.pod_uids_on_disk():
                    await volumes.teardown(uid)
                left = cri_env.mounts_under(base)
                with contextlib.suppress(ApiError):
                    await client.delete(NAMESPACES, namespace)
                with contextlib.suppress(ApiError):
                    await client.delete(NODES, node_name)
    finally:
        kcore_env.scrub(base, cgroup_parent=parent)
    assert not left, f"teardown left mounts: {left}"
