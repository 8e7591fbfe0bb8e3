"""Conversion of the client's pydantic schemas into Kubernetes-style component schemas."""

from __future__ import annotations

import orjson
import pytest

from apiserver.openapi import SchemaError, schemas
from apiserver.openapi.schemas import (
    INT_OR_STRING,
    MICRO_TIME,
    QUANTITY,
    REF_PREFIX,
    TIME,
    components,
    convert,
    ref_name,
)

APPS = "io.k8s.api.apps.v1."
CORE = "io.k8s.api.core.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."


@pytest.fixture(scope="module")
def comps() -> dict:
    return components()


def prop(comps: dict, component: str, field: str) -> dict:
    return comps[component]["properties"][field]


def test_no_pydantic_leftovers(comps: dict) -> None:
    text = orjson.dumps(comps).decode()
    assert '"null"' not in text
    assert "#/$defs/" not in text
    assert "openapi_types" not in text
    assert '"title"' not in text
    assert "additionalProperties\":false" not in text


def test_every_reference_resolves(comps: dict) -> None:
    refs = set(schemas.references(comps))
    assert refs
    assert refs <= set(comps)


def test_nullable_scalar_becomes_plain_type_with_description(comps: dict) -> None:
    replicas = prop(comps, APPS + "DeploymentSpec", "replicas")
    assert replicas["type"] == "integer"
    assert "Number of desired pods" in replicas["description"]


def test_described_reference_is_wrapped_in_all_of(comps: dict) -> None:
    selector = prop(comps, APPS + "DeploymentSpec", "selector")
    assert selector["allOf"] == [{"$ref": REF_PREFIX + META + "LabelSelector"}]
    assert selector["description"]
    assert ref_name(selector) == META + "LabelSelector"


def test_undescribed_reference_borrows_its_type_description(comps: dict) -> None:
    template = prop(comps, APPS + "DeploymentSpec", "template")
    assert ref_name(template) == CORE + "PodTemplateSpec"
    assert template["description"] == comps[CORE + "PodTemplateSpec"]["description"]


def test_int_or_string(comps: dict) -> None:
    assert ref_name(prop(comps, APPS + "RollingUpdateDeployment", "maxSurge")) == INT_OR_STRING
    assert ref_name(prop(comps, CORE + "ServicePort", "targetPort")) == INT_OR_STRING
    ios = comps[INT_OR_STRING]
    assert ios["x-kubernetes-int-or-string"] is True
    assert {m["type"] for m in ios["oneOf"]} == {"integer", "string"}


def test_quantities(comps: dict) -> None:
    limits = prop(comps, CORE + "ResourceRequirements", "limits")
    assert limits["type"] == "object"
    assert ref_name(limits["additionalProperties"]) == QUANTITY
    assert ref_name(prop(comps, CORE + "EmptyDirVolumeSource", "sizeLimit")) == QUANTITY
    assert ref_name(prop(comps, CORE + "NodeStatus", "capacity")["additionalProperties"]) == QUANTITY


def test_times_and_micro_times(comps: dict) -> None:
    assert ref_name(prop(comps, META + "ObjectMeta", "creationTimestamp")) == TIME
    assert ref_name(prop(comps, "io.k8s.api.coordination.v1.LeaseSpec", "renewTime")) == MICRO_TIME
    assert ref_name(prop(comps, "io.k8s.api.events.v1.Event", "eventTime")) == MICRO_TIME
    assert ref_name(prop(comps, CORE + "Event", "lastTimestamp")) == TIME
    assert comps[TIME]["format"] == "date-time"


def test_maps_of_strings_and_bytes(comps: dict) -> None:
    labels = prop(comps, META + "ObjectMeta", "labels")
    assert labels["additionalProperties"] == {"type": "string"}
    data = prop(comps, CORE + "Secret", "data")
    assert data["additionalProperties"] == {"type": "string", "format": "byte"}


def test_arrays_and_required(comps: dict) -> None:
    containers = prop(comps, CORE + "PodSpec", "containers")
    assert containers["type"] == "array"
    assert ref_name(containers["items"]) == CORE + "Container"
    assert "containers" in comps[CORE + "PodSpec"]["required"]
    assert comps[CORE + "Container"]["required"] == ["name"]
    assert "required" not in comps[APPS + "DeploymentStatus"]


def test_free_form_objects(comps: dict) -> None:
    fields = prop(comps, META + "ManagedFieldsEntry", "fieldsV1")
    assert fields["type"] == "object"
    assert fields["x-kubernetes-preserve-unknown-fields"] is True


def test_descriptions_are_cleaned(comps: dict) -> None:
    text = comps[APPS + "Deployment"]["description"]
    assert text == "Deployment enables declarative updates for Pods and ReplicaSets."


@pytest.mark.parametrize(("component", "gvk"), [
    (APPS + "Deployment", {"group": "apps", "version": "v1", "kind": "Deployment"}),
    (APPS + "DeploymentList", {"group": "apps", "version": "v1", "kind": "DeploymentList"}),
    (CORE + "Pod", {"group": "", "version": "v1", "kind": "Pod"}),
    (CORE + "Event", {"group": "", "version": "v1", "kind": "Event"}),
    ("io.k8s.api.events.v1.Event", {"group": "events.k8s.io", "version": "v1", "kind": "Event"}),
    ("io.k8s.api.autoscaling.v1.Scale", {"group": "autoscaling", "version": "v1", "kind": "Scale"}),
    ("io.k8s.api.authorization.v1.SelfSubjectAccessReview",
     {"group": "authorization.k8s.io", "version": "v1", "kind": "SelfSubjectAccessReview"}),
    (META + "Status", {"group": "", "version": "v1", "kind": "Status"}),
])
def test_group_version_kinds(comps: dict, component: str, gvk: dict) -> None:
    assert gvk in comps[component]["x-kubernetes-group-version-kind"]


def test_nested_types_carry_no_gvk(comps: dict) -> None:
    assert "x-kubernetes-group-version-kind" not in comps[CORE + "PodSpec"]
    assert "x-kubernetes-group-version-kind" not in comps[META + "ObjectMeta"]


def test_unknown_model_is_refused() -> None:
    with pytest.raises(SchemaError):
        convert(["V1NoSuchThing"])


def test_unconvertible_shape_is_refused() -> None:
    with pytest.raises(SchemaError):
        schemas._shape({"type": "tuple"}, owner="V1X", field="y")


def test_models_outside_the_registry_convert_on_their_own() -> None:
    assert schemas.components_for("V1ConfigMapList") is components()
    pod_template = schemas.components_for("V1PodTemplate")
    assert "io.k8s.api.core.v1.PodTemplate" in pod_template
    assert pod_template is not components()
