"""Docker config.json credentials and WWW-Authenticate challenges."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from engine.images.auth import Authenticator, Credentials, load_docker_config, normalise_host, parse_challenge
from engine.images.errors import ConfigError
from engine.images.transport import is_loopback


def test_load_docker_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw:with:colons").decode()},
                    "http://localhost:5000": {"username": "u", "password": "p"},
                    "quay.io": {},
                }
            }
        )
    )
    creds = load_docker_config(cfg)
    assert creds == {"docker.io": Credentials("hub", "pw:with:colons"), "localhost:5000": Credentials("u", "p")}
    assert load_docker_config(tmp_path / "missing.json") == {}


def test_bad_docker_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_docker_config(cfg)
    cfg.write_text(json.dumps({"auths": {"x.io": {"auth": "!!!"}}}))
    with pytest.raises(ConfigError, match="base64"):
        load_docker_config(cfg)


def test_explicit_credentials_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.io": {"username": "a", "password": "b"}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    auth = Authenticator({"https://r.io/": Credentials("c", "d")})
    assert auth.credentials_for("r.io") == Credentials("c", "d")
    assert Authenticator().credentials_for("R.IO") == Credentials("a", "b")
    assert Authenticator(use_docker_config=False).credentials_for("r.io") is None


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    assert parse_challenge("Bearer realm=http://x/token, service=y") == (
        "bearer",
        {"realm": "http://x/token", "service": "y"},
    )


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("http://Local:5000/x", "local:5000"),
    ],
)
def test_normalise_host(key: str, host: str) -> None:
    assert normalise_host(key) == host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:80", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("quay.io", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts_use_http(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
