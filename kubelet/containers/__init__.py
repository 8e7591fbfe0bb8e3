"""Pods and containers as CRI configs: what the pod workers send the runtime to run a pod.

Each module does one job (sandbox, container, env, expansion, downward API, security, resources,
QoS, DNS, labels); this package exports the names the rest of the kubelet uses.
"""

from kubelet.containers.container import container_config, log_path
from kubelet.containers.errors import CREATE_CONTAINER_CONFIG_ERROR, ConfigError
from kubelet.containers.labels import container_hash
from kubelet.containers.qos import oom_score_adj, qos_class
from kubelet.containers.sandbox import pod_fqdn, pod_hostname, sandbox_config
from kubelet.containers.security import pod_ref
from kubelet.containers.services import service_env
from kubelet.containers.termination import termination_message
from kubelet.sources import ApiSource, ObjectSource, TokenSource

__all__ = [
    "CREATE_CONTAINER_CONFIG_ERROR",
    "ApiSource",
    "ConfigError",
    "ObjectSource",
    "TokenSource",
    "container_config",
    "container_hash",
    "log_path",
    "oom_score_adj",
    "pod_fqdn",
    "pod_hostname",
    "pod_ref",
    "qos_class",
    "sandbox_config",
    "service_env",
    "termination_message",
]
