"""The engine's interface to OCI runtimes: runtime-spec generation, running crun/runc, host set-up.

``spec`` turns a small record of options into a ``config.json``; ``oci`` runs a bundle to
completion; ``hostsetup`` makes the host's cgroup layout acceptable to crun. The builder's RUN
steps use all three today; containers under conmon (next issue) will reuse ``spec`` and ``hostsetup``.
"""
