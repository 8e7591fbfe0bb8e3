"""The standard-library client of the engine daemon: finding it, speaking HTTP/1.1 over its unix
socket, errors as one line, and the table/progress formatting every ``pinnace engine`` command shares.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
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


def client_for(args: argparse.Namespace) -> EngineClient:
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


def key_values(items: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise EngineError(f"{option} {item!r}: expected KEY=VALUE")
        if not sep:
            value = os.environ.get(key, "")  # docker takes a bare KEY from the environment
        out[key] = value
    return out
