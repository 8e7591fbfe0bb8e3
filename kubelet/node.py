"""The kubelet's Node: registration, status reports, the heartbeat Lease and the pod network.

As upstream: the Node is created (or an existing one of the same name adopted) with the host's
capacity, addresses, nodeInfo and well-known labels; its status is patched when anything in it
changed or every NODE_STATUS_INTERVAL seconds; a coordination.k8s.io Lease in kube-node-lease is
renewed every heartbeat (the node-lifecycle controller reads liveness from it). Ready follows the
runtime's own Status (RuntimeReady and NetworkReady); the network becomes ready once the node has a
spec.podCIDR and this module has written the CNI conflist for it and told the runtime
(UpdateRuntimeConfig).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.config import NODE_LEASE_NAMESPACE, NODE_STATUS_INTERVAL, KubeletConfig
from kubelet.cri import CriClient, pb
from kubelet.network import write_conflist
from machinery.client import (
    ApiClient,
    ApiError,
    TransportError,
    is_already_exists,
    is_not_found,
)
from machinery.meta import now
from machinery.resources import LEASES, NAMESPACES, NODES

log = logging.getLogger(__name__)


KUBELET_VERSION = "v1.32.0-pinnace"  # what our API server's /version reports (apiserver/handlers/discovery)
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
          "s390x": "s390x"}
MEMORY_EVICTION_KI = 100 * 1024  # upstream's default hard eviction threshold memory.available<100Mi
NODEFS_EVICTION = 0.10  # ... and nodefs.available<10%
NETWORK_POLL = 0.5  # seconds between heartbeats while the node still waits for its podCIDR

#: the pressure conditions this kubelet always reports healthy: type -> (reason, message)
PRESSURE_CONDITIONS: dict[str, tuple[str, str]] = {
    "MemoryPressure": ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
}
READY = ("KubeletReady", "kubelet is posting ready status")
NOT_READY_REASON = "KubeletNotReady"


# --- host facts (blocking reads of small files: call through a thread) ---------------------------

def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def memory_ki() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def architecture() -> str:
    machine = platform.machine()
    return ARCHES.get(machine, machine)


def capacity(config: KubeletConfig) -> tuple[dict[str, str], dict[str, str]]:
    """(capacity, allocatable) as upstream reports them: allocatable less the eviction thresholds."""
    config.root_dir.mkdir(parents=True, exist_ok=True)
    fs = os.statvfs(config.root_dir)
    disk = fs.f_blocks * fs.f_frsize
    mem = memory_ki()
    cap = {"cpu": str(os.cpu_count() or 1), "memory": f"{mem}Ki", "pods": str(config.max_pods),
           "ephemeral-storage": f"{disk // 1024}Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    alloc = {**cap, "memory": f"{max(0, mem - MEMORY_EVICTION_KI)}Ki",
             "ephemeral-storage": str(int(disk * (1 - NODEFS_EVICTION)))}
    return cap, alloc


def node_info(runtime_version: str) -> dict[str, str]:
    machine_id = _read("/etc/machine-id")
    return {"machineID": machine_id, "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
            "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": os.uname().release,
            "osImage": os_image(), "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "", "operatingSystem": "linux",
            "architecture": architecture()}


def node_labels(config: KubeletConfig) -> dict[str, str]:
    arch = architecture()
    return {"kubernetes.io/hostname": config.node_name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch, **config.node_labels}


def not_ready_message(reason: str) -> str:
    """The runtime's reason in upstream's wording (``container runtime network not ready: ...``)."""
    if reason.startswith("NetworkReady="):
        return f"container runtime network not ready: {reason}"
    if reason.startswith("RuntimeReady="):
        return f"container runtime not ready: {reason}"
    return reason


def conditions(*, ready: bool, reason: str, old: list[dict[str, Any]], stamp: str) -> list[dict[str, Any]]:
    """Node conditions with heartbeat ``stamp``; transition times move only on a status change."""
    before = {c.get("type"): c for c in old}
    table = [(kind, "False", r, m) for kind, (r, m) in PRESSURE_CONDITIONS.items()]
    table.append(("Ready", "True", *READY) if ready else ("Ready", "False", NOT_READY_REASON,
                                                          not_ready_message(reason)))
    out = []
    for kind, status, why, message in table:
        prev = before.get(kind)
        moved = prev is None or prev.get("status") != status
        out.append({"type": kind, "status": status, "reason": why, "message": message,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp if moved else prev.get("lastTransitionTime", stamp)})
    return out


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    """Registers the node, then keeps its status, Lease and pod network in step (``run``)."""

    def __init__(self, *, config: KubeletConfig, client: ApiClient, cri: CriClient, port: int) -> None:
        self.config = config
        self.client = client
        self.cri = cri
        self.port = port
        self.node: dict[str, Any] = {}
        self.pod_cidr = ""
        self._runtime_version = ""
        self._last_report: dict[str, Any] = {}
        self._last_report_at = 0.0

    @property
    def name(self) -> str:
        return self.config.node_name

    async def _facts(self) -> dict[str, Any]:
        cap, alloc = await asyncio.to_thread(capacity, self.config)
        info = await asyncio.to_thread(node_info, self._runtime_version)
        return {"capacity": cap, "allocatable": alloc, "nodeInfo": info,
                "addresses": [{"type": "InternalIP", "address": self.config.node_ip},
                              {"type": "Hostname", "address": self.name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}}}

    async def register(self) -> dict[str, Any]:
        """Create the Node, or adopt the existing one (labels merged in); then report status once."""
        version = await self.cri.version()
        self._runtime_version = f"{version.runtime_name}://{version.runtime_version}"
        labels = node_labels(self.config)
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": labels}, "spec": {}}
        try:
            self.node = await self.client.create(NODES, body)
            log.info("registered node %s", self.name)
        except ApiError as exc:
            if not is_already_exists(exc):
                raise
            self.node = await self.client.patch(NODES, self.name, {"metadata": {"labels": labels}})
            log.info("adopted existing node %s", self.name)
        await self.report_status(force=True)
        return self.node

    async def report_status(self, *, force: bool = False) -> bool:
        """Patch the node's status if it changed or the report interval passed; True if written."""
        ready, reason = await self.cri.ready()
        facts = await self._facts()
        comparable = {**facts, "ready": ready, "reason": reason}
        due = time.monotonic() - self._last_report_at >= NODE_STATUS_INTERVAL
        old = (self.node.get("status") or {}).get("conditions") or []
        # someone else (the node lifecycle controller) may have marked us Unknown: say otherwise now
        on_server = next((c.get("status") for c in old if c.get("type") == "Ready"), None)
        contradicted = on_server != ("True" if ready else "False")
        if not force and not due and not contradicted and comparable == self._last_report:
            return False
        status = {**facts, "conditions": conditions(ready=ready, reason=reason, old=old, stamp=now())}
        self.node = await self.client.patch(NODES, self.name, {"status": status}, subresource="status")
        self._last_report, self._last_report_at = comparable, time.monotonic()
        return True

    async def renew_lease(self) -> None:
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": self.config.lease_duration,
                "renewTime": _micro_now()}
        try:
            await self.client.patch(LEASES, self.name, {"spec": spec}, namespace=NODE_LEASE_NAMESPACE)
            return
        except ApiError as exc:
            if not is_not_found(exc):
                raise
        owner = {"apiVersion": "v1", "kind": "Node", "name": self.name,
                 "uid": self.node.get("metadata", {}).get("uid", "")}
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": NODE_LEASE_NAMESPACE, "ownerReferences": [owner]},
                 "spec": {**spec, "acquireTime": spec["renewTime"]}}
        try:
            await self.client.create(LEASES, lease, namespace=NODE_LEASE_NAMESPACE)
        except ApiError as exc:
            if not is_not_found(exc):  # the namespace itself is missing: make it, next beat creates the Lease
                raise
            with contextlib.suppress(ApiError):
                await self.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": NODE_LEASE_NAMESPACE}})

    async def sync_network(self) -> bool:
        """Once spec.podCIDR is set: conflist + UpdateRuntimeConfig (once per CIDR). True if done now."""
        fresh = await self.client.get(NODES, self.name)
        self.node = {**fresh, "status": fresh.get("status") or self.node.get("status", {})}
        cidr = (fresh.get("spec") or {}).get("podCIDR") or ""
        if not cidr or cidr == self.pod_cidr:
            return False
        await asyncio.to_thread(write_conflist, self.config, cidr)
        await self.cri.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
            runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=cidr))), timeout=10)
        self.pod_cidr = cidr
        log.info("node %s: pod network %s configured", self.name, cidr)
        return True

    async def beat(self) -> None:
        """One heartbeat: Lease, pod network, status (each failure logged, the others still run)."""
        for step in (self.renew_lease, self.sync_network, self.report_status):
            try:
                changed = await step()
                if step == self.sync_network and changed:
                    await self.report_status(force=True)
            except ApiError as exc:
                log.warning("node %s: %s failed: %s", self.name, step.__name__, exc)
                if is_not_found(exc) and step != self.renew_lease:  # the Node was deleted: register again
                    with contextlib.suppress(ApiError, TransportError):
                        await self.register()
            except TransportError as exc:
                log.warning("node %s: %s failed: %s", self.name, step.__name__, exc)
            except Exception as exc:  # runtime down (gRPC) etc.: the next beat retries
                log.warning("node %s: %s failed: %r", self.name, step.__name__, exc)

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.beat()
            # until node IPAM has given us a podCIDR the node cannot be Ready: look again soon
            period = self.config.heartbeat_interval if self.pod_cidr else NETWORK_POLL
            # a fixed rate: the Lease is renewed every period, not every period plus the time a beat took
            # (a status report), which a node monitor grace period equal to the period would not forgive
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))
