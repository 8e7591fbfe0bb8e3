"""What the kubelet server tests run against: a real CRI (tests/engine/cri) with pods made the way
the kubelet makes them (contract labels, log directory and log paths), and a KubeletServer in front.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from apiserver import pki
from engine.cri.proto import api_pb2 as pb
from kubelet.config import KubeletConfig
from kubelet.cri import CriClient
from kubelet.server import KubeletServer
from tests.engine.cri import cri_env


@dataclass
class Pod:
    name: str
    uid: str
    sandbox_id: str
    sandbox_config: pb.PodSandboxConfig
    containers: dict[str, list[str]] = field(default_factory=dict)  # name -> ids, oldest first
    namespace: str = "default"


@dataclass
class Kubelet:
    config: KubeletConfig
    cri: CriClient
    server: KubeletServer
    pki: pki.Pki

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    def client_ssl(self, *, with_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if with_cert:
            ctx.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        return ctx


async def start_kubelet(harness: cri_env.Harness, pki_dir: Path) -> Kubelet:
    cluster = pki.ensure_pki(pki_dir)
    config = KubeletConfig(node_name="node-1", kubeconfig="", cri_socket=str(harness.socket),
                           root_dir=harness.base / "kubelet", log_dir=harness.log_dir,
                           address="127.0.0.1", port=0)
    cri = CriClient(str(harness.socket))
    server = KubeletServer(config=config, cri=cri, ca_pem=cluster.ca_cert.read_bytes())
    await server.start()
    return Kubelet(config=config, cri=cri, server=server, pki=cluster)


async def stop_kubelet(kubelet: Kubelet) -> None:
    await kubelet.server.stop()
    await kubelet.cri.close()


async def run_pod(kubelet: Kubelet, *, name: str, uid: str = "", namespace: str = "default") -> Pod:
    uid = uid or str(uuid.uuid4())
    labels = {"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace,
              "io.kubernetes.pod.uid": uid}
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace=namespace, uid=uid, attempt=0),
        hostname=name, log_directory=str(kubelet.config.pod_log_dir(namespace, name, uid)),
        dns_config=pb.DNSConfig(servers=[cri_env.GATEWAY]), labels=labels)
    answer = await kubelet.cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
    return Pod(name=name, uid=uid, sandbox_id=answer.pod_sandbox_id, sandbox_config=config, namespace=namespace)


async def run_container(kubelet: Kubelet, pod: Pod, *, name: str, image: str, script: str,
                        stdin: bool = False) -> str:
    """Create and start attempt N+1 of container ``name`` running ``sh -c script``."""
    attempt = len(pod.containers.get(name, []))
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=attempt), image=pb.ImageSpec(image=image),
        command=["sh", "-c", script], log_path=f"{name}/{attempt}.log", stdin=stdin,
        labels={**pod.sandbox_config.labels, "io.kubernetes.container.name": name},
        annotations={"io.kubernetes.container.restartCount": str(attempt)})
    cid = (await kubelet.cri.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod.sandbox_id, config=config, sandbox_config=pod.sandbox_config))).container_id
    await kubelet.cri.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    pod.containers.setdefault(name, []).append(cid)
    return cid


async def wait_exited(kubelet: Kubelet, container_id: str) -> int:
    """The exit code once the container has exited; wrap in ``asyncio.timeout`` to bound it."""
    while True:
        status = (await kubelet.cri.runtime.ContainerStatus(
            pb.ContainerStatusRequest(container_id=container_id))).status
        if status.state == pb.CONTAINER_EXITED:
            return status.exit_code
        await asyncio.sleep(0.1)
