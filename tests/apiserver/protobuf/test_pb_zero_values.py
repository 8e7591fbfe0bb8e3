"""Zero values in decoded bodies follow Go's JSON encoding of the struct, not the wire.

Go's protobuf code writes every non-pointer field, zero or not; the JSON kubectl would otherwise
send leaves the zeros of ``omitempty`` fields out, keeps the zeros of fields without omitempty,
and keeps pointer fields whenever they are set (they are on the wire only then).
"""

import pytest
from protobuf_encoder_for_tests import envelope, f, msg

from apiserver.protobuf import decode, decode_request
from apiserver.protobuf.schemas import MESSAGES


def pod_with(spec: bytes) -> dict:
    return decode_request(envelope("v1", "Pod", msg(f(1, msg(f(1, "p"))), f(2, spec))))


def container_with(*fields: bytes) -> dict:
    (container,) = pod_with(f(2, msg(f(1, "c"), *fields)))["spec"]["containers"]
    return container


def test_container_port_drops_host_port_zero_but_keeps_container_port_zero() -> None:
    # hostPort: int32 omitempty; containerPort: int32 without omitempty; protocol "" omitempty
    assert container_with(f(6, msg(f(2, 0), f(3, 80), f(4, ""))))["ports"] == [{"containerPort": 80}]
    assert container_with(f(6, msg(f(2, 0), f(3, 0))))["ports"] == [{"containerPort": 0}]
    assert container_with(f(6, msg(f(2, 8080), f(3, 80))))["ports"] == [{"hostPort": 8080, "containerPort": 80}]


def test_deployment_spec_pointer_zeros_are_kept_plain_zeros_dropped() -> None:
    spec = msg(f(1, 0), f(5, 0), f(6, 0), f(7, False), f(9, 0))
    obj = decode_request(envelope("apps/v1", "Deployment", msg(f(1, msg(f(1, "d"))), f(2, spec))))
    # replicas, revisionHistoryLimit, progressDeadlineSeconds are *int32; minReadySeconds, paused are not
    assert obj["spec"] == {"replicas": 0, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 0}


def test_job_spec_pointer_bools_and_ints_keep_zero() -> None:
    spec = msg(f(1, 0), f(7, 0), f(10, False), f(5, False))
    obj = decode_request(envelope("batch/v1", "Job", msg(f(1, msg(f(1, "j"))), f(2, spec))))
    assert obj["spec"] == {"parallelism": 0, "backoffLimit": 0, "suspend": False, "manualSelector": False}


def test_pod_spec_pointer_zeros_and_plain_bools() -> None:
    security = msg(f(2, 0), f(3, False), f(5, 0))  # runAsUser, runAsNonRoot, fsGroup: pointers
    spec = msg(f(4, 0), f(11, False), f(12, True), f(14, security), f(21, False))
    obj = pod_with(spec)["spec"]
    assert obj["terminationGracePeriodSeconds"] == 0
    assert obj["automountServiceAccountToken"] is False
    assert obj["securityContext"] == {"runAsUser": 0, "runAsNonRoot": False, "fsGroup": 0}
    assert "hostNetwork" not in obj  # plain bool, false, omitempty
    assert obj["hostPID"] is True


def test_strings_without_omitempty_keep_empty_values() -> None:
    spec = msg(f(14, msg(f(7, msg(f(1, "net.core.somaxconn"), f(2, ""))))))  # securityContext.sysctls
    assert pod_with(spec)["spec"]["securityContext"]["sysctls"] == [{"name": "net.core.somaxconn", "value": ""}]


def test_non_omitempty_status_counters_keep_zero() -> None:
    status = msg(f(1, 0), f(3, 0), f(4, 0), f(5, 0), f(6, 0))
    raw = msg(f(1, msg(f(1, "b"))), f(2, msg()), f(3, status))
    obj = decode_request(envelope("policy/v1", "PodDisruptionBudget", raw))
    # observedGeneration has omitempty; the four counters do not
    assert obj["status"] == {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}


@pytest.mark.parametrize(
    ("spec", "zero", "kept"),
    [
        ("int", 0, False), ("int!", 0, True), ("*int", 0, True),
        ("bool", 0, False), ("bool!", 0, True), ("*bool", 0, True),
        ("str", b"", False), ("str!", b"", True), ("*str", b"", True),
        ("bytes", b"", True), ("json", b"{}", True),
    ],
)
def test_type_grammar_zero_rules(spec: str, zero: int | bytes, kept: bool) -> None:
    compiled = decode.compile_type(spec)
    value = decode._value(compiled, zero)
    assert bool(value) is False
    assert compiled.keep_zero is kept


@pytest.mark.parametrize("spec", ["*bytes", "json!", "*raw", "*core.Pod", "**int", "int!!", "*[]str"])
def test_markers_only_apply_to_omittable_scalars(spec: str) -> None:
    with pytest.raises(KeyError):
        decode.compile_type(spec)


@pytest.mark.parametrize(
    ("message", "field", "spec"),
    [  # facts from k8s.io/api types.go, spot-checked against the generated tables
        ("apps.DeploymentSpec", "replicas", "*int"), ("apps.DeploymentSpec", "minReadySeconds", "int"),
        ("apps.StatefulSetStatus", "replicas", "int!"), ("apps.DeploymentStatus", "replicas", "int"),
        ("batch.CronJobSpec", "suspend", "*bool"), ("batch.CronJobSpec", "schedule", "str!"),
        ("core.PodSpec", "enableServiceLinks", "*bool"), ("core.PodSpec", "hostNetwork", "bool"),
        ("core.ServicePort", "port", "int!"), ("core.ServicePort", "nodePort", "int"),
        ("core.ServiceSpec", "allocateLoadBalancerNodePorts", "*bool"),
        ("core.Probe", "timeoutSeconds", "int"), ("core.SecurityContext", "privileged", "*bool"),
        ("core.EventSeries", "count", "int"), ("events.EventSeries", "count", "int!"),
        ("authorization.SubjectAccessReviewStatus", "allowed", "bool!"),
        ("meta.ObjectMeta", "deletionGracePeriodSeconds", "*int"), ("meta.ObjectMeta", "generation", "int"),
    ],
)
def test_table_markings(message: str, field: str, spec: str) -> None:
    assert {name: kind for name, kind in MESSAGES[message].values()}[field] == spec
