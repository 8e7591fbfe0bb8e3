"""Tests for apiserver.tables: upstream's `kubectl get` columns and cells, and the Table document."""

from __future__ import annotations

import copy
import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver import tables
from apiserver.tables import human_duration

NOW = datetime(2025, 1, 1, tzinfo=UTC).timestamp()


def ago(seconds: float) -> str:
    """An RFC 3339 timestamp `seconds` before NOW."""
    return datetime.fromtimestamp(NOW - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(printer: tables.Printer, obj: dict) -> list:
    return printer.cells(obj, NOW)


def by_column(printer: tables.Printer, obj: dict) -> dict:
    return dict(zip([c.name for c in printer.columns], cells(printer, obj), strict=True))


# --------------------------------------------------------------------------------------------------
# human_duration

DAY, YEAR = 86400, 365 * 86400


@pytest.mark.parametrize(("seconds", "expected"), [
    (-5, "<invalid>"), (-2, "<invalid>"), (-1.9, "0s"), (-1, "0s"), (0, "0s"), (0.99, "0s"),
    (1, "1s"), (59, "59s"), (119.9, "119s"),
    (120, "2m"), (121, "2m1s"), (182, "3m2s"), (599, "9m59s"),
    (600, "10m"), (601, "10m"), (10799, "179m"),
    (10800, "3h"), (3 * 3600 + 300, "3h5m"), (8 * 3600 - 1, "7h59m"),
    (8 * 3600, "8h"), (48 * 3600 - 1, "47h"),
    (2 * DAY, "2d"), (2 * DAY + 5 * 3600, "2d5h"), (8 * DAY - 1, "7d23h"),
    (8 * DAY, "8d"), (2 * YEAR - 1, "729d"),
    (2 * YEAR, "2y"), (3 * YEAR + 10 * DAY, "3y10d"), (8 * YEAR - 1, "7y364d"),
    (8 * YEAR, "8y"), (100 * YEAR + 200 * DAY, "100y"),
])
def test_human_duration_matches_upstream_tiers(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "y": YEAR}


@given(st.floats(min_value=0, max_value=20 * YEAR, allow_nan=False))
def test_human_duration_never_overstates_and_keeps_two_figures(seconds: float) -> None:
    text = human_duration(seconds)
    parts = re.fullmatch(r"(\d+)([smhdy])(?:(\d+)([smhd]))?", text)
    assert parts, text
    value = int(parts[1]) * _UNITS[parts[2]] + (int(parts[3]) * _UNITS[parts[4]] if parts[3] else 0)
    precision = _UNITS[parts[4] or parts[2]]
    assert value <= seconds < value + precision
    if parts[3]:
        assert 0 < int(parts[3]) * _UNITS[parts[4]] < _UNITS[parts[2]]  # minor part never rolls over


@pytest.mark.parametrize("bad", ["5", None, True])
def test_human_duration_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError):
        human_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_human_duration_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        human_duration(bad)


# --------------------------------------------------------------------------------------------------
# Column layouts (names, types and priorities as upstream's printers declare them)

W = "wide"  # marks a priority-1 column in the tables below

LAYOUTS = {
    "POD": ["Name", "Ready", "Status", "Restarts", "Age", (W, "IP"), (W, "Node"), (W, "Nominated Node"),
            (W, "Readiness Gates")],
    "DEPLOYMENT": ["Name", "Ready", "Up-to-date", "Available", "Age", (W, "Containers"), (W, "Images"),
                   (W, "Selector")],
    "REPLICASET": ["Name", "Desired", "Current", "Ready", "Age", (W, "Containers"), (W, "Images"),
                   (W, "Selector")],
    "DAEMONSET": ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
                  (W, "Containers"), (W, "Images"), (W, "Selector")],
    "STATEFULSET": ["Name", "Ready", "Age", (W, "Containers"), (W, "Images")],
    "JOB": ["Name", "Status", "Completions", "Duration", "Age", (W, "Containers"), (W, "Images"),
            (W, "Selector")],
    "CRONJOB": ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age",
                (W, "Containers"), (W, "Images"), (W, "Selector")],
    "SERVICE": ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", (W, "Selector")],
    "ENDPOINTS": ["Name", "Endpoints", "Age"],
    "ENDPOINTSLICE": ["Name", "AddressType", "Ports", "Endpoints", "Age"],
    "CONFIGMAP": ["Name", "Data", "Age"],
    "SECRET": ["Name", "Type", "Data", "Age"],
    "SERVICEACCOUNT": ["Name", "Secrets", "Age"],
    "NAMESPACE": ["Name", "Status", "Age"],
    "NODE": ["Name", "Status", "Roles", "Age", "Version", (W, "Internal-IP"), (W, "External-IP"),
             (W, "OS-Image"), (W, "Kernel-Version"), (W, "Container-Runtime")],
    "EVENT": ["Last Seen", "Type", "Reason", "Object", (W, "Subobject"), (W, "Source"), "Message",
              (W, "First Seen"), (W, "Count"), (W, "Name")],
    "EVENTS_V1": ["Last Seen", "Type", "Reason", "Object", (W, "Subobject"), (W, "Source"), "Message",
                  (W, "First Seen"), (W, "Count"), (W, "Name")],
    "LEASE": ["Name", "Holder", "Age"],
    "PERSISTENTVOLUMECLAIM": ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                              "VolumeAttributesClass", "Age", (W, "VolumeMode")],
    "DEFAULT": ["Name", "Created At"],
}


@pytest.mark.parametrize("printer_name", sorted(LAYOUTS))
def test_columns_follow_upstream(printer_name: str) -> None:
    printer = getattr(tables, printer_name)
    expected = [(c[1], 1) if isinstance(c, tuple) else (c, 0) for c in LAYOUTS[printer_name]]
    assert [(c.name, c.priority) for c in printer.columns] == expected
    names = [c for c in printer.columns if c.name == "Name"]
    assert all(c.format == "name" for c in names)
    assert all(c.description for c in printer.columns)


@pytest.mark.parametrize("printer_name", sorted(LAYOUTS))
def test_sparse_objects_never_raise_and_fill_every_column(printer_name: str) -> None:
    printer = getattr(tables, printer_name)
    for obj in ({}, {"metadata": {"name": "x"}}, {"metadata": None, "spec": None, "status": None}):
        row = printer.cells(obj, NOW)
        assert len(row) == len(printer.columns)


#: Kubernetes field names the printers read, so generated objects reach deep into each printer
FIELDS = ["metadata", "spec", "status", "template", "jobTemplate", "name", "labels", "annotations",
          "creationTimestamp", "deletionTimestamp", "containers", "initContainers", "containerStatuses",
          "initContainerStatuses", "state", "lastState", "waiting", "running", "terminated", "reason",
          "exitCode", "signal", "finishedAt", "restartCount", "ready", "started", "restartPolicy",
          "conditions", "type", "phase", "podIPs", "podIP", "ip", "readinessGates", "conditionType",
          "replicas", "readyReplicas", "selector", "matchLabels", "matchExpressions", "key", "operator",
          "values", "completions", "parallelism", "succeeded", "startTime", "completionTime", "suspend",
          "active", "lastScheduleTime", "ports", "port", "nodePort", "protocol", "clusterIPs",
          "externalIPs", "loadBalancer", "ingress", "subsets", "addresses", "endpoints", "data",
          "secrets", "nodeInfo", "unschedulable", "accessModes", "capacity", "storage", "volumeName",
          "involvedObject", "regarding", "series", "count", "lastObservedTime", "eventTime", "source"]
_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(
    ["", "True", "Always", "Completed", "In", "Exists", "LoadBalancer", "2024-01-01T00:00:00Z", "x:y"])
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4), max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), _json, max_size=6))
def test_any_shape_of_object_prints_without_raising(obj: dict) -> None:
    for printer_name in LAYOUTS:
        printer = getattr(tables, printer_name)
        assert len(printer.cells(obj, NOW)) == len(printer.columns)
        assert isinstance(printer.conditions(obj) if printer.conditions else [], list)


@pytest.mark.parametrize(("printer_name", "obj"), [
    ("POD", {"status": {"phase": ["Succeeded"]}}),
    ("POD", {"spec": {"initContainers": [{"name": ["i"]}]}, "status": {"initContainerStatuses": [{"name": ["i"]}]}}),
    ("REPLICASET", {"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": ["In"]}]}}}),
    ("PERSISTENTVOLUMECLAIM", {"spec": {"volumeName": "v"}, "status": {"accessModes": [["ReadWriteOnce"]]}}),
    ("NODE", {"metadata": {"labels": {"kubernetes.io/role": ["x"]}}}),
])
def test_unhashable_values_where_strings_belong(printer_name: str, obj: dict) -> None:
    printer = getattr(tables, printer_name)
    assert len(printer.cells(obj, NOW)) == len(printer.columns)
    assert tables.table(printer, [obj], resource_version="1", now=NOW)["rows"]


def test_column_types_where_upstream_declares_them() -> None:
    types = {c.name: c.type for c in tables.REPLICASET.columns}
    assert types["Desired"] == "integer" and types["Age"] == "string"
    assert {c.name: c.type for c in tables.CRONJOB.columns}["Suspend"] == "boolean"
    assert {c.name: c.type for c in tables.DEFAULT.columns}["Created At"] == "date"
    assert {c.name: c.type for c in tables.POD.columns}["Restarts"] == "string"


# --------------------------------------------------------------------------------------------------
# Pods


def pod(*, statuses: list | None = None, init_statuses: list | None = None, containers: int = 1,
        init_containers: list | None = None, **status: object) -> dict:
    return {
        "metadata": {"name": "p", "creationTimestamp": ago(300)},
        "spec": {"containers": [{"name": f"c{i}", "image": "busybox"} for i in range(containers)],
                 "initContainers": init_containers or []},
        "status": {"containerStatuses": statuses or [], "initContainerStatuses": init_statuses or [],
                   **status},
    }


def running(name: str = "c0", *, ready: bool = True, restarts: int = 0, finished_ago: float | None = None) -> dict:
    status: dict = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}}
    if finished_ago is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(finished_ago)}}
    return status


def test_pod_sparse() -> None:
    assert cells(tables.POD, {"metadata": {"name": "p"}}) == [
        "p", "0/0", "", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"]


def test_pod_running_full_row() -> None:
    obj = pod(containers=2, statuses=[running("c0"), running("c1")], phase="Running",
              podIPs=[{"ip": "10.244.0.7"}], nominatedNodeName="n2")
    obj["spec"]["nodeName"] = "n1"
    assert cells(tables.POD, obj) == ["p", "2/2", "Running", "0", "5m", "10.244.0.7", "n1", "n2", "<none>"]


def test_pod_ip_falls_back_to_pod_ip_field() -> None:
    assert by_column(tables.POD, pod(podIP="10.0.0.9"))["IP"] == "10.0.0.9"


def test_pod_waiting_reason_and_restarts_with_last_restart_age() -> None:
    crashing = {"name": "c0", "ready": False, "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(185)}}}
    row = by_column(tables.POD, pod(statuses=[crashing], phase="Running"))
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("0/1", "CrashLoopBackOff", "5 (3m5s ago)")


def test_pod_restarts_without_a_finish_time_have_no_suffix() -> None:
    assert by_column(tables.POD, pod(statuses=[running(restarts=2)]))["Restarts"] == "2"


def test_pod_restart_age_uses_latest_termination() -> None:
    obj = pod(containers=2, statuses=[running("c0", restarts=1, finished_ago=4000),
                                      running("c1", restarts=2, finished_ago=30)])
    assert by_column(tables.POD, obj)["Restarts"] == "3 (30s ago)"


def test_pod_first_container_state_wins() -> None:
    obj = pod(containers=2, statuses=[
        {"name": "c0", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        {"name": "c1", "state": {"waiting": {"reason": "ContainerCreating"}}},
    ], phase="Pending")
    assert by_column(tables.POD, obj)["Status"] == "ImagePullBackOff"


@pytest.mark.parametrize(("terminated", "expected"), [
    ({"exitCode": 0, "reason": "Completed"}, "Completed"),
    ({"exitCode": 1, "reason": "Error"}, "Error"),
    ({"exitCode": 2}, "ExitCode:2"),
    ({"exitCode": 137, "signal": 9}, "Signal:9"),
])
def test_pod_terminated_reasons(terminated: dict, expected: str) -> None:
    obj = pod(statuses=[{"name": "c0", "state": {"terminated": terminated}}], phase="Succeeded")
    assert by_column(tables.POD, obj)["Status"] == expected


@pytest.mark.parametrize(("ready_condition", "expected"), [("True", "Running"), ("False", "NotReady")])
def test_pod_completed_with_a_running_container_reads_running(ready_condition: str, expected: str) -> None:
    obj = pod(containers=2, phase="Running", conditions=[{"type": "Ready", "status": ready_condition}],
              statuses=[{"name": "c0", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        running("c1")])
    row = by_column(tables.POD, obj)
    assert (row["Ready"], row["Status"]) == ("1/2", expected)


def test_pod_phase_and_status_reason() -> None:
    assert by_column(tables.POD, pod(phase="Pending"))["Status"] == "Pending"
    assert by_column(tables.POD, pod(phase="Failed", reason="Evicted"))["Status"] == "Evicted"


def test_pod_scheduling_gated() -> None:
    obj = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}])
    assert by_column(tables.POD, obj)["Status"] == "SchedulingGated"


def init_spec(count: int) -> list:
    return [{"name": f"i{i}", "image": "busybox"} for i in range(count)]


def test_pod_init_progress() -> None:
    obj = pod(init_containers=init_spec(2), phase="Pending", init_statuses=[
        {"name": "i0", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "i1", "restartCount": 1, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(10)}}},
    ], statuses=[{"name": "c0", "restartCount": 7, "state": {"waiting": {"reason": "PodInitializing"}}}])
    row = by_column(tables.POD, obj)
    # while initializing, app containers are ignored and init restarts are the ones counted
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("0/1", "Init:1/2", "1 (10s ago)")


@pytest.mark.parametrize(("state", "expected"), [
    ({"waiting": {"reason": "ImagePullBackOff"}}, "Init:ImagePullBackOff"),
    ({"waiting": {"reason": "PodInitializing"}}, "Init:0/1"),
    ({"terminated": {"exitCode": 1, "reason": "Error"}}, "Init:Error"),
    ({"terminated": {"exitCode": 3}}, "Init:ExitCode:3"),
    ({"terminated": {"exitCode": 3, "signal": 15}}, "Init:Signal:15"),
])
def test_pod_init_failures(state: dict, expected: str) -> None:
    obj = pod(init_containers=init_spec(1), phase="Pending", init_statuses=[{"name": "i0", "state": state}])
    assert by_column(tables.POD, obj)["Status"] == expected


def test_pod_initialized_condition_lets_app_containers_count() -> None:
    init = [{"name": "i0", "state": {"waiting": {"reason": "Whatever"}}}]
    apps = [running("c0", restarts=3), {"name": "c1", "state": {"waiting": {"reason": "ContainerCreating"}}}]
    stuck = pod(init_containers=init_spec(1), containers=2, phase="Pending", init_statuses=init, statuses=apps)
    row = by_column(tables.POD, stuck)
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("0/2", "Init:Whatever", "0")
    stuck["status"]["conditions"] = [{"type": "Initialized", "status": "True"}]
    row = by_column(tables.POD, stuck)
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("1/2", "ContainerCreating", "3")


def test_pod_sidecar_counts_as_a_container() -> None:
    sidecar = {"name": "side", "image": "envoy", "restartPolicy": "Always"}
    obj = pod(init_containers=[sidecar], phase="Running", statuses=[running()], init_statuses=[
        {"name": "side", "started": True, "ready": True, "restartCount": 2, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(61)}}}])
    row = by_column(tables.POD, obj)
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("2/2", "Running", "2 (61s ago)")


@pytest.mark.parametrize(("phase", "reason", "expected"), [
    ("Running", "", "Terminating"),
    ("Pending", "", "Terminating"),
    ("Succeeded", "", "Succeeded"),
    ("Running", "NodeLost", "Unknown"),
])
def test_pod_deletion(phase: str, reason: str, expected: str) -> None:
    obj = pod(phase=phase, reason=reason)
    obj["metadata"]["deletionTimestamp"] = ago(1)
    assert by_column(tables.POD, obj)["Status"] == expected


def test_pod_readiness_gates() -> None:
    obj = pod(conditions=[{"type": "a", "status": "True"}, {"type": "b", "status": "False"}])
    obj["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}, {"conditionType": "c"}]
    assert by_column(tables.POD, obj)["Readiness Gates"] == "1/3"


def test_pod_row_conditions_mark_finished_pods() -> None:
    assert tables.POD.conditions(pod(phase="Running")) == []
    assert tables.POD.conditions(pod(phase="Succeeded"))[0]["reason"] == "Succeeded"
    assert tables.POD.conditions(pod(phase="Failed"))[0] == {
        "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}


# --------------------------------------------------------------------------------------------------
# Workloads


def workload(spec: dict | None = None, status: dict | None = None, **meta: object) -> dict:
    template = {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"},
                                        {"name": "log", "image": "busybox"}]}}
    return {"metadata": {"name": "web", "creationTimestamp": ago(7200), **meta},
            "spec": {"template": template, **(spec or {})}, "status": status or {}}


SELECTOR = {"matchLabels": {"tier": "fe", "app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                 {"key": "canary", "operator": "DoesNotExist"},
                                 {"key": "zone", "operator": "Exists"},
                                 {"key": "bad", "operator": "NotIn", "values": ["x"]}]}
SELECTOR_TEXT = "app=web,bad notin (x),!canary,env in (dev,prod),tier=fe,zone"


def test_deployment_fresh_without_status() -> None:
    obj = {"metadata": {"name": "web", "creationTimestamp": ago(3)}, "spec": {"replicas": 3}}
    assert cells(tables.DEPLOYMENT, obj) == ["web", "0/3", 0, 0, "3s", "", "", ""]


def test_deployment_full() -> None:
    obj = workload({"replicas": 2, "selector": SELECTOR},
                   {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1})
    assert cells(tables.DEPLOYMENT, obj) == [
        "web", "1/2", 2, 1, "120m", "web,log", "nginx:1.25,busybox", SELECTOR_TEXT]


def test_deployment_replicas_default_to_one() -> None:
    assert by_column(tables.DEPLOYMENT, workload())["Ready"] == "0/1"


@pytest.mark.parametrize("expression", [
    {"key": "a", "operator": "Sideways", "values": ["x"]},
    {"key": "a", "operator": "In", "values": []},
    {"key": "a", "operator": "Exists", "values": ["x"]},
])
def test_invalid_selectors_per_printer(expression: dict) -> None:
    obj = workload({"selector": {"matchExpressions": [expression]}})
    assert by_column(tables.DEPLOYMENT, obj)["Selector"] == "<invalid>"
    assert by_column(tables.REPLICASET, obj)["Selector"] == "<error>"


def test_replicaset() -> None:
    obj = workload({"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
                   {"replicas": 3, "readyReplicas": 2})
    assert cells(tables.REPLICASET, obj) == ["web", 3, 3, 2, "120m", "web,log", "nginx:1.25,busybox", "app=web"]
    assert by_column(tables.REPLICASET, workload({"selector": {}}))["Selector"] == "<none>"


def test_daemonset() -> None:
    obj = workload({"selector": {"matchLabels": {"app": "ds"}}},
                   {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberReady": 1,
                    "updatedNumberScheduled": 2, "numberAvailable": 1})
    obj["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a", "arch": "amd64"}
    assert cells(tables.DAEMONSET, obj) == [
        "web", 3, 2, 1, 2, 1, "arch=amd64,zone=a", "120m", "web,log", "nginx:1.25,busybox", "app=ds"]
    assert by_column(tables.DAEMONSET, workload())["Node Selector"] == "<none>"


def test_statefulset() -> None:
    obj = workload({"replicas": 3}, {"readyReplicas": 2})
    assert cells(tables.STATEFULSET, obj) == ["web", "2/3", "120m", "web,log", "nginx:1.25,busybox"]


@pytest.mark.parametrize(("spec", "expected"), [
    ({"completions": 5}, "2/5"),
    ({"parallelism": 3}, "2/1 of 3"),
    ({"parallelism": 1}, "2/1"),
    ({}, "2/1"),
])
def test_job_completions(spec: dict, expected: str) -> None:
    assert by_column(tables.JOB, workload(spec, {"succeeded": 2}))["Completions"] == expected


def test_job_duration() -> None:
    assert by_column(tables.JOB, workload())["Duration"] == ""
    assert by_column(tables.JOB, workload(status={"startTime": ago(65)}))["Duration"] == "65s"
    done = {"startTime": ago(600), "completionTime": ago(596)}
    assert by_column(tables.JOB, workload(status=done))["Duration"] == "4s"


@pytest.mark.parametrize(("conditions", "deleting", "expected"), [
    ([], False, "Running"),
    ([{"type": "Complete", "status": "True"}], True, "Complete"),
    ([{"type": "Failed", "status": "True"}], False, "Failed"),
    ([{"type": "Suspended", "status": "True"}], True, "Terminating"),
    ([{"type": "Suspended", "status": "True"}], False, "Suspended"),
    ([{"type": "FailureTarget", "status": "True"}], False, "FailureTarget"),
    ([{"type": "Complete", "status": "False"}], False, "Running"),
])
def test_job_status(conditions: list, deleting: bool, expected: str) -> None:
    obj = workload(status={"conditions": conditions})
    if deleting:
        obj["metadata"]["deletionTimestamp"] = ago(1)
    assert by_column(tables.JOB, obj)["Status"] == expected


def test_job_full_row() -> None:
    obj = workload({"completions": 1, "selector": {"matchLabels": {"batch.kubernetes.io/job-name": "web"}}},
                   {"succeeded": 1, "startTime": ago(60), "completionTime": ago(50),
                    "conditions": [{"type": "Complete", "status": "True"}]})
    assert cells(tables.JOB, obj) == ["web", "Complete", "1/1", "10s", "120m", "web,log", "nginx:1.25,busybox",
                                      "batch.kubernetes.io/job-name=web"]


def test_cronjob() -> None:
    template = workload()["spec"]["template"]
    obj = {"metadata": {"name": "nightly", "creationTimestamp": ago(3 * DAY)},
           "spec": {"schedule": "0 3 * * *", "suspend": False,
                    "jobTemplate": {"spec": {"template": template}}},
           "status": {"active": [{"name": "j1"}], "lastScheduleTime": ago(125)}}
    assert cells(tables.CRONJOB, obj) == ["nightly", "0 3 * * *", "<none>", "False", 1, "2m5s", "3d",
                                          "web,log", "nginx:1.25,busybox", "<none>"]
    sparse = by_column(tables.CRONJOB, {"metadata": {"name": "c"}, "spec": {"timeZone": "UTC", "suspend": True}})
    assert (sparse["Timezone"], sparse["Suspend"], sparse["Active"], sparse["Last Schedule"]) == (
        "UTC", "True", 0, "<none>")
    assert by_column(tables.CRONJOB, {})["Suspend"] == "<unset>"


# --------------------------------------------------------------------------------------------------
# Services and endpoints


def service(**spec: object) -> dict:
    return {"metadata": {"name": "svc", "creationTimestamp": ago(45)}, "spec": spec, "status": {}}


def test_service_cluster_ip() -> None:
    obj = service(type="ClusterIP", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"],
                  ports=[{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], selector={"app": "web"})
    assert cells(tables.SERVICE, obj) == ["svc", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "45s",
                                          "app=web"]


def test_service_node_port_and_no_ports() -> None:
    obj = service(type="NodePort", clusterIP="10.96.0.11", ports=[{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
                  externalIPs=["1.2.3.4"])
    row = by_column(tables.SERVICE, obj)
    assert (row["Cluster-IP"], row["External-IP"], row["Port(s)"], row["Selector"]) == (
        "10.96.0.11", "1.2.3.4", "80:30080/TCP", "<none>")
    assert by_column(tables.SERVICE, service(type="ClusterIP", clusterIP="None"))["Port(s)"] == "<none>"


def test_service_load_balancer_and_external_name() -> None:
    assert by_column(tables.SERVICE, service(type="LoadBalancer"))["External-IP"] == "<pending>"
    lb = service(type="LoadBalancer", externalIPs=["9.9.9.9"])
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"},
                                                 {"ip": "1.1.1.1"}, {"ip": "5.6.7.8"}]}}
    assert by_column(tables.SERVICE, lb)["External-IP"] == "1.1.1.1,5.6.7.8,lb.example.com,9.9.9.9"
    external = service(type="ExternalName", externalName="db.example.com")
    assert by_column(tables.SERVICE, external)["External-IP"] == "db.example.com"
    assert by_column(tables.SERVICE, service())["External-IP"] == "<unknown>"


def test_endpoints() -> None:
    assert by_column(tables.ENDPOINTS, {"metadata": {"name": "e"}})["Endpoints"] == "<none>"
    many = {"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]}
    assert by_column(tables.ENDPOINTS, many)["Endpoints"] == "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    headless = {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "fd00::1"}]}]}
    assert by_column(tables.ENDPOINTS, headless)["Endpoints"] == "fd00::1"
    v6 = {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}]}
    assert by_column(tables.ENDPOINTS, v6)["Endpoints"] == "[fd00::1]:8080"


def test_endpointslice() -> None:
    assert cells(tables.ENDPOINTSLICE, {"metadata": {"name": "s"}, "addressType": "IPv4"})[1:4] == [
        "IPv4", "<unset>", "<unset>"]
    obj = {"metadata": {"name": "s", "creationTimestamp": ago(5)}, "addressType": "IPv4",
           "ports": [{"port": 80}, {"name": "https"}, {}],
           "endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3", "10.0.0.4"]}]}
    assert cells(tables.ENDPOINTSLICE, obj) == [
        "s", "IPv4", "80,https,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "5s"]


# --------------------------------------------------------------------------------------------------
# Config, identity, namespaces, leases


def test_simple_kinds() -> None:
    meta = {"name": "x", "creationTimestamp": ago(90000)}
    assert cells(tables.CONFIGMAP, {"metadata": meta, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}) \
        == ["x", 3, "25h"]
    assert cells(tables.CONFIGMAP, {"metadata": meta}) == ["x", 0, "25h"]
    assert cells(tables.SECRET, {"metadata": meta, "type": "Opaque", "data": {"k": "dg=="}}) == [
        "x", "Opaque", 1, "25h"]
    assert cells(tables.SERVICEACCOUNT, {"metadata": meta, "secrets": [{"name": "t"}]}) == ["x", 1, "25h"]
    assert cells(tables.NAMESPACE, {"metadata": meta, "status": {"phase": "Terminating"}}) == [
        "x", "Terminating", "25h"]
    assert cells(tables.LEASE, {"metadata": meta, "spec": {"holderIdentity": "node-1"}}) == ["x", "node-1", "25h"]
    assert cells(tables.LEASE, {"metadata": meta, "spec": {}}) == ["x", "", "25h"]


def test_default_printer_shows_creation_time() -> None:
    assert cells(tables.DEFAULT, {"metadata": {"name": "r", "creationTimestamp": "2024-05-06T07:08:09Z"}}) == [
        "r", "2024-05-06T07:08:09Z"]
    assert cells(tables.DEFAULT, {"metadata": {"name": "r", "creationTimestamp": "2024-05-06T09:08:09.5+02:00"}}) \
        == ["r", "2024-05-06T07:08:09Z"]
    assert cells(tables.DEFAULT, {"metadata": {"name": "r"}}) == ["r", "0001-01-01T00:00:00Z"]


# --------------------------------------------------------------------------------------------------
# Nodes


def node(conditions: list, **extra: object) -> dict:
    return {"metadata": {"name": "n1", "creationTimestamp": ago(DAY * 3), "labels": extra.pop("labels", {})},
            "spec": extra.pop("spec", {}),
            "status": {"conditions": conditions, **extra}}


def test_node_full() -> None:
    obj = node([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
               labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "",
                       "kubernetes.io/role": "infra", "kubernetes.io/hostname": "n1"},
               addresses=[{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.1.5"}],
               nodeInfo={"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion": "pinnace://0.1.0"})
    assert cells(tables.NODE, obj) == [
        "n1", "Ready", "control-plane,infra", "3d", "v1.32.0", "192.168.1.5", "<none>",
        "Debian GNU/Linux 12 (bookworm)", "6.1.0", "pinnace://0.1.0"]


@pytest.mark.parametrize(("conditions", "unschedulable", "expected"), [
    ([{"type": "Ready", "status": "True"}], True, "Ready,SchedulingDisabled"),
    ([{"type": "Ready", "status": "False"}], False, "NotReady"),
    ([{"type": "Ready", "status": "Unknown"}], False, "NotReady"),
    ([], False, "Unknown"),
    ([], True, "Unknown,SchedulingDisabled"),
])
def test_node_status(conditions: list, unschedulable: bool, expected: str) -> None:
    row = by_column(tables.NODE, node(conditions, spec={"unschedulable": unschedulable}))
    assert (row["Status"], row["Roles"], row["OS-Image"], row["Internal-IP"]) == (
        expected, "<none>", "<unknown>", "<none>")


# --------------------------------------------------------------------------------------------------
# Persistent volume claims


def test_pvc_pending_and_bound() -> None:
    pending = {"metadata": {"name": "data", "creationTimestamp": ago(10)},
               "spec": {"storageClassName": "local", "resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Pending"}}
    assert cells(tables.PERSISTENTVOLUMECLAIM, pending) == [
        "data", "Pending", "", "", "", "local", "<unset>", "10s", "<unset>"]
    bound = copy.deepcopy(pending)
    bound["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "legacy"}
    bound["spec"].update(volumeName="pv-1", volumeMode="Filesystem")
    bound["status"] = {"phase": "Bound", "capacity": {"storage": "2Gi"},
                       "accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "ReadOnlyMany", "ReadWriteOnce"]}
    bound["metadata"]["deletionTimestamp"] = ago(1)
    assert cells(tables.PERSISTENTVOLUMECLAIM, bound) == [
        "data", "Terminating", "pv-1", "2Gi", "RWO,ROX,RWOP", "legacy", "<unset>", "10s", "Filesystem"]


# --------------------------------------------------------------------------------------------------
# Events


def test_core_event() -> None:
    obj = {"metadata": {"name": "web.17a", "namespace": "default"},
           "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
           "reason": "BackOff", "type": "Warning", "message": "  Back-off restarting failed container\n",
           "source": {"component": "kubelet", "host": "n1"}, "count": 4,
           "firstTimestamp": ago(600), "lastTimestamp": ago(30)}
    assert cells(tables.EVENT, obj) == [
        "30s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}", "kubelet, n1",
        "Back-off restarting failed container", "10m", 4, "web.17a"]


def test_core_event_from_new_api_fields() -> None:
    obj = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"}, "reason": "Starting", "type": "Normal",
           "eventTime": "2024-12-31T23:59:00.000000Z", "reportingComponent": "kubelet", "reportingInstance": "n2"}
    row = by_column(tables.EVENT, obj)
    assert (row["Last Seen"], row["First Seen"], row["Object"], row["Source"], row["Count"]) == (
        "60s", "60s", "node", "kubelet, n2", 1)
    series = dict(obj, series={"count": 7, "lastObservedTime": "2024-12-31T23:59:50.000000Z"})
    row = by_column(tables.EVENT, series)
    assert (row["Last Seen"], row["First Seen"], row["Count"]) == ("10s", "60s", 7)
    assert by_column(tables.EVENT, {"metadata": {"name": "e"}})["Last Seen"] == "<unknown>"


def test_events_v1_maps_to_the_same_columns() -> None:
    obj = {"metadata": {"name": "web.17b"}, "regarding": {"kind": "Deployment", "name": "web"},
           "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up replica set web-abc to 2",
           "eventTime": ago(20), "reportingController": "deployment-controller",
           "reportingInstance": "", "deprecatedCount": 2, "deprecatedLastTimestamp": ago(5),
           "deprecatedSource": {"component": ""}}
    assert cells(tables.EVENTS_V1, obj) == [
        "5s", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller",
        "Scaled up replica set web-abc to 2", "20s", 2, "web.17b"]


# --------------------------------------------------------------------------------------------------
# The Table document


def configmap(i: int, **meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": "default", "uid": f"uid-{i}", "resourceVersion": str(i),
                         "creationTimestamp": ago(i), "labels": {"app": "web"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}], **meta},
            "data": {"k": "v"}}


def test_table_shape() -> None:
    objects = [configmap(1), configmap(2)]
    result = tables.table(tables.CONFIGMAP, objects, resource_version="42", now=NOW)
    assert list(result) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert (result["kind"], result["apiVersion"], result["metadata"]) == (
        "Table", "meta.k8s.io/v1", {"resourceVersion": "42"})
    assert result["columnDefinitions"][0] == {"name": "Name", "type": "string", "format": "name",
                                              "description": tables.CONFIGMAP.columns[0].description, "priority": 0}
    assert [c["name"] for c in result["columnDefinitions"]] == ["Name", "Data", "Age"]
    first = result["rows"][0]
    assert first["cells"] == ["cm-1", 1, "1s"]
    expected_meta = {k: v for k, v in objects[0]["metadata"].items() if k != "managedFields"}
    assert first["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": expected_meta}
    assert "conditions" not in first
    first["object"]["metadata"]["labels"] = {}
    first["object"]["metadata"]["name"] = "changed"
    assert objects[0]["metadata"]["name"] == "cm-1" and "managedFields" in objects[0]["metadata"]


def test_table_continue_and_empty() -> None:
    result = tables.table(tables.POD, [], resource_version="7", continue_="token", now=NOW)
    assert result["metadata"] == {"resourceVersion": "7", "continue": "token"}
    assert result["rows"] == [] and len(result["columnDefinitions"]) == 9


def test_table_rows_carry_pod_conditions() -> None:
    result = tables.table(tables.POD, [pod(phase="Succeeded")], resource_version="1", now=NOW)
    assert list(result["rows"][0]) == ["cells", "conditions", "object"]
    assert result["rows"][0]["conditions"][0]["type"] == "Completed"


def test_table_defaults_now_to_the_clock() -> None:
    stamp = datetime.fromtimestamp(time.time() - 3700, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fresh = {"metadata": {"name": "x", "creationTimestamp": stamp}}
    assert tables.table(tables.CONFIGMAP, [fresh], resource_version="1")["rows"][0]["cells"][2] in ("61m", "62m")


def test_row_table_for_watch_events() -> None:
    result = tables.row_table(tables.CONFIGMAP, configmap(3), now=NOW)
    assert result["metadata"] == {"resourceVersion": "3"}
    assert [row["cells"] for row in result["rows"]] == [["cm-3", 1, "3s"]]
    assert result["columnDefinitions"] == tables.CONFIGMAP.column_definitions()
    assert tables.row_table(tables.CONFIGMAP, {}, now=NOW)["metadata"] == {"resourceVersion": ""}


@pytest.mark.parametrize("bad", [None, "pod", ["x"], 3])
def test_non_objects_raise_table_error(bad: object) -> None:
    with pytest.raises(tables.TableError):
        tables.table(tables.POD, [bad], resource_version="1", now=NOW)  # type: ignore[list-item]
    with pytest.raises(tables.TableError):
        tables.row_table(tables.POD, bad, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), "now"])
def test_bad_now_raises_table_error(bad: object) -> None:
    with pytest.raises(tables.TableError):
        tables.table(tables.POD, [], resource_version="1", now=bad)  # type: ignore[arg-type]


def test_ten_thousand_configmaps() -> None:
    objects = [configmap(i) for i in range(10_000)]
    result = tables.table(tables.CONFIGMAP, objects, resource_version="1", now=NOW)
    assert len(result["rows"]) == 10_000
