"""The engine's interface to OCI runtimes: spec generation, crun/runc, conmon, cgroups, host set-up.

- ``spec``: ``make_spec(ContainerOptions)`` -> ``config.json`` (Docker's defaults; resources,
  user namespaces, privileged, namespace sharing, rlimits within the host's hard limits), built on
  ``capabilities`` (names, add/drop, what this host can grant), ``seccomp`` (the default profile,
  a deny-list keyed by capability), ``resources`` (``Resources`` -> ``linux.resources``) and
  ``idmap`` (``IdMapping``, idmapped layer mounts).
- ``oci``: the runtime CLI: ``run`` to completion (the builder's RUN steps), and ``state``,
  ``start``, ``kill``, ``delete``, ``call`` on long-lived containers.
- ``conmon``: starting the per-container shim (``create``), its exit files and control fifo.
- ``cgroups``: finding a container's cgroup on v1, hybrid and v2 hosts; usage, OOM kills, pids.
- ``hostsetup``: ``ensure_cgroups()``, the hybrid-layout fix crun needs on this kind of host.
- ``users``/``rootpath``: ``user[:group]`` resolved inside a rootfs, without leaving it.

The builder uses ``spec``/``oci.run``; ``engine.containers`` uses all of it.
"""
