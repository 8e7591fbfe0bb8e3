"""``pinnace engine ...``: the engine daemon (``serve``) and a docker-like client of it.

Image commands (images, pull, push, tag, rmi, load, save, build, history, prune) and container
commands (run, ps, logs, exec, stop, kill, rm, inspect, stats, top) print what the docker CLI
prints. ``run`` and ``exec`` attach the way the docker CLI does: a hijacked connection
(``Upgrade: tcp``) carries the output (multiplexed frames unless ``-t``) and, with ``-i``, our
stdin; ``run`` asks for the exit status (``wait``) before it starts the container, so even a
container that exits at once is never missed, and exits with the container's status.

Every other sub-command is a client of the daemon's Docker Engine API on its unix socket (found by
``--socket``, else ``$PINNACE_ENGINE_SOCKET``, else the default path). The client uses the standard
library only (a small HTTP/1.1 client over ``AF_UNIX``, ``json``) and never imports aiohttp or the engine
itself, so ``pinnace engine images`` starts in milliseconds; ``serve`` imports the daemon lazily.
Any failure (no daemon, an unknown image, a registry error reported by the daemon) is raised as
``EngineError`` and printed by ``cli.main`` as one line with exit status 1.
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
from pathlib import Path
from typing import Any, BinaryIO

from engine.daemon import units

DEFAULT_ROOT = "/var/lib/pinnace/engine"
DEFAULT_SOCKET = "/run/pinnace/engine.sock"
SOCKET_ENV = "PINNACE_ENGINE_SOCKET"
API_PREFIX = "/v1.43"
UPLOAD_BLOCK = 1 << 20
PING_TIMEOUT = 10.0  # seconds a live daemon may take to answer /_ping
# progress states that repeat with a byte count; the plain (non-terminal) output skips them
_NOISY_STATES = frozenset({"Downloading", "Extracting", "Pushing", "Waiting", "Verifying Checksum"})


class EngineError(RuntimeError):
    """A failure the user sees as one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


# ------------------------------------------------------------------------------------ the client


class ProtocolError(EngineError):
    """The engine's reply is not the HTTP/1.1 we expect."""


class Response:
    """One HTTP/1.1 response read off a unix socket: ``status``, ``reason``, ``headers`` (lower-case
    names) and a body reader that undoes chunking. A few dozen lines instead of ``http.client``,
    whose import (email parsing, ssl) would cost every ``pinnace engine`` call ~15 ms."""

    def __init__(self, sock: socket.socket, *, method: str) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._eof = False
        status_line = self._line(limit=8192)
        parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"malformed status line {status_line[:80]!r}")
        self.status, self.reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while (line := self._line(limit=65536).rstrip(b"\r\n")):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._left: int | None = None  # bytes left in the body (or the current chunk); None: until close
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._left = 0
        elif not self._chunked and "content-length" in self.headers:
            self._left = int(self.headers["content-length"])
        self._done = self._left == 0 and not self._chunked

    # --- raw buffered input
    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._sock.recv(UPLOAD_BLOCK)
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _line(self, *, limit: int) -> bytes:
        while (end := self._buf.find(b"\n")) < 0:
            if len(self._buf) > limit or not self._fill():
                raise ProtocolError("the engine closed the connection in the middle of a reply")
        line = bytes(self._buf[: end + 1])
        del self._buf[: end + 1]
        return line

    def _take(self, n: int) -> bytes:
        if not self._buf:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    # --- the body
    def read1(self, n: int = UPLOAD_BLOCK) -> bytes:
        """Up to ``n`` body bytes, at least one unless the body has ended."""
        while not self._done:
            if self._chunked and not self._left:
                size = self._line(limit=1024).split(b";", 1)[0].strip()
                self._left = int(size, 16)
                if self._left == 0:
                    while self._line(limit=65536).strip():  # trailers, then the blank line
                        pass
                    self._done = True
                    break
            want = n if self._left is None else min(n, self._left)
            data = self._take(want)
            if not data:
                if self._left is not None:
                    raise ProtocolError("the engine closed the connection in the middle of a reply")
                self._done = True
                break
            if self._left is not None:
                self._left -= len(data)
                if self._left == 0 and self._chunked:
                    self._line(limit=2)  # the CRLF after a chunk
                    self._left = 0
                elif self._left == 0:
                    self._done = True
            return data
        return b""

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            data = self.read1(UPLOAD_BLOCK if n < 0 else n - len(out))
            if not data:
                break
            out += data
        return bytes(out)

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        while data := self.read1():
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _send(sock: socket.socket, method: str, url: str, *, body: bytes | BinaryIO | None,
          headers: dict[str, str]) -> None:
    """Write one request; a file body without a Content-Length goes chunked."""
    fields = {"Host": "docker", "User-Agent": "pinnace-engine-cli", **headers}
    chunked = False
    if isinstance(body, bytes | bytearray):
        fields["Content-Length"] = str(len(body))
    elif body is not None and not any(k.lower() == "content-length" for k in fields):
        fields["Transfer-Encoding"] = "chunked"
        chunked = True
    elif body is None and method in ("POST", "PUT"):
        fields["Content-Length"] = "0"
    head = f"{method} {url} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    if isinstance(body, bytes | bytearray):
        sock.sendall(head.encode("latin-1") + bytes(body))
        return
    sock.sendall(head.encode("latin-1"))
    if body is None:
        return
    while block := body.read(UPLOAD_BLOCK):
        sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
    if chunked:
        sock.sendall(b"0\r\n\r\n")


def _connect(path: str, *, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def socket_path(args: argparse.Namespace) -> str:
    return getattr(args, "socket", None) or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def quote_name(name: str) -> str:
    """An image name as a path segment (its ``/`` and ``:`` stay, as the docker CLI sends them)."""
    return urllib.parse.quote(name, safe="/:@")


class EngineClient:
    """One request per connection; responses are checked and errors turned into ``EngineError``.

    The first request is preceded by a ``/_ping`` with a short timeout, as the docker CLI does:
    pulls, loads and builds may rightly take minutes before their first byte, so only the ping
    can tell a hung daemon from a busy one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pinged = False

    def _unreachable(self, exc: OSError) -> EngineError:
        reason = exc.strerror or exc.__class__.__name__
        hint = "is `pinnace engine serve` running?"
        return EngineError(f"cannot connect to the engine at {self.path} ({reason}): {hint}")

    def ping(self) -> None:
        sock: socket.socket | None = None
        try:
            sock = _connect(self.path, timeout=PING_TIMEOUT)
            _send(sock, "GET", "/_ping", body=None, headers={})
            response = Response(sock, method="GET")
            response.read()
        except TimeoutError:
            raise EngineError(f"the engine at {self.path} does not answer (no reply in {PING_TIMEOUT:g}s)") from None
        except OSError as exc:
            raise self._unreachable(exc) from None
        except (ValueError, ProtocolError) as exc:
            raise EngineError(f"engine at {self.path}: {exc}") from None
        finally:
            if sock is not None:
                sock.close()
        if response.status != 200:
            raise EngineError(f"the engine at {self.path} answered /_ping with HTTP {response.status}")
        self._pinged = True

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | BinaryIO | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request on a new connection; the response once its headers are in (the body
        is the caller's to read; ``with`` closes the connection)."""
        if not self._pinged:
            self.ping()
        url = API_PREFIX + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        try:
            sock = _connect(self.path, timeout=None)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise self._unreachable(exc) from None
        except OSError as exc:
            raise EngineError(f"engine at {self.path}: {exc.strerror or exc}") from None
        try:
            _send(sock, method, url, body=body, headers=headers or {})
            response = Response(sock, method=method)
        except (OSError, ValueError) as exc:
            sock.close()
            raise EngineError(f"engine at {self.path}: {exc.__class__.__name__}: {exc}") from None
        except BaseException:
            sock.close()
            raise
        if response.status >= 400:
            with response:
                raise EngineError(_error_message(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.request(method, path, **kwargs) as response:
            data = response.read()
        return json.loads(data) if data.strip() else None

    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The JSON messages of a streamed reply; an ``error`` message raises ``EngineError``."""
        with self.request(method, path, **kwargs) as response:
            for line in response:
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    raise EngineError(f"the engine sent a malformed progress line: {line[:80]!r}") from None
                if message.get("error") or message.get("errorDetail"):
                    detail = message.get("errorDetail") or {}
                    raise EngineError(message.get("error") or detail.get("message") or "unknown error")
                yield message


def _error_message(response: Response) -> str:
    raw = response.read()
    try:
        return str(json.loads(raw)["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip() or f"HTTP {response.status} {response.reason}"


def _client(args: argparse.Namespace) -> EngineClient:
    return EngineClient(socket_path(args))


# ------------------------------------------------------------------------------------ formatting


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, out: Any = None) -> None:
    """Columns padded like docker's tabwriter (three spaces between columns)."""
    out = out or sys.stdout
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        out.write("   ".join(cells).rstrip() + "\n")


def ago(created: int, *, now: float | None = None) -> str:
    if created <= 0:
        return "N/A"
    return units.human_duration((now or time.time()) - created) + " ago"


def short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def split_repo_tag(name: str) -> tuple[str, str]:
    """``host:5000/x:1`` -> (``host:5000/x``, ``1``); no tag -> (name, "")."""
    base = name.split("@", 1)[0]
    colon = base.rfind(":")
    if colon > base.rfind("/"):
        return base[:colon], base[colon + 1 :]
    return base, ""


def print_progress(messages: Iterator[dict[str, Any]], *, out: Any = None) -> dict[str, Any]:
    """Plain progress output (one line per state change, as docker prints when not on a terminal);
    returns the last ``aux`` payload seen."""
    out = out or sys.stdout
    aux: dict[str, Any] = {}
    for message in messages:
        if "aux" in message:
            aux = message["aux"] or {}
            continue
        if "stream" in message:
            out.write(message["stream"])
            out.flush()
            continue
        status = message.get("status", "")
        if not status or status in _NOISY_STATES:
            continue
        out.write(f"{message['id']}: {status}\n" if message.get("id") else f"{status}\n")
        out.flush()
    return aux


# ------------------------------------------------------------------------------ client commands


def run_images(args: argparse.Namespace) -> int:
    query: dict[str, Any] = {"all": "1" if args.all else None}
    if args.repository:
        query["filters"] = json.dumps({"reference": [args.repository]})
    images = _client(args).json("GET", "/images/json", query=query) or []
    if args.quiet:
        seen: list[str] = []
        for image in images:
            if short(image["Id"]) not in seen:
                seen.append(short(image["Id"]))
        for image_id in seen:
            print(image_id)
        return 0
    rows = []
    now = time.time()
    for image in images:
        size = units.human_size(image.get("Size", 0))
        created = ago(int(image.get("Created") or 0), now=now)
        for repo, tag in [split_repo_tag(t) for t in image.get("RepoTags") or []] or [("<none>", "<none>")]:
            rows.append((repo, tag or "<none>", short(image["Id"]), created, size))
    print_table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), rows)
    return 0


def run_pull(args: argparse.Namespace) -> int:
    repo, tag = split_repo_tag(args.name)
    if "@" in args.name:
        repo, tag = args.name.split("@", 1)
    query = {"fromImage": repo, "tag": tag or "latest", "platform": args.platform}
    print_progress(_client(args).stream("POST", "/images/create", query=query))
    return 0


def run_push(args: argparse.Namespace) -> int:
    repo, tag = split_repo_tag(args.name)
    headers = {"X-Registry-Auth": "e30="}  # "{}": the daemon uses its own credentials
    path = f"/images/{quote_name(repo)}/push"
    print_progress(_client(args).stream("POST", path, query={"tag": tag or "latest"}, headers=headers))
    return 0


def run_tag(args: argparse.Namespace) -> int:
    repo, tag = split_repo_tag(args.target)
    query = {"repo": repo, "tag": tag or "latest"}
    with _client(args).request("POST", f"/images/{quote_name(args.source)}/tag", query=query) as response:
        response.read()
    return 0


def run_rmi(args: argparse.Namespace) -> int:
    client = _client(args)
    query = {"force": "1" if args.force else "0", "noprune": "1" if args.no_prune else "0"}
    for name in args.names:
        for item in client.json("DELETE", f"/images/{quote_name(name)}", query=query) or []:
            for key, value in item.items():
                print(f"{key}: {value}")
    return 0


def run_history(args: argparse.Namespace) -> int:
    rows = []
    now = time.time()
    for item in _client(args).json("GET", f"/images/{quote_name(args.name)}/history") or []:
        created_by = item.get("CreatedBy", "")
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        image_id = item.get("Id", "")
        shown = image_id if image_id == "<missing>" or args.no_trunc else short(image_id)
        rows.append((shown, ago(int(item.get("Created") or 0), now=now), created_by,
                     units.human_size(item.get("Size", 0)), item.get("Comment", "")))
    print_table(("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"), rows)
    return 0


def run_prune(args: argparse.Namespace) -> int:
    query = {"filters": json.dumps({"dangling": ["false"]})} if args.all else None
    result = _client(args).json("POST", "/images/prune", query=query) or {}
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for item in deleted:
            for key, value in item.items():
                print(f"{key.lower()}: {value}")
        print()
    print(f"Total reclaimed space: {units.human_size(result.get('SpaceReclaimed', 0))}")
    return 0


def run_load(args: argparse.Namespace) -> int:
    headers = {"Content-Type": "application/x-tar"}
    if args.input:
        try:
            source: BinaryIO = open(args.input, "rb")
        except OSError as exc:
            raise EngineError(f"cannot read {args.input}: {exc.strerror}") from None
        headers["Content-Length"] = str(os.fstat(source.fileno()).st_size)
    else:
        if sys.stdin.isatty():
            raise EngineError("requested load from stdin, but stdin is a terminal: use -i FILE or a pipe")
        source = sys.stdin.buffer
    try:
        messages = _client(args).stream("POST", "/images/load", query={"quiet": "1" if args.quiet else "0"},
                                        body=source, headers=headers)
        print_progress(messages)
    finally:
        if args.input:
            source.close()
    return 0


def _write_stream(response: Response, out: BinaryIO) -> None:
    while chunk := response.read(UPLOAD_BLOCK):
        out.write(chunk)


def run_save(args: argparse.Namespace) -> int:
    if not args.output and sys.stdout.isatty():
        raise EngineError("refusing to write an image archive to a terminal: use -o FILE or redirect stdout")
    query = {"names": args.names}
    with _client(args).request("GET", "/images/get", query=query) as response:
        if not args.output:
            _write_stream(response, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return 0
        target = Path(args.output)
        tmp = target.with_name(f".{target.name}.partial")
        try:
            with open(tmp, "wb") as out:
                _write_stream(response, out)
            os.replace(tmp, target)
        except OSError as exc:
            raise EngineError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        finally:
            if tmp.exists():
                tmp.unlink()
    return 0


def _key_values(items: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise EngineError(f"{option} {item!r}: expected KEY=VALUE")
        if not sep:
            value = os.environ.get(key, "")  # docker takes a bare KEY from the environment
        out[key] = value
    return out


def _context_entries(context: Path, always: set[str]) -> Iterator[tuple[Path, str]]:
    """(path, name in the tar) of every context file the ``.dockerignore`` keeps, parents first.

    Filtering here only saves the upload (the builder applies the same file again); the Dockerfile
    and ``.dockerignore`` always go, as with the docker CLI. The matcher lives in the builder
    package, whose import is slow: only ``build`` pays for it."""
    from engine.build.dockerignore import IgnoreMatcher
    from engine.build.errors import BuildError

    try:
        matcher = IgnoreMatcher.load(context)
    except BuildError as exc:
        raise EngineError(str(exc)) from None
    for top, dirs, files in os.walk(context):
        rel_top = Path(top).relative_to(context).as_posix()
        kept_dirs = []
        for name in sorted(dirs):
            rel = f"{name}" if rel_top == "." else f"{rel_top}/{name}"
            if matcher.excluded(rel):
                if not matcher.prunable(rel):
                    kept_dirs.append(name)  # something below may be re-included
                continue
            kept_dirs.append(name)
            yield Path(top) / name, rel
        dirs[:] = kept_dirs
        for name in sorted(files):
            rel = f"{name}" if rel_top == "." else f"{rel_top}/{name}"
            if rel in always or not matcher.excluded(rel):
                yield Path(top) / name, rel


def _context_tar(context: Path, dockerfile: Path | None) -> tuple[BinaryIO, str]:
    """The build context as an uncompressed tar in a temp file, and the Dockerfile's name in it.

    Owners are zeroed as the docker CLI does; a Dockerfile outside the context travels under a
    hidden name. ``tarfile`` is imported here: only ``build`` needs it, and it is not cheap."""
    import tarfile
    import tempfile
    import uuid

    def reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    name = "Dockerfile"
    extra: Path | None = None
    if dockerfile is not None:
        resolved, root = dockerfile.resolve(), context.resolve()
        if resolved.is_relative_to(root):
            name = resolved.relative_to(root).as_posix()
        else:
            name, extra = f".dockerfile.{uuid.uuid4().hex[:20]}", resolved
    spool = tempfile.TemporaryFile()
    try:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for path, arcname in _context_entries(context, {name, ".dockerignore"}):
                tf.add(path, arcname=arcname, recursive=False, filter=reset_owner)
            if extra is not None:
                tf.add(extra, arcname=name, filter=reset_owner)
    except OSError as exc:
        spool.close()
        raise EngineError(f"cannot read the build context: {exc}") from None
    spool.seek(0)
    return spool, name


def run_build(args: argparse.Namespace) -> int:
    context = Path(args.path)
    if not context.is_dir():
        raise EngineError(f"build context {args.path} is not a directory")
    dockerfile = Path(args.file) if args.file else None
    if dockerfile is not None and not dockerfile.is_file():
        raise EngineError(f"Dockerfile {args.file} not found")
    query: dict[str, Any] = {
        "t": args.tag,
        "buildargs": json.dumps(_key_values(args.build_arg, "--build-arg")),
        "labels": json.dumps(_key_values(args.label, "--label")),
        "nocache": "1" if args.no_cache else None,
        "target": args.target,
        "q": "1" if args.quiet else None,
        "networkmode": args.network,
        "rm": "1",
    }
    spool, query["dockerfile"] = _context_tar(context, dockerfile)
    headers = {"Content-Type": "application/x-tar", "Content-Length": str(os.fstat(spool.fileno()).st_size)}
    with spool:
        messages = _client(args).stream("POST", "/build", query=query, body=spool, headers=headers)
        if args.quiet:
            aux = print_progress(messages, out=_Discard())
            print(aux.get("ID", ""))
        else:
            print_progress(messages)
    return 0


class _Discard:
    def write(self, _: str) -> None:
        return None

    def flush(self) -> None:
        return None


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
        "Env": [f"{k}={v}" for k, v in _key_values(args.env, "-e").items()],
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
    client = _client(args)
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
    rows = _containers(_client(args), all=args.all)
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
    with _client(args).request("GET", f"/containers/{quote_name(args.container)}/logs", query=query) as response:
        multiplexed = "multiplexed" in (response.getheader("Content-Type") or "")
        _copy_output(lambda: response.read1(UPLOAD_BLOCK), multiplexed=multiplexed)
    return 0


def run_exec(args: argparse.Namespace) -> int:
    client = _client(args)
    spec: dict[str, Any] = {
        "AttachStdin": args.interactive and not args.detach,
        "AttachStdout": not args.detach,
        "AttachStderr": not args.detach,
        "Tty": args.tty,
        "Cmd": [args.cmd, *args.args],
        "Env": [f"{k}={v}" for k, v in _key_values(args.env, "-e").items()],
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
    client = _client(args)
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
    client = _client(args)
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

    client = _client(args)
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
    result = _client(args).json("GET", f"/containers/{quote_name(args.container)}/top", query=query) or {}
    print_table(result.get("Titles") or [], result.get("Processes") or [])
    return 0


# ----------------------------------------------------------------------------------------- serve


def run_serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from engine.daemon import server
    from engine.images.errors import ImageError

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = args.socket or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    cri = None if args.no_cri else (args.cri_socket or os.path.join(os.path.dirname(path), "cri.sock"))
    daemon = server.EngineDaemon(root=args.root, socket_path=path, insecure_registries=args.insecure_registry,
                                 runtime=args.runtime, cri_socket=cri)

    def ready() -> None:
        service = daemon.context.containers if daemon.context is not None else None
        runtime = f"containers on {service.manager.runtime} under conmon" if service else "no containers"
        served = f" and the CRI on unix://{cri}" if cri and service else ""
        print(f"pinnace engine: serving the Docker Engine API on unix://{path}{served} (root {args.root}; {runtime})",
              file=sys.stderr, flush=True)

    try:
        asyncio.run(server.serve(daemon, ready=ready))
    except (server.DaemonError, ImageError) as exc:  # ImageError: also the runtime's host set-up
        raise EngineError(str(exc)) from None
    return 0


# --------------------------------------------------------------------------------------- parsers


def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory (default %(default)s)")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="a registry to reach over plain HTTP (loopback ones always are)")
    p.add_argument("--runtime", choices=("crun", "runc"), help="OCI runtime (default: crun if installed, else runc)")
    p.add_argument("--cri-socket", help="unix socket of the CRI v1 gRPC server (default: cri.sock beside --socket)")
    p.add_argument("--no-cri", action="store_true", help="do not serve the CRI")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")


def _configure_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("repository", nargs="?", help="only images of this repository (glob allowed)")
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("-q", "--quiet", action="store_true", help="only image ids")


def _configure_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="image reference, e.g. busybox or localhost:5000/app:1")
    p.add_argument("--platform", help="os/arch to pick from an index (default: this machine's)")


def _configure_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="NAME[:TAG] of a local image")


def _configure_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="an existing image (name or id)")
    p.add_argument("target", help="the new NAME[:TAG]")


def _configure_rmi(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="remove even if tagged in several repositories")
    p.add_argument("--no-prune", action="store_true", help="keep unreferenced layers")


def _configure_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", help="read the archive from this file instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="less output")


def _configure_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")


def _configure_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH", help="the build context directory")
    p.add_argument("-t", "--tag", action="append", default=[], help="name the image NAME[:TAG] (repeatable)")
    p.add_argument("-f", "--file", help="the Dockerfile (default PATH/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-cache", action="store_true", help="do not use the layer cache")
    p.add_argument("--target", help="build up to this stage")
    p.add_argument("--network", help="network for RUN steps: none (default) or host")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")


def _configure_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="IMAGE")
    p.add_argument("--no-trunc", action="store_true", help="do not shorten ids and commands")


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


def _configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="remove every unused image, not only untagged ones")


# (name, help, configure, run): one row per ``pinnace engine`` sub-command
SUBCOMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
                   ...] = (
    ("serve", "run the engine daemon in the foreground", _configure_serve, run_serve),
    ("images", "list images", _configure_images, run_images),
    ("pull", "pull an image from a registry", _configure_pull, run_pull),
    ("push", "push an image to a registry", _configure_push, run_push),
    ("tag", "give an image another name", _configure_tag, run_tag),
    ("rmi", "remove images", _configure_rmi, run_rmi),
    ("load", "load images from a tar archive", _configure_load, run_load),
    ("save", "save images to a tar archive", _configure_save, run_save),
    ("build", "build an image from a Dockerfile", _configure_build, run_build),
    ("inspect", "show containers' or images' details as JSON", _configure_inspect, run_inspect),
    ("history", "show the layers of an image", _configure_history, run_history),
    ("prune", "remove unused images and their layers (garbage collection)", _configure_prune, run_prune),
    ("run", "create and start a container", _configure_run, run_run),
    ("ps", "list containers", _configure_ps, run_ps),
    ("logs", "print a container's output", _configure_logs, run_logs),
    ("exec", "run a command in a running container", _configure_exec, run_exec),
    ("stop", "stop containers (stop signal, then KILL after a grace period)", _configure_stop, run_stop),
    ("kill", "send a signal to containers", _configure_kill, run_kill),
    ("rm", "remove containers", _configure_rm, run_rm),
    ("stats", "show containers' resource usage", _configure_stats, run_stats),
    ("top", "show a container's processes", _configure_top, run_top),
)


def configure(p: argparse.ArgumentParser) -> None:
    socket_help = f"the daemon's socket (default ${SOCKET_ENV} or {DEFAULT_SOCKET})"
    p.add_argument("--socket", default=None, help=socket_help)
    sub = p.add_subparsers(dest="engine_command", required=True, metavar="ENGINE_COMMAND")
    for name, help_text, configure_sub, run_sub in SUBCOMMANDS:
        child = sub.add_parser(name, help=help_text, description=help_text)
        # also accepted after the sub-command; SUPPRESS keeps an earlier --socket from being reset
        child.add_argument("--socket", default=argparse.SUPPRESS, help=socket_help)
        configure_sub(child)
        child.set_defaults(engine_run=run_sub)


def run(args: argparse.Namespace) -> int:
    return args.engine_run(args)
