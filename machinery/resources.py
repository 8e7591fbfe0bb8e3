"""The built-in REST resources components address, defined once.

Every controller, the kubelet, the proxy and the DNS refer to these by name instead of each spelling
out group, version, plural and scope again.
"""

from __future__ import annotations

from machinery.client import Resource

PODS = Resource("", "v1", "pods", True)
NODES = Resource("", "v1", "nodes", False)
NAMESPACES = Resource("", "v1", "namespaces", False)
SERVICES = Resource("", "v1", "services", True)
CONFIGMAPS = Resource("", "v1", "configmaps", True)
SECRETS = Resource("", "v1", "secrets", True)
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", True)
REPLICASETS = Resource("apps", "v1", "replicasets", True)
DAEMONSETS = Resource("apps", "v1", "daemonsets", True)
STATEFULSETS = Resource("apps", "v1", "statefulsets", True)
CONTROLLER_REVISIONS = Resource("apps", "v1", "controllerrevisions", True)
PDBS = Resource("policy", "v1", "poddisruptionbudgets", True)
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", True)
