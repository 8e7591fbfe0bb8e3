"""What ``pinnace down`` removes after the processes are gone: a table of idempotent clean-up steps.

Each row of ``STEPS`` takes a ``Scope`` (the data dir ``up`` made and what lives under it) and
returns what it removed; running it again removes nothing and fails on nothing. A step that fails
is reported and the others still run, so one stuck mount does not leave a bridge behind. The steps
only touch what this cluster made: the pods' namespaces pinned under the agent's run dir, the
cgroups recorded by the agent's engine, the pod bridge and the veths on it, the nftables chain and
port-map elements of the node's CNI network (found by the comments our plugins put on them), mounts
under the data dir, the data dir itself and our context in the user's kubeconfig.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cli.agent_cmds import AgentPaths

if TYPE_CHECKING:
    from engine.runtime.cgroups import ContainerCgroup

MOUNTINFO = Path("/proc/self/mountinfo")
SYS_NET = Path("/sys/class/net")
DEFAULT_NETWORK = "pinnace"
NAMESPACE_DIRS = ("netns", "ipcns", "utsns")
POD_IFNAME = "eth0"  # the interface the CRI asks CNI for in every pod
MNT_DETACH = 2
PORTMAP_TABLE = "pinnace_portmap"
MASQ_TABLE = "pinnace_masq"

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class CleanupError(RuntimeError):
    """A step could not remove something; the message says what and why."""


@dataclass(frozen=True)
class Scope:
    """What one cluster made on this host."""

    data_dir: Path
    agent: AgentPaths
    kubeconfig: Path | None = None  # the user's kubeconfig, to take ``context`` out of
    context: str = "pinnace"
    server: str | None = None  # only a ``context`` whose cluster is this API server
    mountinfo: Path = MOUNTINFO


# ---------------------------------------------------------------------------------------- helpers


def umount_lazy(path: Path) -> bool:
    """Detach whatever is mounted on ``path``; False if nothing was."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise CleanupError(f"cannot unmount {path}: {os.strerror(err)}")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(root: Path, *, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Mount points at or below ``root``, deepest first (children must go before their parents)."""
    found = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = Path(_unescape(fields[4]))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: (len(p.parts), str(p)), reverse=True)


def _ip(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)


def _nft(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nft", *argv], capture_output=True, text=True, check=False)


def network_of(agent: AgentPaths) -> tuple[str, str, Path | None] | None:
    """(network name, bridge, IPAM dir) from the node's conflist; None when the node never had one
    (the kubelet writes it before the first pod: no conflist, no pod network of ours to remove)."""
    from cni.ipam_host_local import DEFAULT_DATA_DIR

    for conf in sorted(agent.cni_conf_dir.glob("*.conflist")) if agent.cni_conf_dir.is_dir() else []:
        try:
            doc = json.loads(conf.read_text())
        except (OSError, ValueError):
            continue
        network = str(doc.get("name") or DEFAULT_NETWORK)
        for plugin in doc.get("plugins") or []:
            if isinstance(plugin, dict) and plugin.get("bridge"):
                ipam = plugin.get("ipam") or {}
                return network, str(plugin["bridge"]), Path(ipam.get("dataDir") or DEFAULT_DATA_DIR) / network
    return None


# ------------------------------------------------------------------------------------------- steps


def remove_namespaces(scope: Scope) -> list[str]:
    """The pods' network/IPC/UTS namespaces the engine pinned under the agent's run dir."""
    removed = []
    for kind in NAMESPACE_DIRS:
        directory = scope.agent.run_dir / kind
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            umount_lazy(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed.append(f"{kind} {path.name}")
        with contextlib.suppress(OSError):
            directory.rmdir()
    return removed


def _container_cgroups(scope: Scope) -> list[str]:
    from engine.containers.layout import containers_dir

    paths = []
    directory = containers_dir(scope.agent.engine_root)
    for state in sorted(directory.glob("*/state.json")) if directory.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            path = json.loads(state.read_text()).get("cgroups_path") or ""
            if path:
                paths.append(path)
    return paths


def _kill_members(cgroup: ContainerCgroup) -> None:
    """SIGKILL what is left in a container's cgroup (only ours: the engine recorded it)."""
    for pid in cgroup.pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def remove_cgroups(scope: Scope) -> list[str]:
    """The cgroups of the containers the agent's engine recorded, then their parent if now empty."""
    from engine.runtime import cgroups

    removed = []
    parents = set()
    for path in _container_cgroups(scope):
        parents.add(str(Path(path.strip("/")).parent))
        cgroup = cgroups.ContainerCgroup(path)
        if not cgroup.exists():
            continue
        _kill_members(cgroup)
        cgroup.remove()
        if cgroup.exists():
            raise CleanupError(f"cgroup {path} is still in use")
        removed.append(f"cgroup {path}")
    for parent in parents - {"."}:
        cgroups.ContainerCgroup(parent).remove()  # rmdir only: fails quietly while another engine uses it
    return removed


def _bridge_ports(bridge: str) -> list[str]:
    ports = SYS_NET / bridge / "brif"
    return sorted(p.name for p in ports.iterdir()) if ports.is_dir() else []


def _our_veths(scope: Scope, network: str) -> list[str]:
    """Host ends of the veths our pods' sandboxes got (the plugin derives them from the sandbox id)."""
    from cni import naming

    sandboxes = scope.agent.engine_root / "cri" / "sandboxes"
    ids = sorted(d.name for d in sandboxes.iterdir()) if sandboxes.is_dir() else []
    return [naming.host_veth_name(network, container_id=i, ifname=POD_IFNAME) for i in ids]


def remove_links(scope: Scope) -> list[str]:
    """Our pods' veths, then the pod bridge once no port is left on it, and the network's IPAM state.

    The bridge and the network are per host: another cluster's pods on it keep it (and, in
    ``remove_nft``, the network's masquerade chain) alive."""
    found = network_of(scope.agent)
    if found is None:
        return []
    network, bridge, ipam_dir = found
    removed = []
    for veth in _our_veths(scope, network):
        if (SYS_NET / veth).exists() and _ip("link", "del", veth).returncode == 0:
            removed.append(f"link {veth}")
    if (SYS_NET / bridge).exists() and not _bridge_ports(bridge):
        done = _ip("link", "del", bridge)
        if done.returncode != 0 and (SYS_NET / bridge).exists():
            raise CleanupError(f"cannot delete bridge {bridge}: {done.stderr.strip()}")
        removed.append(f"bridge {bridge}")
    if ipam_dir is not None and ipam_dir.is_dir() and scope.data_dir not in ipam_dir.parents and not _leases(ipam_dir):
        shutil.rmtree(ipam_dir, ignore_errors=True)
        removed.append(f"IPAM state {ipam_dir}")
    return removed


def remove_engine_bridge(scope: Scope) -> list[str]:
    """The engine's own Docker-API bridge (made by the node's engine, e.g. for the demo image's
    build), once no container of any engine is plugged into it; an engine that needs it again
    makes it again."""
    from engine.daemon.network import BRIDGE_NAME

    if not (SYS_NET / BRIDGE_NAME).exists() or _bridge_ports(BRIDGE_NAME):
        return []
    done = _ip("link", "del", BRIDGE_NAME)
    if done.returncode != 0 and (SYS_NET / BRIDGE_NAME).exists():
        raise CleanupError(f"cannot delete bridge {BRIDGE_NAME}: {done.stderr.strip()}")
    return [f"bridge {BRIDGE_NAME}"]


def _leases(ipam_dir: Path) -> list[str]:
    """Files named after a leased address: a pod (of another cluster sharing the dir) still holds it."""
    import ipaddress

    found = []
    for entry in ipam_dir.iterdir():
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(entry.name)
            found.append(entry.name)
    return found


def _table(name: str) -> list[dict] | None:
    done = _nft("-j", "list", "table", "inet", name)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout).get("nftables", [])


def remove_nft(scope: Scope) -> list[str]:
    """Our network's masquerade chain and its port-map elements; each table once nothing else uses it."""
    from cni import masquerade, naming

    found = network_of(scope.agent)
    if found is None:
        return []
    network, bridge, _ = found
    removed = []
    masq = _table(MASQ_TABLE)
    if masq is not None and not (SYS_NET / bridge).exists():  # a bridge still in use keeps its network
        chain = masquerade.chain(network)
        chains = {o["chain"]["name"] for o in masq if "chain" in o}
        if chain in chains and _nft("delete", "chain", "inet", MASQ_TABLE, chain).returncode == 0:
            removed.append(f"nftables chain inet {MASQ_TABLE} {chain}")
            chains.discard(chain)
        if not chains and _nft("delete", "table", "inet", MASQ_TABLE).returncode == 0:
            removed.append(f"nftables table inet {MASQ_TABLE}")
    ports = _table(PORTMAP_TABLE)
    if ports is not None:
        owner = naming.network_tag(network) + "/"
        others = 0
        for obj in ports:
            for kind in ("map", "set"):
                body = obj.get(kind)
                for elem in (body or {}).get("elem", []) if isinstance(body, dict) else []:
                    comment = elem.get("elem", {}).get("comment", "") if isinstance(elem, dict) else ""
                    others += 0 if comment.startswith(owner) else 1
        if others == 0 and _nft("delete", "table", "inet", PORTMAP_TABLE).returncode == 0:
            removed.append(f"nftables table inet {PORTMAP_TABLE}")
    return removed


def remove_proxy_table(scope: Scope) -> list[str]:
    """The service proxy's table (the proxy leaves it in place on exit so traffic survives restarts)."""
    from cli.agent_cmds import PROXY_TABLE

    if _nft("list", "table", "ip", PROXY_TABLE).returncode != 0:
        return []
    done = _nft("delete", "table", "ip", PROXY_TABLE)
    if done.returncode != 0:
        raise CleanupError(f"nft delete table ip {PROXY_TABLE}: {done.stderr.strip()}")
    return [f"nftables table ip {PROXY_TABLE}"]


def remove_dns_address(scope: Scope) -> list[str]:
    """The cluster DNS address the DNS part bound on this host (its dummy link, or on lo)."""
    import asyncio

    from cli.agent_cmds import DEFAULT_CLUSTER_DNS
    from proxy.dns import address

    removed = asyncio.run(address.remove(DEFAULT_CLUSTER_DNS))
    return [f"cluster DNS address {DEFAULT_CLUSTER_DNS}"] if removed else []


def remove_mounts(scope: Scope) -> list[str]:
    """Anything still mounted under the data dir (volumes, rootfs overlays), deepest first."""
    removed = []
    for _ in range(3):  # a lazy unmount can reveal a mount that was underneath
        points = mounts_under(scope.data_dir, mountinfo=scope.mountinfo) if scope.data_dir.exists() else []
        if not points:
            break
        for point in points:
            if umount_lazy(point):
                removed.append(f"mount {point}")
    return removed


def remove_data_dir(scope: Scope) -> list[str]:
    """The data dir, never across a mount point (a hostPath bind must not lose its files)."""
    if not scope.data_dir.exists():
        return []
    left = mounts_under(scope.data_dir, mountinfo=scope.mountinfo)
    if left:
        raise CleanupError(f"not removing {scope.data_dir}: still mounted: {', '.join(map(str, left[:3]))}")
    shutil.rmtree(scope.data_dir)
    return [f"data dir {scope.data_dir}"]


def remove_kubeconfig_entries(scope: Scope) -> list[str]:
    from cli import user_kubeconfig

    if scope.kubeconfig is None:
        return []
    return [f"kubeconfig {item} ({scope.kubeconfig})"
            for item in user_kubeconfig.remove(scope.kubeconfig, context=scope.context, server=scope.server)]


#: (what, step), in order: namespaces and links before the mounts and files they hold on to
STEPS: tuple[tuple[str, Callable[[Scope], list[str]]], ...] = (
    ("pod namespaces", remove_namespaces),
    ("cgroups", remove_cgroups),
    ("pod network links", remove_links),
    ("engine bridge", remove_engine_bridge),
    ("nftables rules", remove_nft),
    ("service proxy rules", remove_proxy_table),
    ("cluster DNS address", remove_dns_address),
    ("mounts", remove_mounts),
    ("data dir", remove_data_dir),
    ("kubeconfig entries", remove_kubeconfig_entries),
)


def run_all(scope: Scope, *, steps: tuple[tuple[str, Callable[[Scope], list[str]]], ...] = STEPS,
            ) -> tuple[list[str], list[str]]:
    """Every step, whatever the others did: (what was removed, what failed)."""
    removed: list[str] = []
    failed: list[str] = []
    for what, step in steps:
        try:
            removed += step(scope)
        except (OSError, ValueError, CleanupError, subprocess.SubprocessError) as exc:
            failed.append(f"{what}: {exc}")
    return removed, failed
