"""The message tables of every API group, merged, and which message each top-level kind uses.

Adding a kind is one KINDS entry (plus its messages in the group's schema module). The key
``("*", kind)`` matches any apiVersion: clients send DeleteOptions under the group-version of the
resource they delete.
"""

from apiserver.protobuf import schema_apps, schema_auth, schema_core, schema_meta, schema_other
from apiserver.protobuf.fieldtypes import Schema

_MODULES = (schema_meta, schema_core, schema_apps, schema_auth, schema_other)

MESSAGES: Schema = {name: fields for module in _MODULES for name, fields in module.MESSAGES.items()}

KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "core.Namespace",
    ("v1", "ConfigMap"): "core.ConfigMap",
    ("v1", "Secret"): "core.Secret",
    ("v1", "Service"): "core.Service",
    ("v1", "Pod"): "core.Pod",
    ("v1", "ServiceAccount"): "core.ServiceAccount",
    ("v1", "Endpoints"): "core.Endpoints",
    ("v1", "Event"): "core.Event",
    ("v1", "Node"): "core.Node",
    ("v1", "PersistentVolumeClaim"): "core.PersistentVolumeClaim",
    ("v1", "ResourceQuota"): "core.ResourceQuota",
    ("v1", "LimitRange"): "core.LimitRange",
    ("v1", "Binding"): "core.Binding",
    ("apps/v1", "Deployment"): "apps.Deployment",
    ("apps/v1", "ReplicaSet"): "apps.ReplicaSet",
    ("apps/v1", "DaemonSet"): "apps.DaemonSet",
    ("apps/v1", "StatefulSet"): "apps.StatefulSet",
    ("batch/v1", "Job"): "batch.Job",
    ("batch/v1", "CronJob"): "batch.CronJob",
    ("autoscaling/v1", "Scale"): "autoscaling.Scale",
    ("policy/v1", "PodDisruptionBudget"): "policy.PodDisruptionBudget",
    ("policy/v1", "Eviction"): "policy.Eviction",
    ("scheduling.k8s.io/v1", "PriorityClass"): "scheduling.PriorityClass",
    ("coordination.k8s.io/v1", "Lease"): "coordination.Lease",
    ("discovery.k8s.io/v1", "EndpointSlice"): "discovery.EndpointSlice",
    ("events.k8s.io/v1", "Event"): "events.Event",
    ("networking.k8s.io/v1", "Ingress"): "networking.Ingress",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "authorization.SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "authorization.SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "authentication.SelfSubjectReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "authentication.TokenRequest",
    ("rbac.authorization.k8s.io/v1", "Role"): "rbac.Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "rbac.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rbac.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "rbac.ClusterRoleBinding",
    ("*", "DeleteOptions"): "meta.DeleteOptions",
}
