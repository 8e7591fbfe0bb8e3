"""Names the plugins derive from (network, container id, ifname), so DEL and GC need no saved state.

The host end of a pod's veth and the comment on its port-mapping elements are computed from the ids
the runtime passes on every call; whatever ADD created, DEL and GC can find again from the same ids.
"""

from __future__ import annotations

HOST_VETH_PREFIX = "veth"
_HEX = frozenset("0123456789abcdef")
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
MAX_TAG = 127  # an nftables comment holds 127 bytes
MAX_NETWORK_TAG = 48


def digest(text: str) -> str:
    """SHA-256 hex, from the builtin module (``hashlib`` would load OpenSSL: ~4 ms of start-up)."""
    try:
        from _sha256 import sha256
    except ImportError:  # pragma: no cover - Python 3.12+ calls it _sha2
        from hashlib import sha256
    return sha256(text.encode()).hexdigest()


def host_veth_name(network: str, *, container_id: str, ifname: str) -> str:
    """"veth" + 11 hex digits (15 characters, the kernel's limit)."""
    return HOST_VETH_PREFIX + digest(f"{network}/{container_id}/{ifname}")[:11]


def is_host_veth_name(name: str) -> bool:
    suffix = name[len(HOST_VETH_PREFIX):]
    return name.startswith(HOST_VETH_PREFIX) and len(suffix) == 11 and set(suffix) <= _HEX


def network_tag(network: str) -> str:
    return network if len(network) <= MAX_NETWORK_TAG else "h-" + digest(network)[:24]


def owner_tag(network: str, *, container_id: str, ifname: str) -> str:
    """"<network>/<container id>/<ifname>", readable in ``nft list``; hashed when too long or unusual."""
    tag = f"{network_tag(network)}/{container_id}/{ifname}"
    if len(tag) <= MAX_TAG and set(ifname) <= _TAG_CHARS:
        return tag
    return f"{network_tag(network)}/sha-{digest(f'{container_id}/{ifname}')[:40]}"
