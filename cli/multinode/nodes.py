"""The nodes of a multi-node cluster: credentials, their agents in their namespaces, stop/start, removal.

A node's state dir is its agent's data dir (``AgentPaths``); beside what the agent keeps there are
its kubeconfig (a client cert issued from the cluster's CA), ``agent.pid`` and ``agent.log``. The
agent runs in the node's network namespace only (``procs.in_netns``), so its mounts are the host's
and the clean-up table of ``pinnace down`` (``cli.cleanup``) applies to a node unchanged.

``stop`` simulates a machine dying: the agent, its engine and kubelet, every container and its
conmon are SIGKILLed and the node's link to the bridge goes down; ``start`` plugs it back in and
starts the agent, which finds its pods' containers dead and lets the kubelet deal with them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from cli import cleanup, pod_sweep
from cli.agent_cmds import PARTS, AgentPaths
from cli.cluster_cmds import Daemon, write_node_kubeconfig
from cli.multinode import control_plane, nsthread, procs
from cli.multinode.layout import KUBELET_PORT, Cluster, NodeSpec

AGENT = Daemon("agent", b"agent")
#: the clean-up steps for a node; the namespace deletion takes its links and nftables rules
NODE_CLEANUP = tuple(s for s in cleanup.STEPS if s[1] in (cleanup.remove_namespaces, cleanup.remove_cgroups,
                                                           cleanup.remove_mounts, cleanup.remove_data_dir))


def kubeconfig_path(node: NodeSpec) -> Path:
    return node.path / "kubeconfig"


def agent_argv(cluster: Cluster, node: NodeSpec) -> list[str]:
    return procs.in_netns(node.netns, [
        *procs.PINNACE, "agent", "--kubeconfig", str(kubeconfig_path(node)), "--data-dir", node.dir,
        "--node-name", node.name, "--node-ip", node.ip, "--kubelet-port", str(KUBELET_PORT),
        "--cluster-cidr", str(cluster.cluster_cidr), *lease_flags(cluster)])


def lease_flags(cluster: Cluster) -> list[str]:
    """A node monitor grace period shorter than the default gets a Lease as long as it, renewed every
    quarter of it, so a healthy node is never a heartbeat away from being declared unreachable."""
    flags = cluster.server_flags
    if "--node-monitor-grace-period" not in flags:
        return []
    from controllers.main import duration

    grace = duration(flags[flags.index("--node-monitor-grace-period") + 1])
    return ["--node-lease-duration-seconds", str(max(1, int(grace)))] if grace < 40 else []


def write_kubeconfig(cluster: Cluster, node: NodeSpec) -> Path:
    index = cluster.server_for(node)
    node.path.mkdir(parents=True, exist_ok=True)
    return write_node_kubeconfig(control_plane.files(cluster.control_planes[index]), node_name=node.name,
                                 server=cluster.api_url(index), target=kubeconfig_path(node))


def start_agent(cluster: Cluster, node: NodeSpec) -> int:
    """Start the node's agent unless it runs; its PID."""
    running = AGENT.running_pid(node.path)
    if running is not None:
        return running
    if not kubeconfig_path(node).exists():
        write_kubeconfig(cluster, node)
    AgentPaths(node.path).check()
    return procs.spawn(AGENT, node.path, argv=agent_argv(cluster, node)).pid


def agent_exited(node: NodeSpec) -> bool:
    """The agent we started is dead (by its PID alone: just after the start its command line is still
    ``nsenter``'s, or even ours before the exec, so the marker check of ``running_pid`` cannot be used)."""
    return procs.read_pid(AGENT.pid_file(node.path)) is None


def agent_pids(node: NodeSpec) -> list[int]:
    """The agent and its parts (engine, kubelet) as their PID files name them, if alive."""
    pids = [AGENT.running_pid(node.path)]
    pids += [procs.read_pid(node.path / f"{part.name}.pid") for part in PARTS]  # the supervisor's PID files
    return [p for p in pids if p is not None]


def container_pids(node: NodeSpec) -> list[int]:
    """Every container process and its conmon the node's engine recorded."""
    from engine.containers.layout import containers_dir

    found: list[int] = []
    directory = containers_dir(AgentPaths(node.path).engine_root)
    for state in sorted(directory.glob("*/state.json")) if directory.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(state.read_text())
            found += [int(p) for p in (record.get("pid"), record.get("conmon_pid")) if p]
    return found


def kill(node: NodeSpec) -> list[int]:
    """SIGKILL the node's agent, its parts, then its containers (the agent first: nothing restarts them)."""
    killed = procs.kill_now(agent_pids(node))
    killed += procs.kill_now(container_pids(node))
    return killed


def stop_agent(node: NodeSpec) -> int | None:
    """Stop the agent cleanly (SIGTERM: it stops its engine and kubelet)."""
    return procs.stop(AGENT, node.path, grace=15.0)


def sweep_pods(node: NodeSpec) -> list[str]:
    """Every pod of the node through a CRI over its engine, run in the node's namespace (so CNI DEL
    acts there, never on the host's network)."""
    paths = AgentPaths(node.path)
    if not Path(f"/run/netns/{node.netns}").exists():
        return []
    return nsthread.in_namespace(node.netns, lambda: pod_sweep.remove_all_pods(paths))


def clean(node: NodeSpec) -> tuple[list[str], list[str]]:
    """``cli.cleanup``'s node steps over the node's dir: (removed, failed)."""
    scope = cleanup.Scope(data_dir=node.path, agent=AgentPaths(node.path))
    return cleanup.run_all(scope, steps=NODE_CLEANUP)
