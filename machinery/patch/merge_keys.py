"""How the lists of the built-in types merge, for strategic merge patch and server-side apply.

Kubernetes declares this with struct tags (``patchStrategy``/``patchMergeKey`` for strategic merge
patch, ``listType``/``listMapKeys`` for server-side apply). Our objects are plain dicts, so this
table keys each rule by the *trailing field names* of the list's path from the object root (list
indices dropped): ``("containers", "ports")`` is any container's port list, wherever the pod spec
sits (Pod, Deployment template, CronJob job template). The longest matching suffix wins; a rule may
be limited to some kinds. Lists without a rule are atomic: a patch replaces them whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ListRule:
    """Merge behaviour of one list field."""

    suffix: tuple[str, ...]
    #: strategic-merge-patch merge key; None for a list of scalars merged as a set
    key: str | None
    #: server-side-apply map keys (``listMapKeys``); defaults to ``(key,)``
    map_keys: tuple[str, ...] = ()
    #: kinds the rule is limited to; empty means every kind
    kinds: frozenset[str] = frozenset()

    @property
    def apply_keys(self) -> tuple[str, ...]:
        if self.map_keys:
            return self.map_keys
        return (self.key,) if self.key else ()


_POD_KINDS = frozenset({"Pod", "PodTemplate", "Deployment", "ReplicaSet", "DaemonSet", "StatefulSet",
                        "Job", "CronJob", "ReplicationController"})

LIST_RULES: tuple[ListRule, ...] = (
    # metadata
    ListRule(("metadata", "finalizers"), None),
    ListRule(("metadata", "ownerReferences"), "uid"),
    # pod spec
    ListRule(("containers",), "name", kinds=_POD_KINDS),
    ListRule(("initContainers",), "name", kinds=_POD_KINDS),
    ListRule(("ephemeralContainers",), "name", kinds=_POD_KINDS),
    ListRule(("containers", "ports"), "containerPort", ("containerPort", "protocol"), kinds=_POD_KINDS),
    ListRule(("initContainers", "ports"), "containerPort", ("containerPort", "protocol"), kinds=_POD_KINDS),
    ListRule(("env",), "name", kinds=_POD_KINDS),
    ListRule(("volumeMounts",), "mountPath", kinds=_POD_KINDS),
    ListRule(("volumeDevices",), "devicePath", kinds=_POD_KINDS),
    ListRule(("volumes",), "name", kinds=_POD_KINDS),
    ListRule(("imagePullSecrets",), "name"),
    ListRule(("hostAliases",), "ip", kinds=_POD_KINDS),
    ListRule(("topologySpreadConstraints",), "topologyKey", ("topologyKey", "whenUnsatisfiable"),
             kinds=_POD_KINDS),
    ListRule(("resourceClaims",), "name", kinds=_POD_KINDS),
    ListRule(("status", "podIPs"), "ip", kinds=frozenset({"Pod"})),
    ListRule(("status", "hostIPs"), "ip", kinds=frozenset({"Pod"})),
    # status conditions of every kind
    ListRule(("status", "conditions"), "type"),
    # services
    ListRule(("spec", "ports"), "port", ("port", "protocol"), kinds=frozenset({"Service"})),
    # nodes
    ListRule(("spec", "taints"), "key", ("key", "effect"), kinds=frozenset({"Node"})),
    ListRule(("status", "addresses"), "type", kinds=frozenset({"Node"})),
    # service accounts
    ListRule(("secrets",), "name", kinds=frozenset({"ServiceAccount"})),
)

#: paths (same suffix convention) whose maps carry ``patchStrategy: retainKeys``
RETAIN_KEYS: tuple[tuple[str, ...], ...] = (
    ("spec", "strategy"),
    ("spec", "updateStrategy"),
    ("volumes",),
)


def _matches(suffix: tuple[str, ...], path: Sequence[str]) -> bool:
    n = len(suffix)
    return len(path) >= n and tuple(path[-n:]) == suffix


def list_rule(path: Sequence[str], kind: str | None = None) -> ListRule | None:
    """The rule of the list at ``path`` (field names from the root, list indices dropped)."""
    best: ListRule | None = None
    for rule in LIST_RULES:
        if rule.kinds and kind is not None and kind not in rule.kinds:
            continue
        if _matches(rule.suffix, path) and (best is None or len(rule.suffix) > len(best.suffix)):
            best = rule
    return best


def retains_keys(path: Sequence[str]) -> bool:
    """Whether the map at ``path`` drops the fields a patch leaves out (``$retainKeys``)."""
    return any(_matches(suffix, path) for suffix in RETAIN_KEYS)
