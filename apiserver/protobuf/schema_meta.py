"""Protobuf message schemas for meta/v1, runtime, util/intstr and api/resource (k8s.io/apimachinery).

Field numbers and types are those of the upstream generated.proto files (k8s.io/api and
k8s.io/apimachinery, release 1.33, a superset of what kubectl 1.32 writes); names are the JSON keys.
See fieldtypes.py for the type grammar. Data only: decode.py interprets it.
"""

from apiserver.protobuf.fieldtypes import Schema

MESSAGES: Schema = {
    "meta.DeleteOptions": {
        1: ("gracePeriodSeconds", "*int"), 2: ("preconditions", "meta.Preconditions"),
        3: ("orphanDependents", "*bool"), 4: ("propagationPolicy", "*str"), 5: ("dryRun", "[]str"),
        6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "*bool"),
    },
    "meta.ObjectMeta": {
        1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"), 4: ("selfLink", "str"),
        5: ("uid", "str"), 6: ("resourceVersion", "str"), 7: ("generation", "int"),
        8: ("creationTimestamp", "meta.Time"), 9: ("deletionTimestamp", "meta.Time"),
        10: ("deletionGracePeriodSeconds", "*int"), 11: ("labels", "map[str]str"),
        12: ("annotations", "map[str]str"), 13: ("ownerReferences", "[]meta.OwnerReference"),
        14: ("finalizers", "[]str"), 17: ("managedFields", "[]meta.ManagedFieldsEntry"),
    },
    "meta.Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "meta.MicroTime": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "meta.Preconditions": {1: ("uid", "*str"), 2: ("resourceVersion", "*str")},
    "meta.OwnerReference": {
        1: ("kind", "str!"), 3: ("name", "str!"), 4: ("uid", "str!"), 5: ("apiVersion", "str!"),
        6: ("controller", "*bool"), 7: ("blockOwnerDeletion", "*bool"),
    },
    "meta.ManagedFieldsEntry": {
        1: ("manager", "str"), 2: ("operation", "str"), 3: ("apiVersion", "str"), 4: ("time", "meta.Time"),
        6: ("fieldsType", "str"), 7: ("fieldsV1", "meta.FieldsV1"), 8: ("subresource", "str"),
    },
    "meta.Condition": {
        1: ("type", "str!"), 2: ("status", "str!"), 3: ("observedGeneration", "int"),
        4: ("lastTransitionTime", "meta.Time"), 5: ("reason", "str!"), 6: ("message", "str!"),
    },
    "resource.Quantity": {1: ("string", "*str")},
    "meta.LabelSelector": {
        1: ("matchLabels", "map[str]str"), 2: ("matchExpressions", "[]meta.LabelSelectorRequirement"),
    },
    "intstr.IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "str")},
    "meta.FieldsV1": {1: ("Raw", "json")},
    "meta.LabelSelectorRequirement": {1: ("key", "str!"), 2: ("operator", "str!"), 3: ("values", "[]str")},
    "meta.FieldSelectorRequirement": {1: ("key", "str!"), 2: ("operator", "str!"), 3: ("values", "[]str")},
    "runtime.Unknown": {
        1: ("typeMeta", "runtime.TypeMeta"), 2: ("raw", "raw"), 3: ("contentEncoding", "str"),
        4: ("contentType", "str"),
    },
    "runtime.TypeMeta": {1: ("apiVersion", "str"), 2: ("kind", "str")},
    "runtime.RawExtension": {1: ("raw", "json")},
}
