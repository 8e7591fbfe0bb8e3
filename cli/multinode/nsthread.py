"""Running a piece of work inside a node's network namespace, on a thread of its own.

A network namespace belongs to a thread, not to the process: a thread that ``setns``-es into a node's
namespace opens its sockets there, and the processes it starts inherit it. So host-side code reaches
into a node without forking (pyroute2's own ``netns=`` forks a helper, and a forked copy of an
asyncio process shares its signal wake-up pipe: the helper's SIGTERM stopped our route keeper) and
without a new mount namespace (``ip netns exec``), and the calling thread never leaves the host's.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

T = TypeVar("T")


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def in_namespace(netns: str, work: Callable[[], T]) -> T:
    """``work()`` on a new thread inside ``/run/netns/<netns>``; its result, or its exception re-raised."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            try:
                target = os.open(f"{NETNS_DIR}/{netns}", os.O_RDONLY)
                try:
                    _setns(target)
                    try:
                        outcome["value"] = work()
                    finally:
                        _setns(home)
                finally:
                    os.close(target)
            finally:
                os.close(home)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
