"""The ``pinnace`` command: one sub-command per table entry, each a small module's ``run``.

Errors a user can act on are printed as one line and exit non-zero; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass


class CliError(Exception):
    """A failure to report as one line."""


@dataclass(frozen=True)
class Command:
    """A top-level command: the module that configures its parser and runs it, imported only
    when that command is used, so ``pinnace engine images`` pays for nothing else."""

    name: str
    help: str
    module: str
    configure: str = "configure"
    run: str = "run"


COMMANDS: tuple[Command, ...] = (
    Command("server", "run the control plane (API server, controllers, scheduler) in the foreground",
            "cli.server_cmds", "configure_server", "run_server"),
    Command("kubeconfig", "print or write the admin kubeconfig of a data dir",
            "cli.server_cmds", "configure_kubeconfig", "run_kubeconfig"),
    Command("up", "start a one-node cluster on this host in the background (embedded datastore)",
            "cli.cluster_cmds", "configure_up", "run_up"),
    Command("down", "stop the cluster `up` started and remove what it made",
            "cli.cluster_cmds", "configure_down", "run_down"),
    Command("cluster", "multi-node test clusters of network-namespace nodes: create, list, delete, kubeconfig, "
                       "node, load-image", "cli.multinode.commands"),
    Command("engine", "the container engine: its daemon (serve) and docker-like image commands",
            "cli.engine_cmds"),
    Command("scheduler", "run the scheduler against an API server (--kubeconfig FILE)", "scheduler.main"),
    Command("controller-manager", "run the controllers against an API server (--kubeconfig FILE)",
            "controllers.main"),
    Command("cni", "our CNI plugins: `install` writes them into a CNI bin dir", "cni.install"),
    Command("kubelet", "run the node agent that runs pods through the engine's CRI (--kubeconfig FILE)",
            "kubelet.main"),
    Command("agent", "run a node: engine, kubelet, service proxy and DNS under one supervisor",
            "cli.agent_cmds"),
    Command("status", "summarise the cluster `up` started: processes, API, nodes, pods",
            "cli.cluster_cmds", "configure_status", "run_status"),
    Command("proxy", "run the service proxy: Services and EndpointSlices to nftables (--kubeconfig FILE)",
            "proxy.main"),
    Command("dns", "run the cluster DNS server (--kubeconfig FILE)", "proxy.dns.main"),
)


def parser(argv: list[str]) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pinnace", description="A light Kubernetes-compatible cluster.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.name == wanted:
            module = importlib.import_module(command.module)
            getattr(module, command.configure)(p)
            p.set_defaults(run=getattr(module, command.run))
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv).parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"pinnace {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
