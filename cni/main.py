"""The CNI plugin executable: read ``CNI_*`` and stdin, run the plugin type's command, answer in JSON.

A runtime execs a plugin per pod and per command, so start-up is on every pod's path: this module and
everything the plugins import use only C-level standard modules (no ``json``, ``re``, ``typing``,
``subprocess``, ``ctypes``...), and a plugin type's module is imported only when a command needs it.
VERSION and input errors never import a plugin at all. Plugin-path modules use ``posix`` where
``os`` would do: ``os`` is a Python layer over it whose import (``_collections_abc``, ``posixpath``,
``stat``) costs ~0.9 ms per process here, and ``python -S`` has not loaded it. The launchers
``pinnace cni install`` writes run ``python -I -S`` and call ``main(type)``; ``main()`` without a type
takes it from the name it was invoked as, and ``python -m cni.main TYPE`` works too.

Exit status 0 with the result (ADD), or nothing (DEL, CHECK, GC, STATUS), on stdout; on failure the
spec's error JSON on stdout and status 1. Unexpected exceptions become error 999 with a one-line
description (and the traceback on stderr, which runtimes log) rather than a bare crash.
"""

from __future__ import annotations

import posix  # not os: see the docstring
import sys

TYPE_CHECKING = False  # typing costs start-up too; annotations are strings (from __future__)
if TYPE_CHECKING:
    from typing import NoReturn

PLUGINS = {
    "pinnace-bridge": "cni.bridge",
    "pinnace-host-local": "cni.ipam_host_local",
    "pinnace-portmap": "cni.portmap",
}
HANDLERS = {"ADD": "add", "DEL": "delete", "CHECK": "check", "GC": "gc", "STATUS": "status"}


def run(plugin_type: str, *, environ: dict[str, str], stdin: bytes) -> tuple[int, str]:
    """The exit status and stdout text for one invocation (the testable core of ``main``)."""
    from cni import jsonio, spec

    version = spec.LATEST
    try:
        if plugin_type not in PLUGINS:
            raise spec.CniError(spec.INVALID_CONFIG, f"unknown plugin type {plugin_type!r}; this executable serves "
                                                     f"{', '.join(PLUGINS)}")
        inv = spec.parse_invocation(environ, stdin)
        version = inv.version
        if inv.command == "VERSION":
            return 0, jsonio.dumps(spec.version_result(inv.version))
        module = __import__(PLUGINS[plugin_type], fromlist=["_"])
        result = getattr(module, HANDLERS[inv.command])(inv)
        return 0, jsonio.dumps(result) if result is not None else ""
    except spec.CniError as exc:
        return 1, jsonio.dumps(exc.to_json(version if version in spec.SUPPORTED_VERSIONS else spec.LATEST))
    except OSError as exc:
        return 1, jsonio.dumps(spec.CniError(spec.IO_FAILURE, spec.describe(exc)).to_json(version))
    except Exception as exc:
        import traceback

        traceback.print_exc(file=sys.stderr)
        return 1, jsonio.dumps(spec.CniError(spec.INTERNAL, f"{type(exc).__name__}: {exc}").to_json(version))


def main(plugin_type: str | None = None) -> NoReturn:
    """The process entry: answer, then end the process at once (never returns).

    Interpreter shutdown (module teardown, a final GC) costs ~1.5 ms and has nothing to do for a
    plugin: everything it opened is closed, its lock goes with the process, its output is flushed here.
    """
    plugin_type = plugin_type or sys.argv[0].rpartition("/")[2]
    environ = {key.decode(errors="surrogateescape"): value.decode(errors="surrogateescape")
               for key, value in posix.environ.items()}
    status, out = run(plugin_type, environ=environ, stdin=_read_stdin())
    if out:
        sys.stdout.write(out + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    posix._exit(status)


def _read_stdin() -> bytes:
    try:
        return sys.stdin.buffer.read() if sys.stdin is not None else b""
    except OSError:
        return b""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
