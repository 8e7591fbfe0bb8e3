"""The instructions that change the filesystem: RUN, COPY, ADD, WORKDIR; each returns a ``Plan``.

RUN runs its command in a real container: the parent stack plus a fresh upper dir, mounted with an
init layer on top, becomes the rootfs of an OCI bundle that crun (or runc) runs with the build's
network (none by default); the upper dir becomes the layer. COPY/ADD copy from the build context
(``.dockerignore`` applied; the inputs' content digest is part of the cache key) or, with
``--from``, from an earlier stage or a stored image mounted read-only. WORKDIR makes its directory
and adds a layer only if that created something.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from typing import Any

from engine.build import layers
from engine.build.context import Source, SourceTree
from engine.build.errors import BuildError
from engine.build.fscopy import CopyOptions, copy_sources, ensure_dir
from engine.build.imageconfig import history_entry, nop_single
from engine.build.lex import expand
from engine.build.metadata import DEFAULT_SHELL
from engine.build.parser import Instruction
from engine.build.session import Plan, Session, StageRun
from engine.build.state import Layer, State, StepResult, scratch_config
from engine.images.errors import ImageNotFound
from engine.runtime import hostsetup, oci
from engine.runtime.rootpath import clean
from engine.runtime.spec import ContainerOptions, Mount, make_spec
from engine.runtime.users import resolve_user

_URL_PREFIXES = ("http://", "https://", "git@", "git://", "ssh://")
HOST_NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts")
_cgroups_ready = False


class _LineSplitter:
    """Turns output chunks into whole lines for the progress stream."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.buffer = b""

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.emit(line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        if self.buffer:
            self.emit(self.buffer.decode("utf-8", "replace"))
            self.buffer = b""


def _parent_chain(state: State) -> str | None:
    chain = state.chain
    return chain[-1] if chain else None


def _commit_or_empty(session: Session, *, state: State, mount: layers.StepMount, empty_ok: bool) -> Layer | None:
    """The upper dir of a closed step mount as a layer (None when ``empty_ok`` and nothing changed)."""
    if empty_ok and not any(mount.upper.iterdir()):
        return None
    return layers.commit_layer(session.store, session.lease, upper=mount.upper, parent_chain=_parent_chain(state))


def _host_network_mounts() -> tuple[Mount, ...]:
    """With the host's network a RUN also needs its name resolution files (read-only)."""
    return tuple(
        Mount(destination=f, source=f, options=("rbind", "ro", "rprivate"))
        for f in HOST_NETWORK_FILES
        if os.path.isfile(f)
    )


async def _ensure_cgroups() -> None:
    global _cgroups_ready
    if not _cgroups_ready:
        await asyncio.to_thread(hostsetup.ensure_cgroups)
        _cgroups_ready = True


# ---------------------------------------------------------------------------------------------- RUN


def plan_run(session: Session, *, run: StageRun, instr: Instruction) -> Plan:
    config = run.state.config
    if instr.json is not None:
        cmd = list(instr.json)
    else:
        cmd = [*(config.get("Shell") or DEFAULT_SHELL), instr.args]
    if not cmd:
        raise BuildError("RUN requires a command")
    arg_env = run.build_arg_env()
    created_by = " ".join(cmd)
    if arg_env:
        created_by = f"|{len(arg_env)} {' '.join(arg_env)} {created_by}"
    env = [*(config.get("Env") or []), *arg_env, *session.predefined_env(run.args)]
    container_id = f"pinnace-build-{uuid.uuid4().hex[:16]}"
    state = run.state

    async def execute() -> StepResult:
        await _ensure_cgroups()
        result_layer = await _run_container(session, state, cmd=cmd, env=env, container_id=container_id)
        return StepResult(config=state.config, history=history_entry(created_by, empty_layer=False), layer=result_layer)

    return Plan(text=f"RUN {created_by}", execute=execute, label=f" ---> Running in {container_id[-12:]}")


async def _run_container(session: Session, state: State, *, cmd: list[str], env: list[str], container_id: str) -> Layer:
    ws = session.workspace
    init = await asyncio.to_thread(ws.init_dir, session.network)
    mount = await asyncio.to_thread(layers.open_step, session.store, ws=ws, chain=state.chain, init=init)
    try:
        options = ContainerOptions(
            rootfs=str(mount.merged),
            args=cmd,
            env=env,
            cwd=state.config.get("WorkingDir") or "/",
            user=state.config.get("User") or "",
            hostname=container_id[-12:],
            network=session.network,
            mounts=_host_network_mounts() if session.network == "host" else (),
        )
        spec = await asyncio.to_thread(make_spec, options)
        bundle = ws.new_dir("bundle")
        await asyncio.to_thread(oci.write_bundle, bundle, spec)
        lines = _LineSplitter(session.emit)
        result = await oci.run(bundle=bundle, container_id=container_id, runtime=session.runtime, on_output=lines.feed)
        lines.close()
    finally:
        await asyncio.to_thread(mount.close)
    if result.exit_code != 0:
        raise BuildError(f"The command '{' '.join(cmd)}' returned a non-zero code: {result.exit_code}")
    session.emit(f"Removing intermediate container {container_id[-12:]}")
    layer = await asyncio.to_thread(_commit_or_empty, session, state=state, mount=mount, empty_ok=False)
    assert layer is not None
    return layer


# ------------------------------------------------------------------------------------------ WORKDIR


def plan_workdir(session: Session, *, run: StageRun, instr: Instruction) -> Plan:
    raw = expand(instr.args, run.substitution_env(), escape=session.escape)
    if not raw:
        raise BuildError("WORKDIR requires a path")
    path = clean(raw, cwd=run.state.config.get("WorkingDir") or "/")
    config = {**run.state.config, "WorkingDir": path}
    state = run.state
    created_by = nop_single(f"WORKDIR {path}")

    def work() -> StepResult:
        with layers.writable(session.store, ws=session.workspace, chain=state.chain) as mount:
            ensure_dir(mount.merged, path, owner=(0, 0))
        layer = _commit_or_empty(session, state=state, mount=mount, empty_ok=True)
        return StepResult(config=config, history=history_entry(created_by, empty_layer=layer is None), layer=layer)

    async def execute() -> StepResult:
        return await asyncio.to_thread(work)

    return Plan(text=f"WORKDIR {path}", execute=execute)


# --------------------------------------------------------------------------------------- COPY / ADD


def _destination(raw: str, workdir: str) -> str:
    """The absolute destination, keeping a trailing ``/`` (it means "into this directory")."""
    is_dir = raw.endswith("/") or raw in (".", "..") or raw.endswith(("/.", "/.."))
    path = clean(raw, cwd=workdir or "/")
    return path if path == "/" or not is_dir else path + "/"


def _chmod(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        raise BuildError(f"invalid --chmod value {value!r}: must be octal") from None
    if not 0 <= mode <= 0o7777:
        raise BuildError(f"invalid --chmod value {value!r}")
    return mode


def _kind(sources: list[Source]) -> str:
    if len(sources) > 1:
        return "multi"
    return "dir" if sources[0].is_dir else "file"


async def _from_state(session: Session, *, run: StageRun, ref: str) -> State:
    """The state ``COPY --from`` names: an earlier stage (name or index) or a stored image."""
    index = session.dockerfile.stage_index(ref)
    if index is None and ref.isdigit():
        index = int(ref)
    if index is not None:
        if index >= run.stage.index or index not in session.stages:
            raise BuildError(f"COPY --from={ref}: stage {ref!r} is not built before this stage")
        return session.stages[index]
    try:
        return await image_state(session, ref)
    except ImageNotFound:
        raise BuildError(f"COPY --from={ref}: no such stage, and no such image in the store") from None


async def image_state(session: Session, name: str) -> State:
    """The state of a stored image (snapshots ensured, everything leased for the build)."""
    store = session.store
    image = await asyncio.to_thread(store.resolve, name)
    session.lease.add(image.id, image.manifest_digest, *(layer["digest"] for layer in image.layers))
    session.lease.add(*image.chain_ids)
    await asyncio.to_thread(store.ensure_snapshots, image.manifest, image.config)
    config = image.config.get("config") or scratch_config()
    return State(
        base=image.id,
        config=dict(config),
        layers=[
            Layer(digest=desc["digest"], size=int(desc["size"]), diff_id=diff_id, media_type=desc["mediaType"])
            for desc, diff_id in zip(image.layers, image.diff_ids, strict=True)
        ],
        history=list(image.config.get("history") or []),
        platform={k: image.config[k] for k in ("architecture", "os", "variant") if image.config.get(k)},
        author=image.config.get("author"),
        created=image.config.get("created") or "",
    )


async def plan_copy(session: Session, *, run: StageRun, instr: Instruction) -> Plan:
    keyword = instr.keyword
    env = run.substitution_env()
    esc = session.escape
    words = [expand(w, env, escape=esc) for w in (instr.json if instr.json is not None else instr.args.split())]
    if len(words) < 2:
        raise BuildError(f"{keyword} requires at least two arguments")
    raw_sources, dest = words[:-1], _destination(words[-1], run.state.config.get("WorkingDir") or "/")
    if keyword == "ADD" and (url := next((s for s in raw_sources if s.startswith(_URL_PREFIXES)), None)):
        raise BuildError(f"ADD from a URL is not supported by this builder: {url}")
    chown = expand(instr.flags["chown"], env, escape=esc) if "chown" in instr.flags else None
    chmod = _chmod(expand(instr.flags["chmod"], env, escape=esc) if "chmod" in instr.flags else None)
    from_ref = expand(instr.flags["from"], env, escape=esc) if "from" in instr.flags else None
    source_state = await _from_state(session, run=run, ref=from_ref) if from_ref else None
    flags = f"--chown={chown or ''} --chmod={'' if chmod is None else oct(chmod)}"
    if source_state is not None:
        inputs = f"from:{source_state.id}"
        kind = "dir" if len(raw_sources) == 1 else "multi"
        sources: list[Source] = []
    else:
        sources = await asyncio.to_thread(session.context.resolve, raw_sources, keyword=keyword)
        inputs = await asyncio.to_thread(session.context.digest, sources)
        kind = _kind(sources)
    created_by = nop_single(f"{keyword} {kind}:{inputs.rpartition(':')[2]} in {dest} ")
    options_base: dict[str, Any] = {"chmod": chmod, "unpack_archives": keyword == "ADD"}
    state = run.state

    def work() -> StepResult:
        with layers.writable(session.store, ws=session.workspace, chain=state.chain) as mount:
            owner = None
            if chown:
                user = resolve_user(mount.merged, chown, supplementary=False)
                owner = (user.uid, user.gid)
            options = CopyOptions(owner=owner, **options_base)
            if source_state is None:
                copy_sources(
                    tree=session.context,
                    sources=sources,
                    root=mount.merged,
                    dest=dest,
                    options=options,
                    scratch=session.workspace.dir,
                    keyword=keyword,
                )
            else:
                with layers.readonly(session.store, ws=session.workspace, chain=source_state.chain) as src_root:
                    tree = SourceTree(src_root, label=f"stage {from_ref}")
                    copy_sources(
                        tree=tree,
                        sources=tree.resolve(raw_sources, keyword=keyword),
                        root=mount.merged,
                        dest=dest,
                        options=options,
                        scratch=session.workspace.dir,
                        keyword=keyword,
                    )
        layer = _commit_or_empty(session, state=state, mount=mount, empty_ok=False)
        return StepResult(config=state.config, history=history_entry(created_by, empty_layer=False), layer=layer)

    async def execute() -> StepResult:
        return await asyncio.to_thread(work)

    text = f"{keyword} {flags} {' '.join(words)}"
    return Plan(text=text, inputs=inputs, execute=execute)
