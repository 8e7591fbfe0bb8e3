"""Run a helper program (``nft``, a delegated IPAM plugin) with input on stdin, capturing its output.

``subprocess`` costs ~10 ms of import here (``selectors``, ``signal``, ``threading``...), more than a
``nft`` run itself, so the plugin spawns with ``posix_spawn`` and three pipes. Input is written
whole before output is read: fine for the small, bounded exchanges the plugin has (a rule batch, a
CNI config) — the child's output waits in the pipe while we write.
"""

from __future__ import annotations

import _signal
import posix  # os costs ~1 ms of start-up (cni/main.py)


class SpawnError(OSError):
    """The program could not be started."""


def run(argv: list[str], *, stdin: bytes = b"", env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """Run ``argv`` (``argv[0]`` a path, or a name looked up on PATH); return (exit status, stdout, stderr)."""
    in_read, in_write = posix.pipe2(posix.O_CLOEXEC)
    out_read, out_write = posix.pipe2(posix.O_CLOEXEC)
    err_read, err_write = posix.pipe2(posix.O_CLOEXEC)
    actions = [(posix.POSIX_SPAWN_DUP2, in_read, 0), (posix.POSIX_SPAWN_DUP2, out_write, 1),
               (posix.POSIX_SPAWN_DUP2, err_write, 2)]
    launch = posix.posix_spawn if "/" in argv[0] else posix.posix_spawnp
    try:
        # Python ignores SIGPIPE; the child gets the default back, as subprocess's restore_signals does
        pid = launch(argv[0], argv, posix.environ if env is None else env, file_actions=actions,
                     setsigdef=(_signal.SIGPIPE,))
    except OSError as exc:
        for fd in (in_read, in_write, out_read, out_write, err_read, err_write):
            posix.close(fd)
        raise SpawnError(exc.errno, f"cannot run {argv[0]}: {exc.strerror}") from None
    for fd in (in_read, out_write, err_write):
        posix.close(fd)
    try:
        _write_all(in_write, stdin)
    finally:
        posix.close(in_write)
    out = _read_all(out_read)
    err = _read_all(err_read)
    _, status = posix.waitpid(pid, 0)
    return posix.waitstatus_to_exitcode(status), out, err


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = posix.write(fd, view)
        except BrokenPipeError:  # the child exited without reading its input: its status says why
            return
        view = view[written:]


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := posix.read(fd, 65536):
            chunks.append(chunk)
    finally:
        posix.close(fd)
    return b"".join(chunks)
