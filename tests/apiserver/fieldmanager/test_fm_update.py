"""record_update: ownership after create/update/patch, entry bookkeeping, and its cost."""

from __future__ import annotations

import copy

import pytest

from apiserver.fieldmanager import FieldManagerError, apply, record_update
from apiserver.fieldmanager.fieldsets import has_member

CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "c", "namespace": "default", "uid": "u", "resourceVersion": "1",
                   "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"app": "x"}},
      "data": {"a": "1", "b": "2"}}


def created(manager: str = "kubectl-create") -> dict:
    obj = copy.deepcopy(CM)
    record_update(None, obj, manager=manager, kind="ConfigMap", api_version="v1", now="t1")
    return obj


def updated(old: dict, change, manager: str, *, now: str = "t2", subresource: str = "") -> dict:
    new = copy.deepcopy(old)
    change(new)
    record_update(old, new, manager=manager, kind="ConfigMap", api_version="v1", now=now,
                  subresource=subresource)
    return new


def entries(obj: dict) -> dict[str, dict]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields", [])}


def test_create_owns_every_field_in_one_update_entry():
    obj = created()
    (e,) = obj["metadata"]["managedFields"]
    assert e == {"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "t1",
                 "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                              "f:data": {".": {}, "f:a": {}, "f:b": {}}}}


def test_update_moves_changed_fields_and_keeps_the_rest():
    obj = updated(created(), lambda o: o["data"].update(a="changed", c="new"), "editor")
    e = entries(obj)
    assert e["editor"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:c": {}}}
    creator = e["kubectl-create"]["fieldsV1"]
    assert not has_member(creator, ("f:data", "f:a"))
    assert has_member(creator, ("f:data", "f:b")) and has_member(creator, ("f:data",))
    assert e["kubectl-create"]["time"] == "t1" and e["editor"]["time"] == "t2"


def test_removed_fields_leave_every_entry_and_empty_entries_go():
    obj = updated(created(), lambda o: o["data"].update(a="x"), "editor")
    obj = updated(obj, lambda o: o["data"].pop("a"), "remover")
    e = entries(obj)
    assert "editor" not in e and "remover" not in e  # editor owned only a; the removal claims nothing
    assert not has_member(e["kubectl-create"]["fieldsV1"], ("f:data", "f:a"))


def test_same_manager_accumulates_in_one_entry():
    obj = updated(created(), lambda o: o["data"].update(a="x"), "editor")
    obj = updated(obj, lambda o: o["data"].update(b="y"), "editor", now="t3")
    e = entries(obj)["editor"]
    assert e["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}} and e["time"] == "t3"
    assert len(obj["metadata"]["managedFields"]) == 2


def test_no_change_keeps_entries_and_times():
    obj = created()
    again = updated(obj, lambda o: o["metadata"].update(resourceVersion="2"), "editor", now="t9")
    assert again["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_update_takes_fields_from_an_applier_without_conflict():
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    obj = apply(None, config, manager="kubectl", force=False, kind="ConfigMap", api_version="v1", now="t1")
    obj = updated(obj, lambda o: o["data"].update(a="2"), "kubectl-edit")
    e = entries(obj)
    assert "kubectl" not in e
    assert e["kubectl-edit"]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_subresource_writes_get_their_own_entry_and_ignore_sent_managed_fields():
    obj = created()

    def set_status(o):
        o["status"] = {"phase": "Ready"}
        o["metadata"]["managedFields"] = [{"manager": "forged", "operation": "Update", "fieldsV1": {}}]

    obj = updated(obj, set_status, "kubelet", subresource="status")
    (e,) = [x for x in obj["metadata"]["managedFields"] if x["manager"] == "kubelet"]
    assert e["subresource"] == "status" and e["fieldsV1"] == {"f:status": {"f:phase": {}}}
    assert "forged" not in entries(obj)


def test_reset_with_a_single_empty_entry_clears_then_claims():
    obj = created()

    def reset(o):
        o["metadata"]["managedFields"] = [{}]
        o["data"]["a"] = "new"

    obj = updated(obj, reset, "resetter")
    assert list(entries(obj)) == ["resetter"]
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_empty_or_malformed_managed_fields_from_a_client_fall_back_to_stored_ones():
    obj = created()
    for sent in ([], [{"manager": 3}], "junk"):
        new = updated(obj, lambda o, sent=sent: o["metadata"].update(managedFields=sent), "client")
        assert new["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_entries_are_sorted_apply_first_then_by_time():
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"z": "1"}}
    obj = apply(created(), config, manager="applier", force=False, kind="ConfigMap", api_version="v1",
                now="t5")
    obj = updated(obj, lambda o: o["data"].update(y="1"), "later", now="t7")
    obj = updated(obj, lambda o: o["data"].update(x="1"), "earlier", now="t6")
    assert [(e["operation"], e["manager"]) for e in obj["metadata"]["managedFields"]] == [
        ("Apply", "applier"), ("Update", "kubectl-create"), ("Update", "earlier"), ("Update", "later")]


def test_keyed_list_changes_are_tracked_per_item():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}
    record_update(None, pod, manager="creator", kind="Pod", api_version="v1", now="t1")
    new = copy.deepcopy(pod)
    new["spec"]["containers"][1]["image"] = "z"
    record_update(pod, new, manager="patcher", kind="Pod", api_version="v1", now="t2")
    e = entries(new)
    assert e["patcher"]["fieldsV1"] == {"f:spec": {"f:containers": {'k:{"name":"b"}': {"f:image": {}}}}}
    assert has_member(e["creator"]["fieldsV1"], ("f:spec", "f:containers", 'k:{"name":"b"}', "f:name"))


def test_bad_objects_raise_field_manager_error():
    with pytest.raises(FieldManagerError):
        record_update(None, {"metadata": "x"}, manager="m", kind="Pod", api_version="v1", now="t")
    with pytest.raises(FieldManagerError):
        record_update("old", {"metadata": {}}, manager="m", kind="Pod", api_version="v1", now="t")


def test_many_creates_record_the_same_fields():
    objs = [{**CM, "metadata": dict(CM["metadata"])} for _ in range(200)]
    for obj in objs:
        record_update(None, obj, manager="m", kind="ConfigMap", api_version="v1", now="t")
    assert all(o["metadata"]["managedFields"] == objs[0]["metadata"]["managedFields"] for o in objs)
