"""Opening a TCP connection from inside a pod's network namespace (for port-forward).

A socket belongs to the network namespace it was created in, whatever thread uses it later. So
a worker thread briefly enters the pod's namespace with ``setns(2)`` (per thread for network
namespaces), creates the socket there, and returns to its own namespace before doing anything
else; the connect to ``127.0.0.1:port`` then happens on the event loop and reaches what listens
on the pod's loopback, as kubelet/containerd port-forwarding does. A thread that cannot return to
its namespace would be poisoned for later work, so that case aborts the process loudly.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket

from engine.cri.errors import FailedPrecondition

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 10.0

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in(netns: str) -> socket.socket:
    """A TCP socket created in the network namespace at ``netns`` (blocking; run in a thread)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            try:
                _setns(own)
            except OSError:  # this thread now lives in the pod: never let it run other work
                os.abort()
    finally:
        os.close(own)


async def dial(netns: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``127.0.0.1:port`` in ``netns`` ("" = the host's namespace)."""
    if not 0 < port < 65536:
        raise FailedPrecondition(f"invalid port {port}")
    try:
        sock = await asyncio.to_thread(socket_in, netns) if netns else socket.socket()
    except OSError as exc:
        raise FailedPrecondition(f"cannot enter the pod's network namespace: {exc.strerror}") from None
    sock.setblocking(False)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except (OSError, TimeoutError) as exc:
        sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "timed out"
        raise FailedPrecondition(f"cannot connect to port {port} in the pod: {reason}") from None
    return await asyncio.open_connection(sock=sock)
