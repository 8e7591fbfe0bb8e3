"""Protobuf message schemas for coordination/v1, discovery/v1, events/v1 and networking/v1.

Field numbers and types are those of the upstream generated.proto files (k8s.io/api and
k8s.io/apimachinery, release 1.33, a superset of what kubectl 1.32 writes); names are the JSON keys.
See fieldtypes.py for the type grammar. Data only: decode.py interprets it.
"""

from apiserver.protobuf.fieldtypes import INLINE, Schema

MESSAGES: Schema = {
    "coordination.Lease": {1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "coordination.LeaseSpec")},
    "discovery.EndpointSlice": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("endpoints", "[]discovery.Endpoint"),
        3: ("ports", "[]discovery.EndpointPort"), 4: ("addressType", "str!"),
    },
    "events.Event": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("eventTime", "meta.MicroTime"),
        3: ("series", "events.EventSeries"), 4: ("reportingController", "str"),
        5: ("reportingInstance", "str"), 6: ("action", "str"), 7: ("reason", "str"),
        8: ("regarding", "core.ObjectReference"), 9: ("related", "core.ObjectReference"), 10: ("note", "str"),
        11: ("type", "str"), 12: ("deprecatedSource", "core.EventSource"),
        13: ("deprecatedFirstTimestamp", "meta.Time"), 14: ("deprecatedLastTimestamp", "meta.Time"),
        15: ("deprecatedCount", "int"),
    },
    "networking.Ingress": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "networking.IngressSpec"),
        3: ("status", "networking.IngressStatus"),
    },
    "coordination.LeaseSpec": {
        1: ("holderIdentity", "*str"), 2: ("leaseDurationSeconds", "*int"),
        3: ("acquireTime", "meta.MicroTime"), 4: ("renewTime", "meta.MicroTime"),
        5: ("leaseTransitions", "*int"), 6: ("strategy", "*str"), 7: ("preferredHolder", "*str"),
    },
    "discovery.Endpoint": {
        1: ("addresses", "[]str"), 2: ("conditions", "discovery.EndpointConditions"), 3: ("hostname", "*str"),
        4: ("targetRef", "core.ObjectReference"), 5: ("deprecatedTopology", "map[str]str"),
        6: ("nodeName", "*str"), 7: ("zone", "*str"), 8: ("hints", "discovery.EndpointHints"),
    },
    "discovery.EndpointPort": {
        1: ("name", "*str"), 2: ("protocol", "*str"), 3: ("port", "*int"), 4: ("appProtocol", "*str"),
    },
    "events.EventSeries": {1: ("count", "int!"), 2: ("lastObservedTime", "meta.MicroTime")},
    "networking.IngressSpec": {
        1: ("defaultBackend", "networking.IngressBackend"), 2: ("tls", "[]networking.IngressTLS"),
        3: ("rules", "[]networking.IngressRule"), 4: ("ingressClassName", "*str"),
    },
    "networking.IngressStatus": {1: ("loadBalancer", "networking.IngressLoadBalancerStatus")},
    "discovery.EndpointConditions": {
        1: ("ready", "*bool"), 2: ("serving", "*bool"), 3: ("terminating", "*bool"),
    },
    "discovery.EndpointHints": {
        1: ("forZones", "[]discovery.ForZone"), 2: ("forNodes", "[]discovery.ForNode"),
    },
    "networking.IngressBackend": {
        3: ("resource", "core.TypedLocalObjectReference"), 4: ("service", "networking.IngressServiceBackend"),
    },
    "networking.IngressTLS": {1: ("hosts", "[]str"), 2: ("secretName", "str")},
    "networking.IngressRule": {1: ("host", "str"), 2: (INLINE, "networking.IngressRuleValue")},
    "networking.IngressLoadBalancerStatus": {1: ("ingress", "[]networking.IngressLoadBalancerIngress")},
    "discovery.ForZone": {1: ("name", "str!")},
    "discovery.ForNode": {1: ("name", "str!")},
    "networking.IngressServiceBackend": {1: ("name", "str!"), 2: ("port", "networking.ServiceBackendPort")},
    "networking.IngressRuleValue": {1: ("http", "networking.HTTPIngressRuleValue")},
    "networking.IngressLoadBalancerIngress": {
        1: ("ip", "str"), 2: ("hostname", "str"), 4: ("ports", "[]networking.IngressPortStatus"),
    },
    "networking.ServiceBackendPort": {1: ("name", "str"), 2: ("number", "int")},
    "networking.HTTPIngressRuleValue": {1: ("paths", "[]networking.HTTPIngressPath")},
    "networking.IngressPortStatus": {1: ("port", "int!"), 2: ("protocol", "str!"), 3: ("error", "*str")},
    "networking.HTTPIngressPath": {
        1: ("path", "str"), 2: ("backend", "networking.IngressBackend"), 3: ("pathType", "*str"),
    },
}
