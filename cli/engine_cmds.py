"""``pinnace engine ...``: the engine daemon (``serve``) and a docker-like client of it.

Every other sub-command is a client of the daemon's Docker Engine API on its unix socket (found by
``--socket``, else ``$PINNACE_ENGINE_SOCKET``, else the default path). The client uses the standard
library only (``http.client`` over ``AF_UNIX``, ``json``) and never imports aiohttp or the engine
itself, so ``pinnace engine images`` starts in milliseconds; ``serve`` imports the daemon lazily.
Any failure (no daemon, an unknown image, a registry error reported by the daemon) is raised as
``EngineError`` and printed by ``cli.main`` as one line with exit status 1.
"""

from __future__ import annotations

import argparse
import http.client
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


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket: only ``connect`` differs from the stock connection."""

    def __init__(self, path: str, *, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout, blocksize=UPLOAD_BLOCK)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


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
        conn = _UnixConnection(self.path, timeout=PING_TIMEOUT)
        try:
            conn.request("GET", "/_ping")
            response = conn.getresponse()
            response.read()
        except TimeoutError:
            raise EngineError(f"the engine at {self.path} does not answer (no reply in {PING_TIMEOUT:g}s)") from None
        except OSError as exc:
            raise self._unreachable(exc) from None
        except http.client.HTTPException as exc:
            raise EngineError(f"engine at {self.path}: {exc.__class__.__name__}: {exc}") from None
        finally:
            conn.close()
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
    ) -> http.client.HTTPResponse:
        if not self._pinged:
            self.ping()
        url = API_PREFIX + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        conn = _UnixConnection(self.path)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            response = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            conn.close()
            raise self._unreachable(exc) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EngineError(f"engine at {self.path}: {exc.__class__.__name__}: {exc}") from None
        if response.status >= 400:
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


def _error_message(response: http.client.HTTPResponse) -> str:
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


def run_inspect(args: argparse.Namespace) -> int:
    client = _client(args)
    found = [client.json("GET", f"/images/{quote_name(name)}/json") for name in args.names]
    print(json.dumps(found, indent=4))
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


def _write_stream(response: http.client.HTTPResponse, out: BinaryIO) -> None:
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


# ----------------------------------------------------------------------------------------- serve


def run_serve(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import logging

    from engine.daemon import server
    from engine.images.errors import ImageError

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    path = args.socket or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    daemon = server.EngineDaemon(root=args.root, socket_path=path, insecure_registries=args.insecure_registry)

    def ready() -> None:
        print(f"pinnace engine: serving the Docker Engine API on unix://{path} (root {args.root})",
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


def _configure_names(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="IMAGE")


def _configure_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="IMAGE")
    p.add_argument("--no-trunc", action="store_true", help="do not shorten ids and commands")


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
    ("inspect", "show images' details as JSON", _configure_names, run_inspect),
    ("history", "show the layers of an image", _configure_history, run_history),
    ("prune", "remove unused images and their layers (garbage collection)", _configure_prune, run_prune),
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
