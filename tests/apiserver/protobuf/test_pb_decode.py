"""decode_request: recorded kubectl bodies, the JSON-form rules, and malformed input."""

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protobuf_encoder_for_tests import MAGIC, entry, envelope, f, key, msg, varint

from apiserver.protobuf import ProtobufError, decode_request

EXAMPLES = Path("/work/shared/reference/kubectl-examples")


def example(name: str) -> bytes:
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"recorded body {path} is missing")
    return path.read_bytes()


def meta(name: str, *extra: bytes) -> bytes:
    """ObjectMeta the way Go writes it: every non-pointer field present, zero creationTimestamp."""
    return msg(f(1, name), f(2, ""), f(3, ""), f(4, ""), f(5, ""), f(6, ""), f(7, 0), f(8, b""), *extra)


# -- recorded kubectl 1.32 bodies (kubectl-wire.md §6.16, §6.17) ---------------------------------


def test_recorded_create_namespace() -> None:
    assert decode_request(example("api_v1_namespaces.pb")) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "dev"},
        "spec": {},
        "status": {},
    }


def test_recorded_self_subject_access_review() -> None:
    obj = decode_request(example("apis_authorization.k8s.io_v1_selfsubjectaccessreviews.pb"))
    assert (obj["apiVersion"], obj["kind"]) == ("authorization.k8s.io/v1", "SelfSubjectAccessReview")
    attributes = {"namespace": "default", "verb": "create", "resource": "pods"}
    assert obj["spec"] == {"resourceAttributes": attributes}
    assert obj["status"] == {"allowed": False}  # allowed has no omitempty, denied has


# -- JSON-form rules ------------------------------------------------------------------------------


def test_secret_bytes_become_base64_and_maps_keep_empty_values() -> None:
    raw = msg(
        f(1, meta("s")),
        entry(2, "a", b"\x00\xffb"),
        entry(2, "empty", b""),
        f(3, "Opaque"),
        entry(4, "plain", ""),
    )
    obj = decode_request(envelope("v1", "Secret", raw))
    assert obj["data"] == {"a": base64.b64encode(b"\x00\xffb").decode(), "empty": ""}
    assert obj["stringData"] == {"plain": ""}
    assert obj["type"] == "Opaque"
    assert obj["metadata"] == {"name": "s"}


def test_configmap_binary_data_and_immutable_false() -> None:
    raw = msg(f(1, meta("c")), entry(2, "k", "v"), entry(3, "bin", b"\x01\x02"), f(4, False))
    obj = decode_request(envelope("v1", "ConfigMap", raw))
    assert obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"k": "v"},
        "binaryData": {"bin": "AQI="},
        "immutable": False,
    }


def test_times_int_or_string_quantities_and_negative_ints() -> None:
    created = msg(f(1, 1704067200))  # 2024-01-01T00:00:00Z
    port_name = msg(f(1, 1), f(2, 0), f(3, "http"))
    limits = entry(1, "cpu", msg(f(1, "500m")))
    container = msg(
        f(1, "c"),
        f(2, "nginx"),
        f(6, msg(f(1, "http"), f(2, 0), f(3, 80), f(4, "TCP"), f(5, ""))),  # ports[]
        f(8, msg(limits)),  # resources.limits
        f(10, msg(f(1, msg(f(2, msg(f(1, "/healthz"), f(2, port_name))))), f(2, 5))),  # liveness probe
    )
    spec = msg(f(2, container), f(4, 30), f(5, -1))  # activeDeadlineSeconds=-1 (negative int64)
    raw = msg(f(1, meta("p", f(8, created) + f(9, msg(f(1, 1704067201), f(2, 500_000_000))))), f(2, spec))
    obj = decode_request(envelope("v1", "Pod", raw))
    assert obj["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"
    assert obj["metadata"]["deletionTimestamp"] == "2024-01-01T00:00:01Z"  # metav1.Time drops fractions
    (c,) = obj["spec"]["containers"]
    assert c["ports"] == [{"name": "http", "containerPort": 80, "protocol": "TCP"}]
    assert c["resources"] == {"limits": {"cpu": "500m"}}
    # ProbeHandler is inlined into Probe; the IntOrString port came as a string
    assert c["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 5}
    assert obj["spec"]["activeDeadlineSeconds"] == -1
    assert obj["spec"]["terminationGracePeriodSeconds"] == 30


def test_inline_volume_source_and_local_object_reference() -> None:
    empty_dir = msg(f(1, "empty"), f(2, msg(f(2, b""))))  # Volume{name, VolumeSource{emptyDir: {}}}
    config_map = msg(f(1, "cfg"), f(2, msg(f(19, msg(f(1, msg(f(1, "settings"))), f(3, 420))))))
    spec = msg(f(1, empty_dir), f(1, config_map), f(2, msg(f(1, "c"), f(2, "img"))))
    obj = decode_request(envelope("v1", "Pod", msg(f(1, meta("p")), f(2, spec))))
    assert obj["spec"]["volumes"] == [
        {"name": "empty", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "settings", "defaultMode": 420}},
    ]


def test_pointer_strings_keep_empty_values() -> None:
    pvc_spec = msg(f(2, msg()), f(3, ""), f(5, ""))  # volumeName "" (string), storageClassName "" (*string)
    obj = decode_request(envelope("v1", "PersistentVolumeClaim", msg(f(1, meta("claim")), f(2, pvc_spec))))
    assert obj["spec"] == {"resources": {}, "storageClassName": ""}


def test_repeated_strings_keep_empty_entries() -> None:
    rule = msg(f(1, "get"), f(2, ""), f(3, "pods"))  # verbs, apiGroups [""] = core group
    obj = decode_request(envelope("rbac.authorization.k8s.io/v1", "Role", msg(f(1, meta("r")), f(2, rule))))
    assert obj["rules"] == [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]


def test_micro_time_and_zero_time() -> None:
    spec = msg(f(1, "me"), f(2, 15), f(3, msg(f(1, 1704067200), f(2, 123456789))), f(4, b""))
    obj = decode_request(envelope("coordination.k8s.io/v1", "Lease", msg(f(1, meta("l")), f(2, spec))))
    assert obj["spec"] == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": "2024-01-01T00:00:00.123456Z",
    }


def test_int_or_string_as_int_and_packed_repeated_ints() -> None:
    pdb_spec = msg(f(1, msg(f(1, 0), f(2, 2), f(3, ""))))
    obj = decode_request(envelope("policy/v1", "PodDisruptionBudget", msg(f(1, meta("b")), f(2, pdb_spec))))
    assert obj["spec"] == {"minAvailable": 2}
    security = msg(f(4, varint(5) + varint(6)), f(4, 7))  # supplementalGroups packed, then unpacked
    pod = decode_request(envelope("v1", "Pod", msg(f(2, msg(f(14, security))))))
    assert pod["spec"]["securityContext"] == {"supplementalGroups": [5, 6, 7]}


def test_managed_fields_json_and_extra_values() -> None:
    managed = msg(f(1, "kubectl"), f(2, "Update"), f(6, "FieldsV1"), f(7, msg(f(1, b'{"f:spec":{}}'))))
    user = msg(f(1, "alice"), f(3, "devs"), entry(4, "scopes", msg(f(1, "a"), f(1, "b"))))
    body = envelope(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        msg(f(1, meta("", f(17, managed))), f(2, msg(f(1, user)))),
    )
    obj = decode_request(body)
    assert obj["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}
    ]
    user_info = {"username": "alice", "groups": ["devs"], "extra": {"scopes": ["a", "b"]}}
    assert obj["status"] == {"userInfo": user_info}


def test_unknown_fields_are_skipped() -> None:
    raw = msg(f(1, meta("dev")), f(99, "future"), key(98, 5) + b"\x00\x00\x00\x00", f(2, msg(f(77, 1))))
    obj = decode_request(envelope("v1", "Namespace", raw))
    expected_meta = {"name": "dev"}
    assert obj == {"apiVersion": "v1", "kind": "Namespace", "metadata": expected_meta, "spec": {}}


def test_delete_options_under_any_group_version() -> None:
    raw = msg(f(1, 0), f(4, "Foreground"), f(5, "All"))
    for api_version in ("v1", "apps/v1", "meta.k8s.io/v1"):
        obj = decode_request(envelope(api_version, "DeleteOptions", raw))
        assert obj == {
            "apiVersion": api_version,
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        }


def test_accepts_bytearray_and_memoryview() -> None:
    body = envelope("v1", "Namespace", msg(f(1, meta("x"))))
    assert decode_request(bytearray(body)) == decode_request(memoryview(body)) == decode_request(body)


# -- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "missing the k8s"),
        (b"{\"kind\":\"Namespace\"}", "missing the k8s"),
        (b"k8s\x01" + f(1, b""), "missing the k8s"),
        (MAGIC + b"\x0a\x80", "truncated varint"),
        (envelope("v1", "Frobnicator", b""), "kind 'Frobnicator' in 'v1'"),
        (envelope("apps/v1", "Namespace", b""), "kind 'Namespace' in 'apps/v1'"),
        (MAGIC + f(2, b""), "kind '' in ''"),
        (envelope("v1", "Namespace", f(1, 5)), r"core.Namespace field 1 \(metadata\): wire type varint"),
        (envelope("v1", "Namespace", f(1, f(7, "0"))), r"field 7 \(generation\): .* expected varint"),
        (envelope("v1", "Pod", f(2, f(2, f(3, 1)))), r"core.Container field 3 \(command\): wire type varint"),
        (envelope("v1", "Secret", f(2, f(1, 7))), "map entry field 1: wire type varint"),
        (envelope("v1", "Namespace", f(1, f(1, b"\xff\xfe"))), "invalid UTF-8"),
        (envelope("v1", "Namespace", f(1, f(1, "x")[:-1])), "truncated"),
        (envelope("v1", "Namespace", b"", content_encoding="gzip"), "contentEncoding 'gzip'"),
        (envelope("v1", "Namespace", f(1, f(17, f(7, f(1, b"{not json"))))), "embedded JSON is invalid"),
        (envelope("v1", "Namespace", f(1, f(8, f(1, 10**15)))), "timestamp out of range"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode_request(body)


def test_rejects_non_bytes() -> None:
    with pytest.raises(ProtobufError, match="must be bytes"):
        decode_request("k8s\x00")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_payloads_never_crash(raw: bytes) -> None:
    """Whatever follows a valid envelope header, the answer is a dict or a ProtobufError."""
    for body in (MAGIC + raw, envelope("v1", "Pod", raw), envelope("apps/v1", "Deployment", raw)):
        try:
            obj = decode_request(body)
        except ProtobufError:
            continue
        orjson.dumps(obj)  # always JSON-serialisable


labels = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=4)


@settings(max_examples=100, deadline=None)
@given(
    name=st.text(min_size=1, max_size=20),
    generation=st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    labels=labels,
    finalizers=st.lists(st.text(max_size=8), max_size=3),
    seconds=st.integers(min_value=-62135596799, max_value=253402300799).filter(bool),  # years 1..9999
)
def test_object_meta_round_trip(
    name: str, generation: int, labels: dict, finalizers: list, seconds: int
) -> None:
    raw_meta = msg(
        f(1, name),
        f(7, generation),
        f(8, msg(f(1, seconds))),
        *(entry(11, k, v) for k, v in labels.items()),
        *(f(14, item) for item in finalizers),
    )
    obj = decode_request(envelope("v1", "ConfigMap", msg(f(1, raw_meta))))
    expected: dict = {"name": name}
    if generation:  # int64 with omitempty: Go's JSON leaves 0 out
        expected["generation"] = generation
    expected["creationTimestamp"] = obj["metadata"]["creationTimestamp"]
    if labels:
        expected["labels"] = labels
    if finalizers:
        expected["finalizers"] = finalizers
    assert obj["metadata"] == expected
    stamp = datetime.fromisoformat(expected["creationTimestamp"])
    assert stamp - datetime(1970, 1, 1, tzinfo=UTC) == timedelta(seconds=seconds)
