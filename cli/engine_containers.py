"""``pinnace engine`` container commands: run, ps, logs, exec, stop, kill, rm, inspect, stats, top.

``run`` and ``exec`` attach the way the docker CLI does: a hijacked connection (``Upgrade: tcp``)
carries the output (multiplexed frames unless ``-t``) and, with ``-i``, our stdin; ``run`` asks for
the exit status (``wait``) before it starts the container, so a container that exits at once is
never missed, and exits with the container's status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cli.engine_client import (
    API_PREFIX,
    UPLOAD_BLOCK,
    EngineClient,
    EngineError,
    ago,
    client_for,
    key_values,
    print_table,
    quote_name,
)
from engine.daemon import units

# ------------------------------------------------------------------------ container commands


class _Hijacked:
    """The raw two-way byte stream an attach or exec start turns its connection into."""

    def __init__(self, sock: socket.socket, leftover: bytes) -> None:
        self.sock = sock
        self._leftover = leftover

    def recv(self) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        try:
            return self.sock.recv(UPLOAD_BLOCK)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


def _read_error(sock: socket.socket, header: bytes, rest: bytes) -> str:
    """The message of an error reply read off a raw socket (Content-Length or until close)."""
    length = None
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = rest
    while length is None or len(body) < length:
        chunk = sock.recv(UPLOAD_BLOCK)
        if not chunk:
            break
        body += chunk
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or header.split(b"\r\n", 1)[0].decode(errors="replace")


def hijack(client: EngineClient, path: str, *, query: dict[str, Any] | None = None,
           body: Any = None) -> _Hijacked:
    """POST ``path`` asking for ``Upgrade: tcp``; the connection after the 101 (or 200)."""
    if not client._pinged:
        client.ping()
    url = API_PREFIX + path
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"POST {url} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(client.path)
        sock.sendall(head + payload)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(UPLOAD_BLOCK)
            if not chunk:
                raise EngineError(f"the engine at {client.path} closed the connection")
            buf += chunk
        header, _, rest = buf.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        if status >= 400:
            raise EngineError(_read_error(sock, header, rest))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise client._unreachable(exc) from None
    except BaseException:
        sock.close()
        raise
    return _Hijacked(sock, rest)


def _copy_output(source: Callable[[], bytes], *, multiplexed: bool) -> None:
    """Container output to our stdout/stderr: frames unless the container has a TTY."""
    from engine.daemon import frames  # container commands only: image commands stay lean

    outs = {frames.STDOUT: sys.stdout.buffer, frames.STDERR: sys.stderr.buffer,
            frames.SYSTEM_ERROR: sys.stderr.buffer}
    decoder = frames.FrameDecoder()
    while data := source():
        if not multiplexed:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            continue
        try:
            chunks = decoder.feed(data)
        except frames.FrameError as exc:
            raise EngineError(f"the engine sent a malformed stream: {exc}") from None
        for stream, payload in chunks:
            out = outs.get(stream, sys.stderr.buffer)
            out.write(payload)
            out.flush()


def _copy_input(conn: _Hijacked) -> None:
    """Our stdin to the container until EOF, then half-close so it sees EOF too (a thread)."""
    fd = sys.stdin.fileno()
    try:
        while chunk := os.read(fd, UPLOAD_BLOCK):
            conn.send(chunk)
    except OSError:
        pass
    finally:
        conn.close_write()


@contextlib.contextmanager
def _terminal(enabled: bool) -> Iterator[None]:
    """Raw mode on our terminal for a ``-t`` session (restored afterwards)."""
    if not (enabled and sys.stdin.isatty()):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(sys.stdin.fileno())
    tty.setraw(sys.stdin.fileno())
    try:
        yield
    finally:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


def _terminal_size() -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return size.lines, size.columns


def _stream_session(conn: _Hijacked, *, stdin: bool, tty: bool) -> None:
    """Run one attached session: input in a thread, output here until the engine closes it."""
    import threading

    if stdin:
        threading.Thread(target=_copy_input, args=(conn,), daemon=True).start()
    try:
        with _terminal(tty and stdin):
            _copy_output(conn.recv, multiplexed=not tty)
    finally:
        conn.close()


_BINARY_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str, option: str) -> int:
    """Docker's RAMInBytes: ``32m``, ``1.5g``, ``512k``, ``1024`` (binary units)."""
    value = text.strip().lower().removesuffix("b") if text.strip().lower() not in ("b",) else text
    unit = value[-1:] if value[-1:].isalpha() else ""
    number = value[: len(value) - len(unit)]
    try:
        amount = float(number)
    except ValueError:
        raise EngineError(f"invalid value {text!r} for {option}: want a size like 64m or 1g") from None
    if unit not in _BINARY_UNITS:
        raise EngineError(f"invalid value {text!r} for {option}: unknown unit {unit!r}")
    return int(amount * _BINARY_UNITS[unit])


def _port_bindings(specs: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``-p [ip:][host:]container[/proto]`` as (ExposedPorts, PortBindings)."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        ports, _, proto = spec.partition("/")
        parts = ports.split(":")
        if not 1 <= len(parts) <= 3 or not parts[-1].isdigit() or any(p and not p.isdigit() for p in parts[-2:-1]):
            raise EngineError(f"invalid port specification {spec!r}: want [ip:][hostPort:]containerPort[/proto]")
        key = f"{parts[-1]}/{proto or 'tcp'}"
        exposed[key] = {}
        host_ip = parts[0] if len(parts) == 3 else ""
        host_port = parts[-2] if len(parts) >= 2 else ""
        bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": host_port})
    return exposed, bindings


def _run_body(args: argparse.Namespace) -> dict[str, Any]:
    exposed, bindings = _port_bindings(args.publish)
    host: dict[str, Any] = {
        "Binds": args.volume or None,
        "PortBindings": bindings,
        "AutoRemove": args.rm,
        "NetworkMode": args.network or "default",
        "ReadonlyRootfs": args.read_only,
        "Privileged": args.privileged,
        "CapAdd": args.cap_add or None,
        "CapDrop": args.cap_drop or None,
    }
    if args.memory:
        host["Memory"] = parse_bytes(args.memory, "--memory")
    if args.cpus:
        try:
            host["NanoCpus"] = int(float(args.cpus) * 1e9)
        except ValueError:
            raise EngineError(f"invalid value {args.cpus!r} for --cpus: want a number of CPUs like 1.5") from None
    if args.pids_limit:
        try:
            host["PidsLimit"] = int(args.pids_limit)
        except ValueError:
            raise EngineError(f"invalid value {args.pids_limit!r} for --pids-limit: want an integer") from None
    attached = not args.detach
    return {
        "Image": args.image,
        "Cmd": args.run_command or None,
        "Entrypoint": [args.entrypoint] if args.entrypoint is not None else None,
        "Env": [f"{k}={v}" for k, v in key_values(args.env, "-e").items()],
        "WorkingDir": args.workdir or "",
        "User": args.user or "",
        "Tty": args.tty,
        "OpenStdin": args.interactive,
        "StdinOnce": args.interactive,
        "AttachStdin": args.interactive and attached,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "ExposedPorts": exposed or None,
        "HostConfig": host,
    }


def _json_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "Content-Length": str(len(body))}


def _post(client: EngineClient, path: str, *, query: dict[str, Any] | None = None) -> None:
    with client.request("POST", path, query=query) as response:
        response.read()


def run_run(args: argparse.Namespace) -> int:
    client = client_for(args)
    body = json.dumps(_run_body(args)).encode()
    created = client.json("POST", "/containers/create", query={"name": args.name}, body=body,
                          headers=_json_headers(body))
    cid = created["Id"]
    for warning in created.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    if args.detach:
        _post(client, f"/containers/{cid}/start")
        print(cid)
        return 0
    query = {"stream": "1", "stdout": "1", "stderr": "1", "stdin": "1" if args.interactive else None}
    conn = hijack(client, f"/containers/{cid}/attach", query=query)
    try:
        waiter = client.request("POST", f"/containers/{cid}/wait",
                                query={"condition": "removed" if args.rm else "next-exit"})
        _post(client, f"/containers/{cid}/start")
    except BaseException:
        conn.close()
        raise
    if args.tty and (size := _terminal_size()):
        with contextlib.suppress(EngineError):
            _post(client, f"/containers/{cid}/resize", query={"h": size[0], "w": size[1]})
    _stream_session(conn, stdin=args.interactive, tty=args.tty)
    with waiter:
        result = json.loads(waiter.read() or b"{}")
    if result.get("Error"):
        raise EngineError(result["Error"].get("Message") or "waiting for the container failed")
    return int(result.get("StatusCode", 0))


def _containers(client: EngineClient, *, all: bool) -> list[dict[str, Any]]:
    return client.json("GET", "/containers/json", query={"all": "1" if all else None}) or []


def _command_cell(command: str, *, truncate: bool) -> str:
    if truncate and len(command) > 20:
        command = command[:19] + "…"
    return f'"{command}"'


def _ports_cell(ports: Sequence[dict[str, Any]]) -> str:
    cells = []
    for p in ports:
        if p.get("PublicPort"):
            cells.append(f"{p.get('IP') or '0.0.0.0'}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}")
        else:
            cells.append(f"{p['PrivatePort']}/{p['Type']}")
    return ", ".join(cells)


def run_ps(args: argparse.Namespace) -> int:
    rows = _containers(client_for(args), all=args.all)
    if args.quiet:
        for row in rows:
            print(row["Id"] if args.no_trunc else row["Id"][:12])
        return 0
    now = time.time()
    table = [
        (row["Id"] if args.no_trunc else row["Id"][:12], row["Image"],
         _command_cell(row.get("Command", ""), truncate=not args.no_trunc), ago(int(row.get("Created") or 0), now=now),
         row.get("Status", ""), _ports_cell(row.get("Ports") or []), ",".join(n.lstrip("/") for n in row["Names"]))
        for row in rows
    ]
    print_table(("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"), table)
    return 0


def run_logs(args: argparse.Namespace) -> int:
    query = {"stdout": "1", "stderr": "1", "follow": "1" if args.follow else None, "tail": args.tail,
             "timestamps": "1" if args.timestamps else None}
    with client_for(args).request("GET", f"/containers/{quote_name(args.container)}/logs", query=query) as response:
        multiplexed = "multiplexed" in (response.getheader("Content-Type") or "")
        _copy_output(lambda: response.read1(UPLOAD_BLOCK), multiplexed=multiplexed)
    return 0


def run_exec(args: argparse.Namespace) -> int:
    client = client_for(args)
    spec: dict[str, Any] = {
        "AttachStdin": args.interactive and not args.detach,
        "AttachStdout": not args.detach,
        "AttachStderr": not args.detach,
        "Tty": args.tty,
        "Cmd": [args.cmd, *args.args],
        "Env": [f"{k}={v}" for k, v in key_values(args.env, "-e").items()],
        "User": args.user or "",
        "WorkingDir": args.workdir or "",
    }
    if args.tty and (size := _terminal_size()):
        spec["ConsoleSize"] = list(size)
    body = json.dumps(spec).encode()
    exec_id = client.json("POST", f"/containers/{quote_name(args.container)}/exec", body=body,
                          headers=_json_headers(body))["Id"]
    if args.detach:
        start = json.dumps({"Detach": True, "Tty": args.tty}).encode()
        with client.request("POST", f"/exec/{exec_id}/start", body=start, headers=_json_headers(start)) as response:
            response.read()
        return 0
    conn = hijack(client, f"/exec/{exec_id}/start", body={"Detach": False, "Tty": args.tty})
    _stream_session(conn, stdin=args.interactive, tty=args.tty)
    code = client.json("GET", f"/exec/{exec_id}/json").get("ExitCode")
    return int(code) if code is not None else 0


def _each(args: argparse.Namespace, names: Sequence[str], act: Callable[[EngineClient, str], None]) -> int:
    """Apply ``act`` to every name at once (as the docker CLI does: stopping five containers takes
    one grace period, not five), printing each that worked in order; one line for all failures."""
    client = client_for(args)
    client.ping()

    def attempt(name: str) -> str | None:
        try:
            act(client, name)
        except EngineError as exc:
            return str(exc)
        return None

    if len(names) == 1:
        results = [attempt(names[0])]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
            results = list(pool.map(attempt, names))
    failed = []
    for name, error in zip(names, results, strict=True):
        if error is None:
            print(name)
        else:
            failed.append(error)
    if failed:
        raise EngineError("; ".join(failed))
    return 0


def run_stop(args: argparse.Namespace) -> int:
    query = {"t": args.time}
    return _each(args, args.containers, lambda c, n: _post(c, f"/containers/{quote_name(n)}/stop", query=query))


def run_kill(args: argparse.Namespace) -> int:
    query = {"signal": args.signal}
    return _each(args, args.containers, lambda c, n: _post(c, f"/containers/{quote_name(n)}/kill", query=query))


def run_rm(args: argparse.Namespace) -> int:
    query = {"force": "1" if args.force else None}

    def remove(client: EngineClient, name: str) -> None:
        with client.request("DELETE", f"/containers/{quote_name(name)}", query=query) as response:
            response.read()

    return _each(args, args.containers, remove)


def run_inspect(args: argparse.Namespace) -> int:
    """Containers first, then images, as ``docker inspect`` looks them up."""
    client = client_for(args)
    found = []
    for name in args.names:
        if "/" not in name:  # container names and ids never have one; image references may
            try:
                found.append(client.json("GET", f"/containers/{quote_name(name)}/json"))
                continue
            except EngineError as exc:
                if "No such container" not in str(exc) and "not available" not in str(exc):
                    raise
        found.append(client.json("GET", f"/images/{quote_name(name)}/json"))  # else "No such image"
    print(json.dumps(found, indent=4))
    return 0


def bytes_size(size: float) -> str:
    """Binary units with at most four significant digits, as Docker's ``units.BytesSize``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    unit = 0
    while size >= 1024 and unit < len(units) - 1:
        size /= 1024
        unit += 1
    return f"{size:.4g}{units[unit]}"


def stats_row(stats: dict[str, Any]) -> tuple[str, ...]:
    """One ``stats`` table row from a Docker stats object (the CLI's arithmetic)."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpu_percent = cpu_delta / system_delta * (cpu.get("online_cpus") or 1) * 100 if cpu_delta > 0 < system_delta else 0
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    used = memory.get("usage", 0) - detail.get("total_inactive_file", detail.get("inactive_file", 0))
    limit = memory.get("limit", 0)
    nets = (stats.get("networks") or {}).values()
    rx, tx = sum(n.get("rx_bytes", 0) for n in nets), sum(n.get("tx_bytes", 0) for n in nets)
    return (
        stats.get("id", "")[:12],
        stats.get("name", "").lstrip("/"),
        f"{cpu_percent:.2f}%",
        f"{bytes_size(max(used, 0))} / {bytes_size(limit)}",
        f"{(used / limit * 100) if limit else 0:.2f}%",
        f"{units.human_size(rx)} / {units.human_size(tx)}",
        "0B / 0B",
        str((stats.get("pids_stats") or {}).get("current", 0)),
    )


def run_stats(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    client = client_for(args)
    names = args.containers or [row["Id"] for row in _containers(client, all=False)]
    header = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")

    def sample(name: str) -> dict[str, Any]:
        return client.json("GET", f"/containers/{quote_name(name)}/stats", query={"stream": "0"})

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(names)))) as pool:
        while True:
            rows = [stats_row(s) for s in pool.map(sample, names)]
            if not args.no_stream and sys.stdout.isatty():
                sys.stdout.write("\033[2J\033[H")
            print_table(header, rows)
            sys.stdout.flush()
            if args.no_stream:
                return 0
            time.sleep(0.5)


def run_top(args: argparse.Namespace) -> int:
    query = {"ps_args": " ".join(args.ps_args) if args.ps_args else None}
    result = client_for(args).json("GET", f"/containers/{quote_name(args.container)}/top", query=query) or {}
    print_table(result.get("Titles") or [], result.get("Processes") or [])
    return 0



def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("run_command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print the id")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open and send ours")
    p.add_argument("-t", "--tty", action="store_true", help="give the container a terminal")
    p.add_argument("--name", help="a name for the container")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:CONTAINER[:ro]")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CONTAINER[/PROTO]")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="USER[:GROUP] to run as")
    p.add_argument("--entrypoint", help="replace the image's entrypoint")
    p.add_argument("--memory", "-m", help="memory limit, e.g. 64m")
    p.add_argument("--cpus", help="CPUs' worth of time, e.g. 1.5")
    p.add_argument("--pids-limit", help="maximum number of processes")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP")
    p.add_argument("--privileged", action="store_true", help="every capability, no seccomp, all devices")
    p.add_argument("--network", help="none, bridge (default) or host")


def _configure_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not shorten ids and commands")


def _configure_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("-n", "--tail", default="all", help="only the last N lines (default all)")
    p.add_argument("-t", "--timestamps", action="store_true", help="prefix each line with its time")


def _configure_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("cmd", metavar="COMMAND")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG")
    p.add_argument("-i", "--interactive", action="store_true", help="send our stdin")
    p.add_argument("-t", "--tty", action="store_true", help="give the process a terminal")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-u", "--user", help="USER[:GROUP] to run as")
    p.add_argument("-w", "--workdir", help="working directory inside the container")


def _configure_stop(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-t", "--time", type=int, help="seconds to wait before killing (default: the container's, 10)")


def _configure_kill(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")


def _configure_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-f", "--force", action="store_true", help="kill and remove a running container")


def _configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME", help="containers or images")


def _configure_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="*", metavar="CONTAINER", help="default: every running container")
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")


def _configure_top(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS_OPTIONS", help="ps options (default -ef)")
