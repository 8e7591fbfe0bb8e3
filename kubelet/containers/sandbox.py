"""A pod as a CRI ``PodSandboxConfig``: identity, hostname, logs, DNS, host ports, namespaces, sysctls.

Mirrors the upstream kubelet's generatePodSandboxConfig so the sandbox the engine makes for a pod is
the one Kubernetes would make: the hostname is ``spec.hostname`` or the pod name (a host-network pod
keeps the node's), every container port with a hostPort becomes a port mapping, and the pod-level
securityContext and sysctls go in the Linux part.
"""

from __future__ import annotations

from typing import Any

from kubelet.config import KubeletConfig
from kubelet.containers.dns import pod_dns
from kubelet.containers.errors import ConfigError
from kubelet.containers.labels import pod_annotations, pod_labels
from kubelet.containers.security import sandbox_security
from kubelet.cri import pb

PROTOCOLS: dict[str, int] = {"TCP": pb.TCP, "UDP": pb.UDP, "SCTP": pb.SCTP}
MAX_HOSTNAME = 63
MAX_FQDN = 64  # the kernel's nodename field


def pod_hostname(pod: dict[str, Any]) -> str:
    """``spec.hostname``, else the pod's name; cut to 63 characters (then trailing ``-``/``.`` dropped)."""
    spec, name = pod.get("spec", {}), pod.get("metadata", {}).get("name", "")
    hostname = spec.get("hostname") or name
    if len(hostname) > MAX_HOSTNAME:
        hostname = hostname[:MAX_HOSTNAME].rstrip("-.")
        if not hostname:
            raise ConfigError(f"hostname for pod {name!r} was invalid: empty after truncation")
    return hostname


def pod_domain(pod: dict[str, Any], cluster_domain: str) -> str:
    """``<subdomain>.<ns>.svc.<domain>`` when the pod has a subdomain, else ''."""
    spec, md = pod.get("spec", {}), pod.get("metadata", {})
    if not spec.get("subdomain"):
        return ""
    return f"{spec['subdomain']}.{md.get('namespace', '')}.svc.{cluster_domain}"


def pod_fqdn(pod: dict[str, Any], cluster_domain: str) -> str:
    """``<hostname>.<subdomain>.<ns>.svc.<domain>`` when the pod has a subdomain, else ''."""
    domain = pod_domain(pod, cluster_domain)
    return f"{pod_hostname(pod)}.{domain}" if domain else ""


def kernel_hostname(pod: dict[str, Any], cluster_domain: str) -> str:
    """The UTS hostname: the FQDN when ``setHostnameAsFQDN`` asks for it (at most 64 characters)."""
    fqdn = pod_fqdn(pod, cluster_domain)
    if not (fqdn and pod.get("spec", {}).get("setHostnameAsFQDN")):
        return pod_hostname(pod)
    if len(fqdn) > MAX_FQDN:
        raise ConfigError(f"failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long "
                          f"({MAX_FQDN} characters is the max, {len(fqdn)} characters requested)")
    return fqdn


def port_mappings(pod: dict[str, Any]) -> list[pb.PortMapping]:
    mappings = []
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if not port.get("hostPort"):
                continue
            protocol = port.get("protocol") or "TCP"
            if protocol not in PROTOCOLS:
                raise ConfigError(f"unknown protocol {protocol!r} for port {port.get('containerPort')}")
            mappings.append(pb.PortMapping(protocol=PROTOCOLS[protocol], container_port=int(port["containerPort"]),
                                           host_port=int(port["hostPort"]), host_ip=port.get("hostIP") or ""))
    return mappings


def sandbox_config(pod: dict[str, Any], *, config: KubeletConfig, attempt: int,
                   host_dns: pb.DNSConfig | None = None) -> pb.PodSandboxConfig:
    """``host_dns`` stands in for the host's resolv.conf (tests); it is read once otherwise."""
    md, spec = pod.get("metadata", {}), pod.get("spec", {})
    name, namespace, uid = md.get("name", ""), md.get("namespace", ""), md.get("uid", "")
    pod_sc = spec.get("securityContext") or {}
    sandbox = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, namespace=namespace, uid=uid, attempt=attempt),
        log_directory=str(config.pod_log_dir(namespace, name, uid)),
        dns_config=pod_dns(pod, cluster_dns=config.cluster_dns, cluster_domain=config.cluster_domain, host=host_dns),
        port_mappings=port_mappings(pod),
        labels=pod_labels(pod),
        annotations=pod_annotations(pod),
        linux=pb.LinuxPodSandboxConfig(
            security_context=sandbox_security(pod),
            sysctls={str(s["name"]): str(s.get("value", "")) for s in pod_sc.get("sysctls") or []},
        ),
    )
    if not spec.get("hostNetwork"):
        sandbox.hostname = kernel_hostname(pod, config.cluster_domain)
    return sandbox
