"""The kubelet's HTTPS streaming server (logs, exec, attach, port-forward); see ``app``."""

from kubelet.server.app import KubeletServer

__all__ = ["KubeletServer"]
