"""The node's pod network: the CNI conflist the kubelet writes once the node has a podCIDR.

The engine's CRI reads the first conflist in its CNI config dir for every sandbox, and reports
NetworkReady=false until there is one; so writing this file is what turns the node Ready. The
document is ``cni.install.default_conflist`` (our bridge plugin with host-local IPAM over the
podCIDR, gateway and masquerade, then portmap), written atomically so the runtime never reads half.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from cni.install import CONFLIST_NAME, default_conflist
from kubelet.config import KubeletConfig


def conflist_for(config: KubeletConfig, pod_cidr: str) -> dict:
    return default_conflist(subnet=pod_cidr, bridge=config.cni_bridge, cluster_cidr=config.cluster_cidr,
                            data_dir=str(config.cni_ipam_dir) if config.cni_ipam_dir else None)


def write_conflist(config: KubeletConfig, pod_cidr: str) -> Path | None:
    """Write (or rewrite, if different) the conflist; None when no CNI config dir is configured.

    Blocking file I/O: call it through ``asyncio.to_thread``.
    """
    if config.cni_conf_dir is None:
        return None
    directory = Path(config.cni_conf_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CONFLIST_NAME
    data = orjson.dumps(conflist_for(config, pod_cidr), option=orjson.OPT_INDENT_2) + b"\n"
    if target.exists() and target.read_bytes() == data:
        return target
    temp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    temp.write_bytes(data)
    temp.chmod(0o644)
    temp.replace(target)
    return target
