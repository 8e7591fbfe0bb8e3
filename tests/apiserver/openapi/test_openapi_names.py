"""Upstream names for client models: spot checks against upstream, and no two models colliding."""

from __future__ import annotations

import pytest

from apiserver.openapi import SchemaError
from apiserver.openapi.names import package, short_name, upstream_name


@pytest.mark.parametrize(("model", "expected"), [
    ("V1Deployment", "io.k8s.api.apps.v1.Deployment"),
    ("V1RollingUpdateDeployment", "io.k8s.api.apps.v1.RollingUpdateDeployment"),
    ("V1Pod", "io.k8s.api.core.v1.Pod"),
    ("V1PodTemplateSpec", "io.k8s.api.core.v1.PodTemplateSpec"),
    ("V1ObjectMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
    ("V1LabelSelector", "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
    ("CoreV1Event", "io.k8s.api.core.v1.Event"),
    ("EventsV1Event", "io.k8s.api.events.v1.Event"),
    ("DiscoveryV1EndpointPort", "io.k8s.api.discovery.v1.EndpointPort"),
    ("CoreV1EndpointPort", "io.k8s.api.core.v1.EndpointPort"),
    ("V1Endpoint", "io.k8s.api.discovery.v1.Endpoint"),
    ("V1Endpoints", "io.k8s.api.core.v1.Endpoints"),
    ("V1Scale", "io.k8s.api.autoscaling.v1.Scale"),
    ("V1ScaleIOVolumeSource", "io.k8s.api.core.v1.ScaleIOVolumeSource"),
    ("V1DaemonEndpoint", "io.k8s.api.core.v1.DaemonEndpoint"),
    ("V1JobTemplateSpec", "io.k8s.api.batch.v1.JobTemplateSpec"),
    ("V1LeaseSpec", "io.k8s.api.coordination.v1.LeaseSpec"),
    ("V1SelfSubjectAccessReview", "io.k8s.api.authorization.v1.SelfSubjectAccessReview"),
    ("V1UserInfo", "io.k8s.api.authentication.v1.UserInfo"),
    ("AuthenticationV1TokenRequest", "io.k8s.api.authentication.v1.TokenRequest"),
    ("V1beta1Foo", "io.k8s.api.core.v1beta1.Foo"),
])
def test_upstream_names(model: str, expected: str) -> None:
    assert upstream_name(model) == expected


@pytest.mark.parametrize("bad", ["Deployment", "v1Deployment", "V1", "", "V1deployment"])
def test_names_that_are_not_client_models_are_refused(bad: str) -> None:
    with pytest.raises(SchemaError):
        upstream_name(bad)


def test_packages_and_short_names() -> None:
    assert package("") == "core"
    assert package("apps") == "apps"
    assert package("events.k8s.io") == "events"
    assert short_name("io.k8s.api.core.v1.PodSpec") == "PodSpec"


def test_every_published_model_has_a_distinct_upstream_name() -> None:
    import kubernetes.client as client
    from pydantic.json_schema import models_json_schema

    from apiserver.openapi.catalog import catalog

    _, doc = models_json_schema([(getattr(client, m), "validation") for m in catalog().models])
    models = list(doc["$defs"])
    names = [upstream_name(m) for m in models]
    assert len(models) > 200
    assert len(set(names)) == len(names)
