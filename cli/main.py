"""The ``pinnace`` command: one sub-command per table entry, each a small module's ``run``.

Errors a user can act on are printed as one line and exit non-zero; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from cli import cluster_cmds, engine_cmds, server_cmds


class CliError(Exception):
    """A failure to report as one line."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: tuple[Command, ...] = (
    Command("server", "run the control plane (API server) in the foreground",
            server_cmds.configure_server, server_cmds.run_server),
    Command("kubeconfig", "print or write the admin kubeconfig of a data dir",
            server_cmds.configure_kubeconfig, server_cmds.run_kubeconfig),
    Command("up", "start a one-node cluster on this host in the background (embedded datastore)",
            cluster_cmds.configure_up, cluster_cmds.run_up),
    Command("down", "stop the cluster `up` started and remove what it made",
            cluster_cmds.configure_down, cluster_cmds.run_down),
    Command("engine", "the container engine: its daemon (serve) and docker-like image commands",
            engine_cmds.configure, engine_cmds.run),
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pinnace", description="A light Kubernetes-compatible cluster.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(p)
        p.set_defaults(run=command.run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"pinnace {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
