"""The body of ``engine.build.build``: checks the options, parses, runs the executor, commits.

Kept out of the package ``__init__`` so that importing ``engine.build.dockerignore`` (the CLI does,
to filter what it uploads) does not pull in the whole builder.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.build.cache import BuildCache
from engine.build.context import SourceTree
from engine.build.dockerignore import IgnoreMatcher
from engine.build.errors import BuildError
from engine.build.executor import Executor, commit_image, unused_build_args
from engine.build.layers import Workspace
from engine.build.parser import Dockerfile, Instruction, Stage, parse
from engine.build.session import Session
from engine.images.errors import ImageError
from engine.images.reference import parse_reference
from engine.images.store import Image, ImageStore
from engine.runtime.rootpath import secure_join

NETWORKS = ("none", "host")


def _read_dockerfile(context: Path, dockerfile: str) -> str:
    path = Path(dockerfile) if os.path.isabs(dockerfile) else secure_join(context, dockerfile)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise BuildError(f"Cannot locate specified Dockerfile: {dockerfile}") from None
    except UnicodeDecodeError:
        raise BuildError(f"{dockerfile} is not UTF-8 text") from None


def _label_step(labels: dict[str, str], *, escape: str) -> Instruction:
    """The ``LABEL`` step Docker appends for ``--label`` options (values escaped, never expanded)."""

    def quote(text: str) -> str:
        return "".join(escape + c if c.isspace() or c in f"$\"'={escape}" else c for c in text)

    args = " ".join(f"{quote(k)}={quote(v)}" for k, v in labels.items())
    return Instruction(keyword="LABEL", args=args, flags={}, json=None, line=0, original=f"LABEL {args}")


def _stages(dockerfile: Dockerfile, target: str | None) -> list[Stage]:
    if target is None:
        return dockerfile.stages
    index = dockerfile.stage_index(target)
    if index is None:
        raise BuildError(f"failed to reach build target {target} in Dockerfile")
    return dockerfile.stages[: index + 1]


def _check_tags(tags: Sequence[str]) -> list[str]:
    out = []
    for tag in tags:
        try:
            ref = parse_reference(tag)
        except ImageError as exc:
            raise BuildError(f"invalid tag {tag!r}: {exc}") from None
        if ref.digest is not None:
            raise BuildError(f"invalid tag {tag!r}: a tag cannot name a digest")
        out.append(tag)
    return out


async def run_build(
    store: ImageStore,
    context: Path,
    *,
    dockerfile: str = "Dockerfile",
    tags: Sequence[str] = (),
    build_args: dict[str, str] | None = None,
    target: str | None = None,
    no_cache: bool = False,
    labels: dict[str, str] | None = None,
    network: str = "none",
    runtime: str = "crun",
    progress: Callable[[str], None] | None = None,
) -> Image:
    """Build the Dockerfile in ``context`` and store the image under ``tags``; returns it."""
    emit = progress or (lambda _line: None)
    context = Path(context)
    if not context.is_dir():
        raise BuildError(f"build context {os.fspath(context)} is not a directory")
    if network not in NETWORKS and not os.path.isabs(network):
        raise BuildError(f"network mode {network!r} is not supported by the builder (use none or host)")
    checked_tags = _check_tags(tags)
    text = await asyncio.to_thread(_read_dockerfile, context, dockerfile)
    parsed = parse(text, filename=dockerfile)
    stages = _stages(parsed, target)
    extra = [_label_step(labels, escape=parsed.escape)] if labels else []
    matcher = await asyncio.to_thread(IgnoreMatcher.load, context)
    cache = await asyncio.to_thread(BuildCache, store)
    workspace = await asyncio.to_thread(Workspace, store)
    try:
        with store.lease() as lease:
            session = Session(
                store=store,
                dockerfile=parsed,
                context=SourceTree(context, matcher=matcher, label="build context"),
                workspace=workspace,
                lease=lease,
                cache=cache,
                emit=emit,
                network=network,
                runtime=runtime,
                no_cache=no_cache,
                build_args=dict(build_args or {}),
            )
            state = await Executor(session, stages=stages, extra=extra).run()
            unused = unused_build_args(session)
            if unused:
                emit(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
            image = await commit_image(session, state, tags=checked_tags)
    except BuildError:
        raise
    except ImageError as exc:
        raise BuildError(str(exc)) from None
    except OSError as exc:
        raise BuildError(f"build failed: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
    finally:
        await asyncio.shield(asyncio.to_thread(workspace.close))
    emit(f"Successfully built {image.short_id}")
    for tag in checked_tags:
        emit(f"Successfully tagged {parse_reference(tag).familiar()}")
    return image
