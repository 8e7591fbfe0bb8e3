"""Host settings the rules rely on: br_netfilter must hand bridged IPv4 to the ip hooks.

A reply from one pod to another on the same bridge is switched, not routed, so without
``net.bridge.bridge-nf-call-iptables=1`` conntrack never sees it and cannot undo the service DNAT
(the client gets a reply from the pod IP and drops it). kube-proxy relies on the same setting.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"


async def ensure_bridge_netfilter(*, netns: str | None = None) -> bool:
    """Set the sysctl to 1 (in ``netns`` if given); False (and a warning) if br_netfilter is missing."""
    argv = ["sysctl", "-qw", f"{BRIDGE_NF}=1"]
    if netns:
        argv = ["nsenter", f"--net={netns}", *argv]
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        log.warning("cannot run sysctl: %s", exc)
        return False
    _out, err = await proc.communicate()
    if proc.returncode != 0:
        log.warning("cannot set %s=1 (is br_netfilter loaded? pods on one bridge may not reach their "
                    "services; use --masquerade-all): %s", BRIDGE_NF, err.decode(errors="replace").strip())
        return False
    return True
