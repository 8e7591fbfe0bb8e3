"""Calling the IPAM plugin a network config names: ours in-process, any other by exec from ``CNI_PATH``.

The spec has a main plugin run its IPAM plugin as a separate executable with the same config and
environment. When the IPAM type is ours (``pinnace-host-local``) the bridge calls it as a function
instead — same code, same store, one process start less per pod. Any other type (the reference
``host-local``, ``dhcp``...) is executed as the spec says, and its error JSON is passed through.
"""

from __future__ import annotations

import posix  # os costs ~1 ms of start-up (cni/main.py)

from cni import jsonio, spec

IN_PROCESS = frozenset({"pinnace-host-local"})
COMMAND_FUNCTIONS = {"ADD": "allocate", "DEL": "release", "GC": "release_stale", "STATUS": "ready"}


def ipam_type(inv: spec.Invocation) -> str:
    ipam = inv.config.get("ipam")
    kind = ipam.get("type") if isinstance(ipam, dict) else None
    if not isinstance(kind, str) or not kind or "/" in kind:
        raise spec.CniError(spec.INVALID_CONFIG, "the network configuration needs ipam.type (a plugin name)")
    return kind


def run(inv: spec.Invocation, command: str) -> dict | None:
    """Run the IPAM plugin's ``command`` (ADD, DEL, GC, STATUS) for this invocation; ADD's result or None."""
    kind = ipam_type(inv)
    if kind in IN_PROCESS:
        from cni import ipam_host_local

        return getattr(ipam_host_local, COMMAND_FUNCTIONS[command])(inv)
    return execute(inv, kind=kind, command=command)


def check(inv: spec.Invocation, prev: dict) -> None:
    kind = ipam_type(inv)
    if kind in IN_PROCESS:
        from cni import ipam_host_local

        ipam_host_local.verify(inv, prev)
    else:
        execute(inv, kind=kind, command="CHECK")


def find(kind: str, path: list[str]) -> str:
    for directory in path:
        candidate = f"{directory.rstrip('/')}/{kind}"
        try:
            regular = posix.stat(candidate).st_mode & 0o170000 == 0o100000
        except OSError:
            continue
        if regular and posix.access(candidate, posix.X_OK):
            return candidate
    raise spec.CniError(spec.INVALID_CONFIG, f"plugin {kind!r} not found in CNI_PATH {':'.join(path) or '(empty)'}")


def execute(inv: spec.Invocation, *, kind: str, command: str) -> dict | None:
    """Exec plugin ``kind`` with this invocation's environment and config; its error JSON becomes CniError."""
    from cni import spawn

    env = dict(inv.environ, CNI_COMMAND=command)
    try:
        status, out, err = spawn.run([find(kind, inv.path)], stdin=inv.raw, env=env)
    except spawn.SpawnError as exc:
        raise spec.CniError(spec.IO_FAILURE, spec.describe(exc)) from None
    try:
        answer = jsonio.loads(out) if out.strip() else None
    except jsonio.JsonError:
        answer = None
    if status != 0:
        if isinstance(answer, dict) and isinstance(answer.get("code"), int):
            raise spec.CniError(answer["code"], f"{kind}: {answer.get('details') or answer.get('msg', '')}",
                                msg=str(answer.get("msg") or spec.MESSAGES.get(answer["code"], "")))
        tail = (err or out).decode(errors="replace").strip()[-300:]
        raise spec.CniError(spec.IO_FAILURE, f"{kind} {command} failed with status {status}: {tail}")
    if command == "ADD" and not isinstance(answer, dict):
        raise spec.CniError(spec.DECODE_FAILURE, f"{kind} ADD printed no result object")
    return answer if command == "ADD" else None
