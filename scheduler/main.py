"""``pinnace scheduler --kubeconfig FILE``: the scheduler as its own process.

Nothing heavy is imported until the command runs, so ``pinnace --help`` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context to use (default: current-context)")
    p.add_argument("--scheduler-name", default="default-scheduler",
                   help="schedule pods whose spec.schedulerName is this (default: default-scheduler)")
    p.add_argument("--bind-concurrency", type=int, default=64, help="bindings in flight at once (default 64)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every decision (debug level)")


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from machinery.client import ApiClient
    from machinery.kubeconfig import load_kubeconfig
    from scheduler.scheduler import Scheduler

    config = await asyncio.to_thread(load_kubeconfig, args.kubeconfig, context=args.context)
    async with ApiClient(config) as client:
        scheduler = Scheduler(client, scheduler_name=args.scheduler_name, bind_concurrency=args.bind_concurrency)
        try:
            await scheduler.start()
        except TimeoutError:
            await scheduler.stop()
            raise RuntimeError(f"could not list nodes and pods from {config.server} within 60s") from None
        print(f"pinnace scheduler: scheduling for {config.server} as {args.scheduler_name}",
              file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await scheduler.stop()


def run(args: argparse.Namespace) -> int:
    if args.bind_concurrency < 1:
        raise ValueError("--bind-concurrency must be at least 1")
    from machinery import service

    return service.run(lambda stop: _serve(args, stop), verbose=args.verbose)
