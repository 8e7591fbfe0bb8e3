"""``pinnace engine`` image commands: images, pull, push, tag, rmi, load, save, build, history, prune."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cli.engine_client import (
    UPLOAD_BLOCK,
    EngineError,
    Response,
    ago,
    client_for,
    key_values,
    print_progress,
    print_table,
    quote_name,
    short,
    split_repo_tag,
)
from engine.daemon import units

# ------------------------------------------------------------------------------ client commands


def run_images(args: argparse.Namespace) -> int:
    query: dict[str, Any] = {"all": "1" if args.all else None}
    if args.repository:
        query["filters"] = json.dumps({"reference": [args.repository]})
    images = client_for(args).json("GET", "/images/json", query=query) or []
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
    print_progress(client_for(args).stream("POST", "/images/create", query=query))
    return 0


def run_push(args: argparse.Namespace) -> int:
    repo, tag = split_repo_tag(args.name)
    headers = {"X-Registry-Auth": "e30="}  # "{}": the daemon uses its own credentials
    path = f"/images/{quote_name(repo)}/push"
    print_progress(client_for(args).stream("POST", path, query={"tag": tag or "latest"}, headers=headers))
    return 0


def run_tag(args: argparse.Namespace) -> int:
    repo, tag = split_repo_tag(args.target)
    query = {"repo": repo, "tag": tag or "latest"}
    with client_for(args).request("POST", f"/images/{quote_name(args.source)}/tag", query=query) as response:
        response.read()
    return 0


def run_rmi(args: argparse.Namespace) -> int:
    client = client_for(args)
    query = {"force": "1" if args.force else "0", "noprune": "1" if args.no_prune else "0"}
    for name in args.names:
        for item in client.json("DELETE", f"/images/{quote_name(name)}", query=query) or []:
            for key, value in item.items():
                print(f"{key}: {value}")
    return 0


def run_history(args: argparse.Namespace) -> int:
    rows = []
    now = time.time()
    for item in client_for(args).json("GET", f"/images/{quote_name(args.name)}/history") or []:
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
    result = client_for(args).json("POST", "/images/prune", query=query) or {}
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
        messages = client_for(args).stream("POST", "/images/load", query={"quiet": "1" if args.quiet else "0"},
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
    with client_for(args).request("GET", "/images/get", query=query) as response:
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
        "buildargs": json.dumps(key_values(args.build_arg, "--build-arg")),
        "labels": json.dumps(key_values(args.label, "--label")),
        "nocache": "1" if args.no_cache else None,
        "target": args.target,
        "q": "1" if args.quiet else None,
        "networkmode": args.network,
        "rm": "1",
    }
    spool, query["dockerfile"] = _context_tar(context, dockerfile)
    headers = {"Content-Type": "application/x-tar", "Content-Length": str(os.fstat(spool.fileno()).st_size)}
    with spool:
        messages = client_for(args).stream("POST", "/build", query=query, body=spool, headers=headers)
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


def _configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="remove every unused image, not only untagged ones")
