"""Protobuf message schemas for authentication/v1, authorization/v1 and rbac/v1.

Field numbers and types are those of the upstream generated.proto files (k8s.io/api and
k8s.io/apimachinery, release 1.33, a superset of what kubectl 1.32 writes); names are the JSON keys.
See fieldtypes.py for the type grammar. Data only: decode.py interprets it.
"""

from apiserver.protobuf.fieldtypes import Schema

MESSAGES: Schema = {
    "authorization.SelfSubjectAccessReview": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "authorization.SelfSubjectAccessReviewSpec"),
        3: ("status", "authorization.SubjectAccessReviewStatus"),
    },
    "authorization.SelfSubjectRulesReview": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "authorization.SelfSubjectRulesReviewSpec"),
        3: ("status", "authorization.SubjectRulesReviewStatus"),
    },
    "authentication.SelfSubjectReview": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("status", "authentication.SelfSubjectReviewStatus"),
    },
    "authentication.TokenRequest": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "authentication.TokenRequestSpec"),
        3: ("status", "authentication.TokenRequestStatus"),
    },
    "rbac.Role": {1: ("metadata", "meta.ObjectMeta"), 2: ("rules", "[]rbac.PolicyRule")},
    "rbac.ClusterRole": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("rules", "[]rbac.PolicyRule"),
        3: ("aggregationRule", "rbac.AggregationRule"),
    },
    "rbac.RoleBinding": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("subjects", "[]rbac.Subject"), 3: ("roleRef", "rbac.RoleRef"),
    },
    "rbac.ClusterRoleBinding": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("subjects", "[]rbac.Subject"), 3: ("roleRef", "rbac.RoleRef"),
    },
    "authorization.SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "authorization.ResourceAttributes"),
        2: ("nonResourceAttributes", "authorization.NonResourceAttributes"),
    },
    "authorization.SubjectAccessReviewStatus": {
        1: ("allowed", "bool!"), 2: ("reason", "str"), 3: ("evaluationError", "str"), 4: ("denied", "bool"),
    },
    "authorization.SelfSubjectRulesReviewSpec": {1: ("namespace", "str")},
    "authorization.SubjectRulesReviewStatus": {
        1: ("resourceRules", "[]authorization.ResourceRule"),
        2: ("nonResourceRules", "[]authorization.NonResourceRule"), 3: ("incomplete", "bool!"),
        4: ("evaluationError", "str"),
    },
    "authentication.SelfSubjectReviewStatus": {1: ("userInfo", "authentication.UserInfo")},
    "authentication.TokenRequestSpec": {
        1: ("audiences", "[]str"), 3: ("boundObjectRef", "authentication.BoundObjectReference"),
        4: ("expirationSeconds", "*int"),
    },
    "authentication.TokenRequestStatus": {1: ("token", "str!"), 2: ("expirationTimestamp", "meta.Time")},
    "rbac.PolicyRule": {
        1: ("verbs", "[]str"), 2: ("apiGroups", "[]str"), 3: ("resources", "[]str"),
        4: ("resourceNames", "[]str"), 5: ("nonResourceURLs", "[]str"),
    },
    "rbac.AggregationRule": {1: ("clusterRoleSelectors", "[]meta.LabelSelector")},
    "rbac.Subject": {1: ("kind", "str!"), 2: ("apiGroup", "str"), 3: ("name", "str!"), 4: ("namespace", "str")},
    "rbac.RoleRef": {1: ("apiGroup", "str!"), 2: ("kind", "str!"), 3: ("name", "str!")},
    "authorization.ResourceAttributes": {
        1: ("namespace", "str"), 2: ("verb", "str"), 3: ("group", "str"), 4: ("version", "str"),
        5: ("resource", "str"), 6: ("subresource", "str"), 7: ("name", "str"),
        8: ("fieldSelector", "authorization.FieldSelectorAttributes"),
        9: ("labelSelector", "authorization.LabelSelectorAttributes"),
    },
    "authorization.NonResourceAttributes": {1: ("path", "str"), 2: ("verb", "str")},
    "authorization.ResourceRule": {
        1: ("verbs", "[]str"), 2: ("apiGroups", "[]str"), 3: ("resources", "[]str"),
        4: ("resourceNames", "[]str"),
    },
    "authorization.NonResourceRule": {1: ("verbs", "[]str"), 2: ("nonResourceURLs", "[]str")},
    "authentication.UserInfo": {
        1: ("username", "str"), 2: ("uid", "str"), 3: ("groups", "[]str"),
        4: ("extra", "map[str]authentication.ExtraValue"),
    },
    "authentication.BoundObjectReference": {
        1: ("kind", "str"), 2: ("apiVersion", "str"), 3: ("name", "str"), 4: ("uid", "str"),
    },
    "authorization.FieldSelectorAttributes": {
        1: ("rawSelector", "str"), 2: ("requirements", "[]meta.FieldSelectorRequirement"),
    },
    "authorization.LabelSelectorAttributes": {
        1: ("rawSelector", "str"), 2: ("requirements", "[]meta.LabelSelectorRequirement"),
    },
    "authentication.ExtraValue": {1: ("items", "[]str")},
}
