"""Query parameters, X-Registry-Auth and the error -> status table, without a server."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
from aiohttp.test_utils import make_mocked_request

from engine.daemon import errors, params
from engine.daemon.app import check_api_version
from engine.daemon.transfer import credentials_from_header
from engine.images import errors as image_errors
from engine.images.auth import Credentials


def request(query: str):
    return make_mocked_request("GET", f"/images/json?{query}")


@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), ("True", True), ("0", False),
                                        ("false", False), ("", False)])
def test_flags(raw: str, value: bool):
    assert params.flag(request(f"force={raw}"), "force") is value


def test_bad_flag_names_the_parameter():
    with pytest.raises(errors.BadParameter, match="'force'"):
        params.flag(request("force=maybe"), "force")
    assert params.flag(request(""), "force", default=True) is True


def test_filters_take_both_docker_shapes_and_refuse_unknown_names():
    modern = json.dumps({"dangling": ["true"], "label": ["a=b", "c"]})
    legacy = json.dumps({"dangling": {"true": True}, "label": {"a=b": True, "c": True}})
    allowed = frozenset({"dangling", "label"})
    for raw in (modern, legacy):
        got = params.filters(request("filters=" + urllib.parse.quote(raw)), allowed=allowed)
        assert got == {"dangling": ["true"], "label": ["a=b", "c"]}
    with pytest.raises(errors.BadParameter, match="invalid filter 'nope'"):
        params.filters(request("filters=" + json.dumps({"nope": ["x"]})), allowed=allowed)
    with pytest.raises(errors.BadParameter, match="not valid JSON"):
        params.filters(request("filters={oops"), allowed=allowed)
    with pytest.raises(errors.BadParameter):
        params.one_bool(["yes", "no"], "dangling")


@pytest.mark.parametrize("exc, status", [
    (image_errors.ImageNotFound("No such image: x"), 404),
    (image_errors.ImageConflict("conflict"), 409),
    (image_errors.InvalidReference("bad"), 400),
    (image_errors.RegistryUnavailable("down"), 502),
    (image_errors.AuthError("no"), 401),
    (errors.BadParameter("bad"), 400),
    (KeyError("x"), 404),
    (RuntimeError("bug"), 500),
])
def test_status_of(exc: Exception, status: int):
    assert errors.status_of(exc) == status
    assert errors.is_expected(exc) is (status != 500)


def test_build_errors_are_bad_requests():
    build_errors = pytest.importorskip("engine.build.errors")
    assert errors.status_of(build_errors.BuildError("Dockerfile:1: unknown instruction: FORM")) == 400


def test_error_messages_are_one_line():
    assert errors.error_body(ValueError("two\nlines")) == {"message": "two lines"}
    assert errors.stream_error("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}


def _auth(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_registry_auth_header():
    creds = credentials_from_header(_auth({"username": "u", "password": "p", "serveraddress": "reg.example:5000"}),
                                    default_host="other")
    assert creds == {"reg.example:5000": Credentials("u", "p")}
    legacy = credentials_from_header(_auth({"auth": base64.b64encode(b"me:secret").decode()}),
                                     default_host="https://index.docker.io/v1/")
    assert legacy == {"docker.io": Credentials("me", "secret")}
    assert credentials_from_header(_auth({}), default_host="x") == {}
    assert credentials_from_header(None, default_host="x") == {}
    with pytest.raises(errors.BadParameter, match="X-Registry-Auth"):
        credentials_from_header("!!!not-base64-json", default_host="x")
    with pytest.raises(errors.BadParameter, match="JSON object"):
        credentials_from_header(_auth(["a"]), default_host="x")  # type: ignore[arg-type]


@pytest.mark.parametrize("version, ok", [("1.24", True), ("1.43", True), ("1.12", False), ("1.50", False)])
def test_api_version_range(version: str, ok: bool):
    if ok:
        check_api_version(version)
    else:
        with pytest.raises(errors.BadParameter, match=r"too (old|new)"):
            check_api_version(version)
