"""The engine's CRI v1 server: what lets the kubelet (or crictl) drive the engine as its runtime.

``server.CRIServer(store=, containers=, socket_path=, ...)`` serves ``runtime.v1.RuntimeService``
and ``runtime.v1.ImageService`` (upstream names and field numbers, ``proto/api.proto``) over
gRPC on a unix socket; ``python -m engine.cri.server`` runs it alone. Layers: ``images`` and
``containers`` underneath, nothing above but the daemon/CLI that start it.

Modules:
- ``runtime_service`` / ``image_service``: the servicers; ``servicer.translate_errors`` turns any
  exception into a gRPC status via ``errors`` (NOT_FOUND, INVALID_ARGUMENT, ...).
- ``sandboxes``: pod sandboxes (state under ``<root>/cri/sandboxes/<id>``), built from
  ``namespaces`` (net/IPC/UTS pinned by bind mounts under /run/pinnace), ``cni`` (plugins per the
  CNI spec 1.0) and ``podfiles`` (resolv.conf, hostname, hosts).
- ``container_config``: a CRI ContainerConfig in a sandbox -> the engine's ContainerConfig (CRI
  metadata rides along in ``extra["cri"]``); ``convert``: engine records -> CRI messages.
- ``streaming`` (+ ``netdial``): the Exec/Attach/PortForward URLs, WebSocket channel protocol.
- ``filters``, ``fsusage``, ``logfiles``: id/label matching, disk usage, the CRI log path link.
"""
