"""What one kubelet is configured with: who the node is, where its state lives, how to reach things.

One frozen dataclass shared by every part of the kubelet (node status, pod workers, volumes, the
streaming server), filled from ``pinnace kubelet``'s flags. Paths under ``root_dir`` follow the
upstream kubelet's layout (``pods/<uid>/volumes/<plugin>/<name>``), pod logs follow the CRI's
(``<log_dir>/<ns>_<pod>_<uid>/<container>/<attempt>.log``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ROOT_DIR = "/var/lib/pinnace/kubelet"
DEFAULT_PORT = 10250
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40  # seconds, as the upstream kubelet
HEARTBEAT_INTERVAL = 10.0  # seconds between Lease renewals (a quarter of the duration)
NODE_STATUS_INTERVAL = 60.0  # seconds between full status reports when nothing changed
MAX_PODS = 110


@dataclass(frozen=True)
class KubeletConfig:
    node_name: str
    kubeconfig: str
    cri_socket: str
    root_dir: Path = Path(DEFAULT_ROOT_DIR)
    log_dir: Path = Path(DEFAULT_ROOT_DIR) / "logs"
    node_ip: str = "127.0.0.1"  # InternalIP; the API server reaches the streaming server here
    address: str = "0.0.0.0"  # where the HTTPS server listens
    port: int = DEFAULT_PORT
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    cni_conf_dir: Path | None = None  # write the node's bridge conflist here once it has a podCIDR
    cni_bridge: str = "pinnacebr0"  # the Linux bridge that conflist plugs pods into
    cni_ipam_dir: Path | None = None  # host-local IPAM state (None: the plugin's default)
    cluster_cidr: str | None = None  # all nodes' pod CIDRs: pod-to-pod traffic is not masqueraded
    node_labels: dict[str, str] = field(default_factory=dict)
    max_pods: int = MAX_PODS
    heartbeat_interval: float = HEARTBEAT_INTERVAL  # a quarter of lease_duration, as upstream
    lease_duration: int = LEASE_DURATION
    sync_interval: float = 1.0  # seconds between runtime relists (the PLEG period)
    sync_frequency: float = 60.0  # seconds between full resyncs of a pod (re-projects its config volumes)

    @property
    def pods_dir(self) -> Path:
        return self.root_dir / "pods"

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    def volumes_dir(self, uid: str) -> Path:
        return self.pod_dir(uid) / "volumes"

    def pod_log_dir(self, namespace: str, name: str, uid: str) -> Path:
        return self.log_dir / f"{namespace}_{name}_{uid}"
