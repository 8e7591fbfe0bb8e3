"""Containers of the engine: conmon-supervised OCI containers whose state lives on disk.

``manager.ContainerManager(root, store, *, runtime="crun", cgroup_parent="pinnace",
userns_base=100000)`` is the entry point; the Docker API, the CRI server and the CLI are built on
it. Every coroutine offloads blocking work (mounts, file writes, cgroup reads) to threads; ``get``
and ``list`` are plain lookups in memory. One conmon per container, no Python process per
container; containers keep running when the engine stops, and ``load()`` finds them again.

Lifecycle (all ``async`` unless marked):
- ``load() -> list[Container]``: call once at start-up: re-follows running containers, records the
  exit codes of those that ended while no engine ran, clears half-created leftovers.
- ``create(ContainerConfig) -> Container``: mounts the rootfs, writes the bundle, starts conmon,
  which runs ``crun create``; the process waits for ``start``. Unique names (``Conflict`` 409).
- ``start(ref) -> Container`` (an exited container starts afresh over the same rootfs),
  ``stop(ref, timeout=None)`` (stop signal: config, image ``StopSignal``, else SIGTERM; then
  SIGKILL after ``timeout``/``stop_timeout``/10 s), ``restart(ref, timeout=None)``,
  ``kill(ref, signal="SIGKILL")``, ``remove(ref, *, force=False)``, ``wait(ref) -> int``.
- ``get(ref) -> Container`` and ``list(*, all=False) -> list[Container]`` (sync). ``ref`` is an
  id, a name (with or without ``/``) or a unique id prefix. ``Container`` is a snapshot: ``id``,
  ``name``, ``config`` (the ContainerConfig), ``state`` (``record.State``: ``status``
  created/running/exited, ``pid``, ``conmon_pid``, ``created_at``/``started_at``/``finished_at``
  RFC 3339, ``exit_code``, ``oom_killed``, ``error``, ``restart_count``, ``image_id``), ``paths``.
- ``image_users(image_id) -> list[str]`` (sync): for the image store's ``in_use`` hook.

I/O of a container:
- ``logs(ref, *, follow=False, tail=None, since=None, until=None, stdout=True, stderr=True)``
  -> async iterator of ``logs.LogLine`` (``time_ns``, ``stream``, ``partial``, ``data``;
  ``render(timestamps=)`` gives Docker's bytes). The file is in the CRI format, rotated by size
  (``ContainerConfig.log_size_max``); ``reopen_log(ref)`` for external rotation.
- ``exec(ref, cmd, *, tty=False, env=(), user=None, workdir=None, stdin=None) -> exec.ExecResult``
  (``exit_code``, ``stdout``, ``stderr``, ``output``); a command that cannot start raises
  ``InvalidArgument`` ('exec: "x": executable file not found in $PATH').
- ``exec_stream(ref, cmd, *, tty=False, stdin=False, env=(), user=None, workdir=None, size=None)
  -> exec.ExecSession`` and ``attach(ref) -> attach.AttachSession``: both ``stdio.StdioSession``
  (``read() -> ("stdout"|"stderr", bytes) | None``, ``write``, ``close_stdin``, ``resize``,
  ``close``); ExecSession adds ``wait() -> int`` and ``error``. ``resize(ref, height=, width=)``
  for a TTY container.
- ``stats(ref) -> runtime.cgroups.Stats`` (cpu ns, memory usage/limit/cache, pids, OOM kills; raw
  counters, v1 and v2), ``top(ref, *, ps_args="-ef") -> (titles, rows)``,
  ``update(ref, Resources)`` (live limits).
- ``close()``: stop following exits (containers keep running), before handing over to a new manager.

Errors (``errors``): ``ContainerError`` (an ``ImageError``, one line, ``status``) with ``NotFound``
404, ``Conflict`` 409 (``NotRunning``), ``InvalidArgument`` 400, ``RuntimeFailure`` 500. A failed
create leaves nothing behind: no directory, mount, cgroup, runtime record or conmon.

Modules: ``config`` (ContainerConfig, BindMount, PortMapping), ``record`` (State, Container),
``layout`` (paths), ``names`` (names, signals), ``specgen`` (config + image -> runtime options),
``rootfs`` (overlay + idmapped layers), ``logs``, ``exec``, ``attach``, ``stdio``, ``top``,
``manager``. Underneath, ``engine.runtime``: ``spec``, ``seccomp``, ``capabilities``,
``resources``, ``idmap``, ``cgroups``, ``conmon``, ``oci``.
"""
