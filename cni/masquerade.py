"""IP masquerade for a bridge network: pods reach the world with the node's address, not among themselves.

One nftables chain per network (``inet pinnace_masq``, chain ``masq_<network>_<hash>``) hooked at
postrouting: traffic from the network's pod subnets to the same subnets, or to the destinations in
``ipMasqExclude`` (the cluster CIDR, so host-gw routed pod-to-pod traffic keeps its source), returns
untouched; everything else except multicast is masqueraded. The chain is per network rather than per
pod (the reference plugin adds rules per container), so ADD re-asserts it in one transaction and DEL
has nothing to undo.
"""

from __future__ import annotations

from cni import naming, nft
from cni.ipnet import AF_INET, AF_INET6, Prefix

TABLE = "pinnace_masq"
MULTICAST = {AF_INET: "224.0.0.0/4", AF_INET6: "ff00::/8"}


def chain(network: str) -> str:
    return nft.identifier(f"masq_{network}_{naming.digest(network)[:6]}")


def rules(*, subnets: list[Prefix], exclude: list[Prefix]) -> list[str]:
    """The chain's rules, written exactly as ``nft list`` prints them back (so they can be compared)."""
    found = []
    for subnet in subnets:
        family = "ip" if subnet.family == AF_INET else "ip6"
        for destination in [subnet, *(e for e in exclude if e.family == subnet.family)]:
            found.append(f"{family} saddr {subnet} {family} daddr {destination} return")
        found.append(f"{family} saddr {subnet} {family} daddr != {MULTICAST[subnet.family]} masquerade")
    return found


def script(network: str, *, subnets: list[Prefix], exclude: list[Prefix]) -> str:
    """An nft transaction (re)defining the network's chain: idempotent."""
    name = chain(network)
    lines = [f"add table inet {TABLE}",
             f"add chain inet {TABLE} {name} {{ type nat hook postrouting priority srcnat; policy accept; }}",
             f"flush chain inet {TABLE} {name}"]
    lines += [f"add rule inet {TABLE} {name} {rule}" for rule in rules(subnets=subnets, exclude=exclude)]
    return "\n".join(lines) + "\n"


def ensure(network: str, *, subnets: list[Prefix], exclude: list[Prefix]) -> None:
    """Re-assert the chain on every ADD, but rewrite it only when it differs (a rewrite costs ~15 ms)."""
    current = nft.chain_rules("inet", TABLE)
    if current is not None and current.get(chain(network)) == rules(subnets=subnets, exclude=exclude):
        return
    nft.apply(script(network, subnets=subnets, exclude=exclude))


def present(network: str) -> bool:
    return chain(network) in (nft.chain_rules("inet", TABLE) or {})
