"""Network namespaces for the plugin: open ``CNI_NETNS`` safely and move this thread into it.

Python 3.11 has no ``os.setns``, and the ``ctypes`` package costs ~4 ms of import, so ``setns(2)`` is
called through the C module ``_ctypes`` underneath it (one function pointer, built on first use).
``setns`` moves only the calling thread; a netlink socket opened afterwards stays bound to the
namespace it was opened in, which is how the plugin keeps one socket on the host and one in the pod.
"""

from __future__ import annotations

import fcntl
import posix  # os costs ~1 ms of start-up (cni/main.py)

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # ioctl on a namespace file: which kind of namespace it is

_setns = None


class NetnsError(OSError):
    """The path is missing, is not a network namespace, or the kernel refused to enter it."""


def open_netns(path: str) -> int:
    """An O_RDONLY fd on the namespace at ``path``, checked to be a network namespace."""
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError(exc.errno, f"cannot open network namespace {path}: {exc.strerror}") from None
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        kind = None
    if kind != CLONE_NEWNET:
        posix.close(fd)
        raise NetnsError(22, f"{path} is not a network namespace")
    return fd


def _setns_function() -> object:
    global _setns
    if _setns is None:
        import _ctypes

        class CInt(_ctypes._SimpleCData):
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = CInt

        _setns = Function(_ctypes.dlsym(_ctypes.dlopen(None, 0), "setns"))
    return _setns


def enter(fd: int) -> None:
    """Move the calling thread into the network namespace open on ``fd``."""
    if _setns_function()(fd, CLONE_NEWNET) != 0:
        import _ctypes

        errno = _ctypes.get_errno()
        raise NetnsError(errno, f"setns into the network namespace failed: {posix.strerror(errno)}")


def current() -> int:
    """An fd on the calling thread's own network namespace, to come back to."""
    return posix.open("/proc/thread-self/ns/net", posix.O_RDONLY | posix.O_CLOEXEC)
