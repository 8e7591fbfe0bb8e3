"""The host side of a cluster's network: its bridge, one network namespace per node, and undoing them.

Each step is a list of ``ip``/``nft``/``sysctl`` command lines built from the layout (``*_commands``:
pure, so tests can read them), run in order by ``Runner``. A node is a namespace
``pinnace-<cluster>-<n>`` whose ``eth0`` is one end of a veth; the other end (``pnv<tag>-<n>``) is a
port of the cluster's bridge. Inside: the node address /24, loopback up, the default route via the
bridge's host address (where the API servers listen) and IP forwarding on (pods are routed through
the node). On the host, a small nftables table masquerades what the nodes send elsewhere (image
pulls, DNS), and ``delete`` takes the bridge, the table and the host's routes into the cluster CIDR
away. Deleting a namespace deletes everything inside it (the node's pod bridge, veths, nftables).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from cli.multinode.layout import Cluster, NodeSpec

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")
NODE_IFNAME = "eth0"
RTPROT_PINNACE = 113  # the routing protocol our host-gw routes carry (cni.routes)

Command = list[str]


class NetworkError(RuntimeError):
    """A command that builds or removes the cluster's network failed (its stderr says why)."""


class Runner:
    """Runs command lines; ``check`` ones raise NetworkError, the others only report."""

    def __init__(self, run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]] | None = None) -> None:
        self._run = run or (lambda argv: subprocess.run(list(argv), capture_output=True, text=True, check=False))

    def __call__(self, commands: Sequence[Command], *, check: bool = True) -> list[str]:
        """Run each command; the error lines of the ones that failed (when not ``check``)."""
        errors = []
        for argv in commands:
            done = self._run(argv)
            if done.returncode != 0:
                message = f"{' '.join(argv)}: {(done.stderr or done.stdout).strip() or f'exit {done.returncode}'}"
                if check:
                    raise NetworkError(message)
                errors.append(message)
        return errors


# ------------------------------------------------------------------------------------ commands


def bridge_commands(cluster: Cluster) -> list[Command]:
    bridge, prefix = cluster.bridge, cluster.subnet.prefixlen
    return [["ip", "link", "add", bridge, "type", "bridge"],
            ["ip", "addr", "add", f"{cluster.gateway}/{prefix}", "dev", bridge],
            ["ip", "link", "set", bridge, "up"]]


def masquerade_script(cluster: Cluster) -> str:
    """The host's table: the nodes' traffic leaving by another interface gets the host's address."""
    table = cluster.nft_table
    return (f"add table inet {table}\n"
            f"add chain inet {table} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n"
            f"flush chain inet {table} postrouting\n"
            f"add rule inet {table} postrouting oifname \"lo\" return\n"  # the host to itself: keep its source
            f"add rule inet {table} postrouting ip saddr {cluster.subnet} oifname != \"{cluster.bridge}\" "
            f"masquerade\n")


def node_commands(cluster: Cluster, node: NodeSpec) -> list[Command]:
    """A node's namespace, its veth into the bridge, address, routes and forwarding."""
    ns, prefix = node.netns, cluster.subnet.prefixlen
    inside = ["ip", "-n", ns]
    return [["ip", "netns", "add", ns],
            ["ip", "link", "add", node.veth, "type", "veth", "peer", "name", NODE_IFNAME, "netns", ns],
            ["ip", "link", "set", node.veth, "master", cluster.bridge, "up"],
            [*inside, "link", "set", "lo", "up"],
            [*inside, "addr", "add", f"{node.ip}/{prefix}", "dev", NODE_IFNAME],
            [*inside, "link", "set", NODE_IFNAME, "up"],
            [*inside, "route", "add", "default", "via", cluster.gateway],
            ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]]


def node_link_commands(node: NodeSpec, *, up: bool) -> list[Command]:
    """Cut a node off the bridge (a dead machine answers nothing), or plug it back."""
    return [["ip", "link", "set", node.veth, "up" if up else "down"]]


def netns_path(node: NodeSpec) -> Path:
    return NETNS_DIR / node.netns


def node_teardown_commands(node: NodeSpec, *, netns_dir: Path = NETNS_DIR, sys_net: Path = SYS_NET) -> list[Command]:
    """Only what still exists, so a second delete has nothing to do and nothing to fail."""
    commands = []
    if (netns_dir / node.netns).exists():
        commands.append(["ip", "netns", "del", node.netns])  # takes eth0, so the host end goes too
    if (sys_net / node.veth).exists():
        commands.append(["ip", "link", "del", node.veth])
    return commands


def cluster_teardown_commands(cluster: Cluster, *, sys_net: Path = SYS_NET, host_routes: Sequence[str] = (),
                              nft_tables: Sequence[str] = ()) -> list[Command]:
    commands = [["ip", "route", "del", dst, "proto", str(RTPROT_PINNACE)] for dst in host_routes]
    if (sys_net / cluster.bridge).exists():
        commands.append(["ip", "link", "del", cluster.bridge])
    if cluster.nft_table in nft_tables:
        commands.append(["nft", "delete", "table", "inet", cluster.nft_table])
    return commands


# ------------------------------------------------------------------------------- host queries


def host_networks(run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]] | None = None,
                  ) -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host has an address or a route in (a new cluster must avoid them)."""
    run = run or (lambda argv: subprocess.run(list(argv), capture_output=True, text=True, check=False))
    found: list[ipaddress.IPv4Network] = []
    routes = run(["ip", "-j", "-4", "route", "show", "table", "all"])
    for route in json.loads(routes.stdout or "[]") if routes.returncode == 0 else []:
        dst = route.get("dst")
        if dst and dst != "default" and route.get("type", "unicast") == "unicast":
            try:
                found.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
            except ValueError:
                continue
    addrs = run(["ip", "-j", "-4", "addr"])
    for link in json.loads(addrs.stdout or "[]") if addrs.returncode == 0 else []:
        for info in link.get("addr_info") or []:
            if info.get("family") == "inet" and info.get("scope") != "host":
                found.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return found


def host_routes_in(cidr: ipaddress.IPv4Network,
                   run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]] | None = None) -> list[str]:
    """Our host-gw routes on the host that fall inside ``cidr`` (this cluster's pod CIDRs)."""
    run = run or (lambda argv: subprocess.run(list(argv), capture_output=True, text=True, check=False))
    done = run(["ip", "-j", "-4", "route", "show", "proto", str(RTPROT_PINNACE)])
    found = []
    for route in json.loads(done.stdout or "[]") if done.returncode == 0 else []:
        dst = route.get("dst") or ""
        try:
            if dst and ipaddress.IPv4Network(dst, strict=False).subnet_of(cidr):
                found.append(dst)
        except ValueError:
            continue
    return found


def nft_tables(run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]] | None = None) -> list[str]:
    run = run or (lambda argv: subprocess.run(list(argv), capture_output=True, text=True, check=False))
    done = run(["nft", "-j", "list", "tables", "inet"])
    if done.returncode != 0:
        return []
    return [o["table"]["name"] for o in json.loads(done.stdout).get("nftables", []) if "table" in o]


# ----------------------------------------------------------------------------------- actions


def apply_nft(script: str) -> None:
    done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"nft: {done.stderr.strip()}")


def create_bridge(cluster: Cluster, runner: Runner) -> None:
    runner(bridge_commands(cluster))
    apply_nft(masquerade_script(cluster))


def create_node(cluster: Cluster, node: NodeSpec, *, runner: Runner) -> None:
    runner(node_commands(cluster, node))


def delete_node(node: NodeSpec, runner: Runner) -> list[str]:
    """Remove the node's namespace, then its veth if that outlived it; what was removed."""
    removed = []
    for _ in range(2):  # the namespace's deletion usually takes the veth with it
        commands = node_teardown_commands(node)[:1]
        if not commands:
            break
        if not runner(commands, check=False):
            removed.append(f"{commands[0][1]} {commands[0][-1]}")
    return removed


def delete_cluster_network(cluster: Cluster, runner: Runner) -> tuple[list[str], list[str]]:
    """The host routes into the cluster CIDR, the bridge and the nftables table: (removed, errors)."""
    commands = cluster_teardown_commands(cluster, host_routes=host_routes_in(cluster.cluster_cidr),
                                         nft_tables=nft_tables())
    errors = runner(commands, check=False)
    failed = {e.split(":", 1)[0] for e in errors}
    return [_describe(c) for c in commands if " ".join(c) not in failed], errors


def _describe(command: Command) -> str:
    """``ip route del 10.1.0.0/24 ...`` → ``route 10.1.0.0/24``; ``nft delete table inet t`` → ``nftables table t``."""
    if command[0] == "nft":
        return f"nftables table {command[-1]}"
    return f"{command[1]} {command[3]}"
