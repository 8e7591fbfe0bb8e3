"""``ContainerManager``: the container lifecycle over conmon and an OCI runtime, state on disk.

create -> (prepare the directory, mount the rootfs, write the bundle, start conmon, which runs the
runtime's ``create``) -> start (``runtime start``) -> exit (conmon writes the exit file and ends) ->
start again (a fresh conmon + ``create`` over the same rootfs) ... -> remove. Everything a container
is lives in its directory (``layout``), so a new manager on the same root (``load``) finds running
containers again by their conmon's pid, and reads the exit status of those that ended meanwhile.

Exits are noticed without polling: a pidfd of each container's conmon sits in the event loop and
becomes readable when conmon ends, which is just after it has written the exit file. The handler
records the exit code and whether the cgroup saw an OOM kill, then deletes the runtime's record of
the container (freeing its cgroup); the rootfs stays mounted until ``remove``. A per-container lock
serialises start, exit handling and remove; stop/kill only signal and wait for the exit event.

Failures roll back completely: a create that fails at any step leaves no directory, mount, cgroup,
runtime record or conmon behind (``_discard``), and bad input surfaces as one ``ContainerError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal as signals
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.containers import exec as exec_mod
from engine.containers import layout, logs, rootfs, specgen, top
from engine.containers.attach import AttachSession
from engine.containers.config import ContainerConfig
from engine.containers.errors import Conflict, ContainerError, InvalidArgument, NotFound, NotRunning, RuntimeFailure
from engine.containers.names import check_name, generate_name, parse_signal
from engine.containers.record import Container, State, Status, now_iso, read_json, write_json
from engine.images.errors import ImageError, ImageNotFound, InvalidReference, MountError
from engine.images.store import Image, ImageStore
from engine.runtime import cgroups, conmon, hostsetup, oci
from engine.runtime.errors import OCIRuntimeError, SpecError
from engine.runtime.idmap import DEFAULT_SIZE, IdMapping
from engine.runtime.resources import Resources
from engine.runtime.spec import make_spec
from engine.runtime.users import ExecUser, resolve_user

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10.0  # seconds between the stop signal and SIGKILL
KILL_WAIT = 30.0  # seconds to wait for a SIGKILLed container to be reported gone
CONMON_EXIT_WAIT = 2.0  # seconds for a conmon to end by itself before we kill it
CGROUP_PARENT = "pinnace"
USERNS_BASE = 100_000  # first host id handed to "auto" user namespaces
# words in a runtime's create error that mean the caller's input was wrong (-> 400, not 500)
INPUT_ERROR_HINTS = (
    "no such file or directory",
    "not found",
    "permission denied",
    "not a directory",
    "invalid argument",
)


@dataclass
class _Entry:
    """The manager's live record of one container."""

    id: str
    config: ContainerConfig
    state: State
    paths: layout.ContainerPaths
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    watch_fd: int | None = None

    def snapshot(self) -> Container:
        return Container(id=self.id, config=self.config, state=replace(self.state), paths=self.paths)

    @property
    def name(self) -> str:
        return self.config.name or ""

    @property
    def alive(self) -> bool:
        return self.state.status in (Status.CREATED, Status.RUNNING)


def _translate(exc: BaseException) -> BaseException:
    """Any failure of a create/start as the one ContainerError a caller should see."""
    if isinstance(exc, ContainerError | asyncio.CancelledError):
        return exc
    if isinstance(exc, ImageNotFound):
        return NotFound(str(exc))
    if isinstance(exc, InvalidReference | SpecError):
        return InvalidArgument(str(exc))
    if isinstance(exc, conmon.CreateFailed):
        explained = exec_mod.explain(str(exc))
        if explained is not None:
            return InvalidArgument(explained[1])
        if any(hint in str(exc).lower() for hint in INPUT_ERROR_HINTS):
            return InvalidArgument(str(exc))
        return RuntimeFailure(str(exc))
    if isinstance(exc, MountError | OCIRuntimeError):
        return RuntimeFailure(str(exc))
    if isinstance(exc, ImageError):
        return exc
    if isinstance(exc, OSError):
        return RuntimeFailure(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
    return exc


def _mtime_iso(path: Path) -> str:
    try:
        ts = path.stat().st_mtime_ns
    except OSError:
        return now_iso()
    return datetime.fromtimestamp(ts // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ts % 10**9:09d}Z"


class ContainerManager:
    """Containers of one engine root; see the package docstring for the API summary."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        store: ImageStore,
        *,
        runtime: str = "crun",
        cgroup_parent: str = CGROUP_PARENT,
        userns_base: int = USERNS_BASE,
    ) -> None:
        self.root = Path(root)
        self.store = store
        self.runtime = runtime
        self.cgroup_parent = cgroup_parent.strip("/")
        self.userns_base = userns_base
        self._entries: dict[str, _Entry] = {}
        self._names: dict[str, str] = {}  # name -> id, including containers being created
        self._userns_reserved: set[int] = set()
        self._names_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        layout.containers_dir(self.root).mkdir(parents=True, exist_ok=True)
        layout.runtime_root(self.root).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ lookups (fast, no I/O)

    def get(self, ref: str) -> Container:
        """The container with this id, name (``/name`` too) or unique id prefix."""
        return self._entry(ref).snapshot()

    def list(self, *, all: bool = False) -> list[Container]:
        """Running containers (every container with ``all``), newest first."""
        chosen = [e for e in self._entries.values() if all or e.state.status is Status.RUNNING]
        chosen.sort(key=lambda e: e.state.created_at, reverse=True)
        return [e.snapshot() for e in chosen]

    def image_users(self, image_id: str) -> list[str]:
        """Ids of the containers created from ``image_id`` (for the image store's in-use check)."""
        return [e.id for e in self._entries.values() if e.state.image_id == image_id]

    def _entry(self, ref: str) -> _Entry:
        if ref in self._entries:
            return self._entries[ref]
        bare = ref[1:] if ref.startswith("/") else ref
        by_name = self._names.get(bare)
        if by_name is not None and by_name in self._entries:
            return self._entries[by_name]
        if ref:
            matches = [e for cid, e in self._entries.items() if cid.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple containers found with prefix {ref!r}: give more of the id")
        raise NotFound(f"No such container: {ref}")

    def _running(self, ref: str) -> _Entry:
        entry = self._entry(ref)
        if entry.state.status is not Status.RUNNING:
            raise NotRunning(f"container {entry.id} is not running")
        return entry

    def _base_argv(self) -> list[str]:
        return oci.base_argv(runtime=self.runtime, state_root=layout.runtime_root(self.root))

    # ------------------------------------------------------------------ create

    async def create(self, config: ContainerConfig) -> Container:
        """Create a container (its process waits for ``start``); rolls back fully on failure."""
        config.validate()
        image = self._resolve_image(config.image)
        cid = secrets.token_hex(32)
        async with self._names_lock:
            name = self._claim_name(config.name, cid)
            mapping = self._claim_userns(config)
        settings = specgen.image_settings(image.config)
        entry = _Entry(
            id=cid,
            config=replace(config, name=name),
            state=State(
                created_at=now_iso(),
                image_id=image.id,
                runtime=self.runtime,
                stop_signal=specgen.stop_signal(config, settings),
                userns_host_id=mapping.host_id if mapping else 0,
                cgroups_path=f"/{self.cgroup_parent}/{cid}" if self.cgroup_parent else f"/{cid}",
            ),
            paths=layout.ContainerPaths(self.root, cid),
        )
        try:
            await asyncio.to_thread(self._prepare, entry, image, mapping)
            await self._spawn(entry)
        except BaseException as exc:
            await asyncio.shield(self._discard(entry))
            raise _translate(exc) from None
        finally:
            if mapping is not None:
                self._userns_reserved.discard(mapping.host_id)
        self._entries[cid] = entry
        log.info("created container %s (%s) from %s", cid[:12], name, config.image)
        return entry.snapshot()

    def _resolve_image(self, ref: str) -> Image:
        try:
            return self.store.resolve(ref)
        except ImageNotFound:
            raise NotFound(f"No such image: {ref}") from None
        except InvalidReference as exc:
            raise InvalidArgument(str(exc)) from None

    def _claim_name(self, wanted: str | None, cid: str) -> str:
        if wanted is None:
            name = generate_name(self._names)
        else:
            name = check_name(wanted)
            if name in self._names:
                raise Conflict(
                    f'the container name "/{name}" is already in use by container "{self._names[name]}"; '
                    "remove (or rename) that container to reuse the name"
                )
        self._names[name] = cid
        return name

    def _claim_userns(self, config: ContainerConfig) -> IdMapping | None:
        if config.userns != "auto":
            return config.id_mapping(None)
        used = {e.state.userns_host_id for e in self._entries.values()} | self._userns_reserved
        host_id = self.userns_base
        while host_id in used:
            host_id += DEFAULT_SIZE
        self._userns_reserved.add(host_id)
        return IdMapping(host_id=host_id)

    def _prepare(self, entry: _Entry, image: Image, mapping: IdMapping | None) -> None:
        """Blocking: directory, config, rootfs mount, OCI bundle (state.json only once conmon runs)."""
        paths = entry.paths
        if mapping is not None:
            _check_traversable(paths.dir.parent, mapping)
        paths.dir.mkdir(parents=True)
        write_json(paths.config, entry.config.to_dict())
        self.store.ensure_snapshots(image.manifest, image.config)
        rootfs.mount(self.store, image, paths, mapping=mapping)
        opts = specgen.options(
            config=entry.config,
            container_id=entry.id,
            image_config=image.config,
            paths=paths,
            mapping=mapping,
            cgroups_path=entry.state.cgroups_path,
        )
        oci.write_bundle(paths.bundle, make_spec(opts))

    async def _spawn(self, entry: _Entry) -> None:
        """conmon + runtime create for the bundle; the container is then ``created``."""
        await asyncio.to_thread(self._clear_run_files, entry.paths)
        cfg = conmon.ConmonConfig(
            container_id=entry.id,
            name=entry.name,
            bundle=entry.paths.bundle,
            exit_dir=entry.paths.exit_dir,
            log_path=entry.paths.log,
            runtime=self.runtime,
            runtime_root=layout.runtime_root(self.root),
            log_size_max=entry.config.log_size_max,
            terminal=entry.config.tty,
            stdin=entry.config.stdin,
            stdin_once=entry.config.stdin_once,
        )
        created = await conmon.create(cfg)
        entry.exited = asyncio.Event()
        entry.state.status = Status.CREATED
        entry.state.pid, entry.state.conmon_pid = created.pid, created.conmon_pid
        entry.state.error = ""
        await self._save(entry)
        self._watch(entry)

    @staticmethod
    def _clear_run_files(paths: layout.ContainerPaths) -> None:
        """What a previous conmon left in the bundle (it refuses an existing ctl fifo)."""
        for name in ("ctl", "winsz", "attach", "pidfile", "conmon.pid", "oom"):
            (paths.bundle / name).unlink(missing_ok=True)
        paths.exit_file.unlink(missing_ok=True)

    # ------------------------------------------------------------------ start / stop / kill

    async def start(self, ref: str) -> Container:
        """Start a created or exited container (a running one is left alone)."""
        entry = self._entry(ref)
        async with entry.lock:
            if entry.state.status is Status.RUNNING:
                return entry.snapshot()
            if entry.state.status is Status.REMOVING:
                raise Conflict(f"container {entry.id} is being removed")
            if entry.state.status is Status.EXITED:
                await self._respawn(entry)
            started_at = now_iso()  # before the process runs, so a quick exit is never "earlier"
            try:
                await oci.start(container_id=entry.id, runtime=self.runtime, state_root=layout.runtime_root(self.root))
            except OCIRuntimeError as exc:
                entry.state.error = str(exc)
                await self._save(entry)
                raise RuntimeFailure(str(exc)) from None
            entry.state.status = Status.RUNNING
            entry.state.started_at = started_at
            entry.state.finished_at = ""
            entry.state.exit_code = None
            entry.state.oom_killed = False
            await self._save(entry)
        return entry.snapshot()

    async def _respawn(self, entry: _Entry) -> None:
        """A fresh conmon + create for an exited container (remounting after a reboot)."""
        await self._force_delete(entry)
        mapping = IdMapping(host_id=entry.state.userns_host_id) if entry.state.userns_host_id else None
        if entry.config.userns not in (None, "", "host", "auto"):
            mapping = entry.config.id_mapping(None)
        try:
            if not await asyncio.to_thread(rootfs.is_mounted, entry.paths):
                image = self.store.resolve(entry.state.image_id)
                await asyncio.to_thread(rootfs.mount, self.store, image, entry.paths, mapping=mapping)
            await self._spawn(entry)
        except BaseException as exc:
            raise _translate(exc) from None
        entry.state.restart_count += 1

    async def restart(self, ref: str, timeout: float | None = None) -> Container:  # noqa: ASYNC109 (a grace period)
        await self.stop(ref, timeout)
        return await self.start(ref)

    async def stop(self, ref: str, timeout: float | None = None) -> Container:  # noqa: ASYNC109 (a grace period)
        """Send the stop signal, wait up to ``timeout`` seconds (default: the config's, else 10),
        then SIGKILL. A container that is not running is left as it is."""
        entry = self._entry(ref)
        if entry.state.status is not Status.RUNNING:
            return entry.snapshot()
        grace = timeout if timeout is not None else entry.config.stop_timeout
        grace = DEFAULT_STOP_TIMEOUT if grace is None else max(0.0, float(grace))
        exited = entry.exited
        if grace > 0 and await self._signal(entry, entry.state.stop_signal):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await exited.wait()
        if not exited.is_set():
            await self._signal(entry, int(signals.SIGKILL))
            try:
                async with asyncio.timeout(KILL_WAIT):
                    await exited.wait()
            except TimeoutError:
                raise RuntimeFailure(f"container {entry.id} did not exit after SIGKILL") from None
        return entry.snapshot()

    async def kill(self, ref: str, signal: str | int = "SIGKILL") -> Container:
        """Send ``signal`` (a number or a name) to the container's main process."""
        number = parse_signal(signal)
        entry = self._running(ref)
        if not await self._signal(entry, number):
            raise NotRunning(f"container {entry.id} is not running")
        return entry.snapshot()

    async def _signal(self, entry: _Entry, number: int) -> bool:
        host_pid_ns = entry.config.namespace_paths.get("pid") == "host"
        return await oci.kill(
            container_id=entry.id,
            signal=number,
            runtime=self.runtime,
            state_root=layout.runtime_root(self.root),
            all_processes=host_pid_ns and number == signals.SIGKILL,
        )

    async def wait(self, ref: str) -> int:
        """The exit code of the container's current (or next) run; at once if it has exited."""
        entry = self._entry(ref)
        if entry.state.status is Status.EXITED and entry.state.exit_code is not None:
            return entry.state.exit_code
        await entry.exited.wait()
        return entry.state.exit_code if entry.state.exit_code is not None else -1

    # ------------------------------------------------------------------ exits

    def _watch(self, entry: _Entry) -> None:
        """Get told when the container's conmon ends (a pidfd in the event loop)."""
        self._unwatch(entry)
        pid = entry.state.conmon_pid
        try:
            fd = os.pidfd_open(pid) if pid > 0 else -1
        except OSError:
            fd = -1
        if fd < 0 or not conmon.is_conmon_of(pid, entry.id):
            if fd >= 0:
                os.close(fd)
            self._spawn_task(self._finalise(entry))
            return
        entry.watch_fd = fd
        asyncio.get_running_loop().add_reader(fd, self._conmon_ended, entry)

    def _unwatch(self, entry: _Entry) -> None:
        if entry.watch_fd is not None:
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                asyncio.get_running_loop().remove_reader(entry.watch_fd)
            os.close(entry.watch_fd)
            entry.watch_fd = None

    def _conmon_ended(self, entry: _Entry) -> None:
        self._unwatch(entry)
        self._spawn_task(self._finalise(entry))

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finalise(self, entry: _Entry) -> None:
        """Record an ended run: exit code, OOM kill, finish time; drop the runtime's record."""
        async with entry.lock:
            if not entry.alive or entry.watch_fd is not None:
                return
            paths = entry.paths
            code = await asyncio.to_thread(conmon.read_exit_code, paths.exit_dir, entry.id)
            cgroup = cgroups.ContainerCgroup(entry.state.cgroups_path)
            oom = await asyncio.to_thread(lambda: paths.oom_file.exists() or cgroup.oom_kills() > 0)
            entry.state.status = Status.EXITED
            entry.state.pid = entry.state.conmon_pid = 0
            entry.state.finished_at = await asyncio.to_thread(_mtime_iso, paths.exit_file)
            entry.state.oom_killed = oom
            if code is None:
                entry.state.exit_code = 255
                entry.state.error = "conmon ended without recording an exit status"
            else:
                entry.state.exit_code = code
            await self._save(entry)
            entry.exited.set()  # waiters go on while the runtime record is dropped (under the lock)
            await self._force_delete(entry)
        log.info("container %s exited with %s%s", entry.id[:12], entry.state.exit_code, " (OOM)" if oom else "")

    async def _force_delete(self, entry: _Entry) -> None:
        await oci.call(*self._base_argv(), "delete", "-f", entry.id)

    # ------------------------------------------------------------------ remove

    async def remove(self, ref: str, *, force: bool = False) -> None:
        """Remove a container and everything it owns; a running one only with ``force`` (SIGKILL)."""
        entry = self._entry(ref)
        if entry.state.status is Status.RUNNING:
            if not force:
                raise Conflict(
                    f'cannot remove container "{entry.name}": container is running: '
                    "stop the container before removing or force remove"
                )
            await self._signal(entry, int(signals.SIGKILL))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_WAIT):
                    await entry.exited.wait()
        async with entry.lock:
            if entry.id not in self._entries:
                return
            entry.state.status = Status.REMOVING
            await self._save(entry)
            await self._discard(entry)
        log.info("removed container %s (%s)", entry.id[:12], entry.name)

    async def _discard(self, entry: _Entry) -> None:
        """Undo every trace of a container; each step tolerates what earlier failures left."""
        self._unwatch(entry)
        with contextlib.suppress(OCIRuntimeError):
            await self._force_delete(entry)
        conmon_pid = entry.state.conmon_pid or await asyncio.to_thread(_read_int, entry.paths.conmon_pidfile)
        await _end_process(conmon_pid, entry.id)
        await asyncio.to_thread(self._remove_files, entry)
        self._entries.pop(entry.id, None)
        if self._names.get(entry.name) == entry.id:
            del self._names[entry.name]
        entry.exited.set()

    @staticmethod
    def _remove_files(entry: _Entry) -> None:
        rootfs.unmount(entry.paths)
        if entry.state.cgroups_path:
            cgroups.ContainerCgroup(entry.state.cgroups_path).remove()
        shutil.rmtree(entry.paths.dir, ignore_errors=True)

    # ------------------------------------------------------------------ restart of the engine

    async def load(self) -> list[Container]:
        """Find the containers of a previous engine on this root; follow the live ones again.
        Also applies the host's cgroup fix (idempotent), so a manager works without a daemon."""
        await asyncio.to_thread(hostsetup.ensure_cgroups)
        found = await asyncio.to_thread(self._scan)
        for cid, config, state in found:
            if cid in self._entries:
                continue
            paths = layout.ContainerPaths(self.root, cid)
            if config is None or state is None:  # the engine died half-way through a create
                orphan = _Entry(id=cid, config=config or ContainerConfig(image=""), state=state or State(), paths=paths)
                await self._discard(orphan)
                continue
            entry = _Entry(id=cid, config=config, state=state, paths=paths)
            self._entries[cid] = entry
            self._names[entry.name] = cid
            if state.status is Status.REMOVING:
                async with entry.lock:
                    await self._discard(entry)
            elif entry.alive:
                self._watch(entry)
            else:
                entry.exited.set()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        return self.list(all=True)

    def _scan(self) -> list[tuple[str, ContainerConfig | None, State | None]]:
        out: list[tuple[str, ContainerConfig | None, State | None]] = []
        for d in sorted(layout.containers_dir(self.root).iterdir()):
            if not d.is_dir():
                continue
            try:
                config = ContainerConfig.from_dict(read_json(d / "config.json"))
                state = State.from_dict(read_json(d / "state.json"))
            except (OSError, ValueError, InvalidArgument) as exc:
                log.warning("container dir %s is incomplete (%s); removing it", d.name, exc)
                config, state = None, None
            out.append((d.name, config, state))
        return out

    async def close(self) -> None:
        """Stop following exits (containers keep running); for handing the root to a new manager."""
        for entry in self._entries.values():
            self._unwatch(entry)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ I/O of running containers

    def logs(
        self,
        ref: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        until: float | None = None,
        stdout: bool = True,
        stderr: bool = True,
    ) -> AsyncIterator[logs.LogLine]:
        """The container's output entries (``since``/``until`` in Unix seconds); ``follow`` keeps
        reading until the container is no longer running."""
        entry = self._entry(ref)
        flt = logs.LogFilter(
            since_ns=None if since is None else int(since * 1e9),
            until_ns=None if until is None else int(until * 1e9),
            streams=logs.streams(stdout=stdout, stderr=stderr),
        )
        return logs.read(
            entry.paths.log,
            follow=follow,
            tail=tail,
            flt=flt,
            running=lambda: entry.alive and entry.id in self._entries,
        )

    async def exec(
        self,
        ref: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        env: Sequence[str] = (),
        user: str | None = None,
        workdir: str | None = None,
        stdin: bytes | None = None,
    ) -> exec_mod.ExecResult:
        """Run ``cmd`` in the running container and collect its output and exit code.

        A command the runtime cannot start raises ``InvalidArgument`` ("executable file not found");
        for a deadline wrap the call in ``asyncio.timeout`` (cancelling kills the process)."""
        session = await self.exec_stream(
            ref, cmd, tty=tty, stdin=stdin is not None, env=env, user=user, workdir=workdir
        )
        result = await exec_mod.collect(session, stdin=stdin)
        if result.error:
            raise InvalidArgument(result.error)
        return result

    async def exec_stream(
        self,
        ref: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        stdin: bool = False,
        env: Sequence[str] = (),
        user: str | None = None,
        workdir: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> exec_mod.ExecSession:
        """Start ``cmd`` and hand back its session (a ``StdioSession`` with ``wait()``); the caller
        must ``close()`` it. ``size`` is the terminal's (height, width)."""
        entry = self._running(ref)
        if isinstance(cmd, str) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise InvalidArgument("exec needs a command: a non-empty list of strings")
        if workdir is not None and workdir and not workdir.startswith("/"):
            raise InvalidArgument(f"the working directory {workdir!r} is invalid, it needs to be an absolute path")
        for item in env:
            if "=" not in item or item.startswith("="):
                raise InvalidArgument(f"invalid environment variable {item!r}: want KEY=value")
        try:
            base, exec_user = await asyncio.to_thread(self._exec_basis, entry, user)
        except SpecError as exc:
            raise InvalidArgument(str(exc)) from None
        doc = exec_mod.process_doc(base, args=cmd, env=env, user=exec_user, cwd=workdir or None, tty=tty)
        return await exec_mod.ExecSession.start(
            base_argv=self._base_argv(),
            container_id=entry.id,
            process=doc,
            work_dir=entry.paths.bundle,
            stdin=stdin,
            size=size,
        )

    @staticmethod
    def _exec_basis(entry: _Entry, user: str | None) -> tuple[dict[str, Any], ExecUser | None]:
        spec = read_json(entry.paths.bundle / "config.json")
        exec_user = resolve_user(entry.paths.rootfs, user) if user else None
        return spec["process"], exec_user

    async def attach(self, ref: str) -> AttachSession:
        """A ``StdioSession`` on the running container's main process (output from now on)."""
        entry = self._running(ref)
        try:
            return await AttachSession.open(entry.paths.bundle)
        except OSError as exc:
            raise RuntimeFailure(f"cannot attach to container {entry.id}: {exc.strerror or exc}") from None

    async def resize(self, ref: str, *, height: int, width: int) -> None:
        """Resize a TTY container's terminal."""
        entry = self._running(ref)
        if not entry.config.tty:
            raise InvalidArgument(f"container {entry.id} has no terminal")
        await asyncio.to_thread(conmon.send_control, entry.paths.bundle, kind=1, height=height, width=width)

    async def reopen_log(self, ref: str) -> None:
        """Make conmon reopen the log file (after an external rotation, the CRI's ReopenContainerLog)."""
        entry = self._running(ref)
        await asyncio.to_thread(conmon.send_control, entry.paths.bundle, kind=2)

    async def stats(self, ref: str) -> cgroups.Stats:
        """Counters of the container's cgroup (all zero when it is not running)."""
        entry = self._entry(ref)
        if entry.state.status is not Status.RUNNING:
            return cgroups.Stats()
        return await asyncio.to_thread(cgroups.ContainerCgroup(entry.state.cgroups_path).stats)

    async def top(self, ref: str, *, ps_args: str = top.DEFAULT_PS_ARGS) -> tuple[list[str], list[list[str]]]:
        """``ps`` rows (host view) of the container's processes."""
        entry = self._running(ref)
        pids = await asyncio.to_thread(cgroups.ContainerCgroup(entry.state.cgroups_path).pids)
        return await top.top(pids, ps_args=ps_args)

    async def update(self, ref: str, resources: Resources) -> Container:
        """Change a running container's limits (the CRI's UpdateContainerResources)."""
        entry = self._running(ref)
        try:
            doc = resources.to_oci()
        except SpecError as exc:
            raise InvalidArgument(str(exc)) from None
        path = entry.paths.bundle / f"resources-{secrets.token_hex(4)}.json"
        await asyncio.to_thread(write_json, path, doc)
        try:
            result = await oci.call(*self._base_argv(), "update", "--resources", os.fspath(path), entry.id)
        finally:
            path.unlink(missing_ok=True)
        if result.code != 0:
            raise RuntimeFailure(f"cannot update container {entry.id}: {result.message}")
        entry.config = replace(entry.config, resources=resources)
        await asyncio.to_thread(write_json, entry.paths.config, entry.config.to_dict())
        return entry.snapshot()

    # ------------------------------------------------------------------ persistence

    async def _save(self, entry: _Entry) -> None:
        await asyncio.to_thread(write_json, entry.paths.state, entry.state.to_dict())


def _check_traversable(path: Path, mapping: IdMapping) -> None:
    """A user-namespaced runtime mounts the rootfs as the mapped root, so every directory above it
    must let "others" through; say which one does not, rather than crun's bare EACCES."""
    for parent in (path, *path.parents):
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue
        if not st.st_mode & 0o001 and st.st_uid != mapping.to_host(0):
            raise RuntimeFailure(
                f"user namespaces need the engine root to be reachable by unprivileged users, "
                f"but {parent} has mode {st.st_mode & 0o7777:04o} (needs o+x)"
            )


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


async def _end_process(pid: int, container_id: str) -> None:
    """Wait briefly for this container's conmon to end by itself, then kill it."""
    if not conmon.is_conmon_of(pid, container_id):
        return
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
    try:
        try:
            async with asyncio.timeout(CONMON_EXIT_WAIT):
                await gone
        except TimeoutError:
            signals.pidfd_send_signal(fd, signals.SIGKILL)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
