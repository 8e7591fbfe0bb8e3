"""Tests of kubeconfig loading: embedded data, file references, tokens, merging, and clear errors."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml

from apiserver.pki import Pki, ensure_pki, write_admin_kubeconfig
from machinery.kubeconfig import ClusterConfig, KubeconfigError, load_kubeconfig


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(tmp_path / "data", hosts=[])


def _write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def _config(*, cluster: dict[str, Any], user: dict[str, Any] | None = None,
            context: dict[str, Any] | None = None, name: str = "c1", current: str | None = "c1") -> dict:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": f"{name}-cluster", "cluster": cluster}],
        "users": [{"name": f"{name}-user", "user": user or {}}],
        "contexts": [{"name": name, "context": {"cluster": f"{name}-cluster", "user": f"{name}-user",
                                                **(context or {})}}],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_round_trip_of_the_admin_kubeconfig(tmp_path: Path, pki: Pki) -> None:
    path = write_admin_kubeconfig(pki, tmp_path / "admin.yaml", server="https://127.0.0.1:6443/")
    cfg = load_kubeconfig(str(path))
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.context == "pinnace" and cfg.namespace == "default"
    assert cfg.ca_data == pki.ca_cert.read_bytes()
    assert cfg.client_cert_data == pki.admin_cert.read_bytes()
    assert cfg.client_key_data == pki.admin_key.read_bytes()
    assert cfg.headers() == {}
    ctx = cfg.ssl_context()
    assert ctx is not None and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert "BEGIN" not in repr(cfg)


def test_file_references_are_relative_to_the_kubeconfig(tmp_path: Path, pki: Pki,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _config(cluster={"server": "https://k:6443", "certificate-authority": "data/pki/ca.crt"},
                  user={"client-certificate": "data/pki/admin.crt",
                        "client-key": str(pki.admin_key)},  # absolute works too
                  context={"namespace": "team-a"})
    path = _write(tmp_path / "config", doc)
    monkeypatch.chdir("/")
    cfg = load_kubeconfig(path)
    assert cfg.ca_data == pki.ca_cert.read_bytes()
    assert cfg.client_cert_data == pki.admin_cert.read_bytes()
    assert cfg.client_key_data == pki.admin_key.read_bytes()
    assert cfg.namespace == "team-a"
    assert cfg.ssl_context() is not None  # the PEM pair really loads


def test_data_fields_win_over_files(tmp_path: Path, pki: Pki) -> None:
    ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    doc = _config(cluster={"server": "https://k", "certificate-authority-data": ca,
                           "certificate-authority": "does/not/exist"})
    assert load_kubeconfig(_write(tmp_path / "c", doc)).ca_data == pki.ca_cert.read_bytes()


def test_tokens_and_basic_auth(tmp_path: Path) -> None:
    doc = _config(cluster={"server": "https://k"}, user={"token": "abc.def"})
    assert load_kubeconfig(_write(tmp_path / "a", doc)).headers() == {"Authorization": "Bearer abc.def"}

    (tmp_path / "tok").write_text("from-file\n")
    doc = _config(cluster={"server": "https://k"}, user={"tokenFile": "tok"})
    cfg = load_kubeconfig(_write(tmp_path / "b", doc))
    assert cfg.headers() == {"Authorization": "Bearer from-file"}
    assert "from-file" not in repr(cfg)

    doc = _config(cluster={"server": "https://k"}, user={"username": "u", "password": "p"})
    expected = "Basic " + base64.b64encode(b"u:p").decode()
    assert load_kubeconfig(_write(tmp_path / "c", doc)).headers() == {"Authorization": expected}


def test_tls_variants() -> None:
    assert ClusterConfig(server="http://127.0.0.1:8080").ssl_context() is None
    ctx = ClusterConfig(server="https://k", insecure_skip_tls_verify=True).ssl_context()
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    with pytest.raises(KubeconfigError, match="TLS"):
        ClusterConfig(server="https://k", client_cert_data=b"junk", client_key_data=b"junk").ssl_context()
    with pytest.raises(KubeconfigError, match="TLS"):
        ClusterConfig(server="https://k", ca_data=b"-----BEGIN CERTIFICATE-----\nxx\n").ssl_context()


def test_insecure_skip_verify_from_file(tmp_path: Path) -> None:
    doc = _config(cluster={"server": "https://k", "insecure-skip-tls-verify": True})
    cfg = load_kubeconfig(_write(tmp_path / "c", doc))
    assert cfg.insecure_skip_tls_verify
    ctx = cfg.ssl_context()
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE


def test_server_without_scheme_means_https(tmp_path: Path) -> None:
    doc = _config(cluster={"server": "10.0.0.1:6443"})
    assert load_kubeconfig(_write(tmp_path / "c", doc)).server == "https://10.0.0.1:6443"


def test_context_choice(tmp_path: Path) -> None:
    doc = _config(cluster={"server": "https://one"}, name="one")
    two = _config(cluster={"server": "https://two"}, name="two")
    for section in ("clusters", "users", "contexts"):
        doc[section] += two[section]
    path = _write(tmp_path / "c", doc | {"current-context": "two"})
    assert load_kubeconfig(path).server == "https://two"
    assert load_kubeconfig(path, context="one").server == "https://one"


def test_kubeconfig_env_merges_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _write(tmp_path / "first", _config(cluster={"server": "https://first"}, current=None))
    second = _write(tmp_path / "second", _config(cluster={"server": "https://second"}))
    missing = tmp_path / "missing"
    monkeypatch.setenv("KUBECONFIG", f"{missing}:{first}:{second}")
    cfg = load_kubeconfig()
    # current-context comes from the second file, the cluster of that name from the first
    assert cfg.context == "c1" and cfg.server == "https://first"


def test_default_path_is_home_kube_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeconfigError, match="no kubeconfig found"):
        load_kubeconfig()
    _write(tmp_path / ".kube" / "config", _config(cluster={"server": "https://home"}))
    assert load_kubeconfig().server == "https://home"


_BAD: dict[str, tuple[Any, str]] = {
    "not yaml": ("a: [b", "not valid YAML"),
    "not a mapping": ("- 1\n- 2\n", "not a mapping"),
    "no current context": (_config(cluster={"server": "https://k"}, current=None), "no current-context"),
    "unknown context": (_config(cluster={"server": "https://k"}, current="zz"), "'zz' not found"),
    "no server": (_config(cluster={}), "no server"),
    "bad scheme": (_config(cluster={"server": "ftp://k"}), "not an http"),
    "bad base64": (_config(cluster={"server": "https://k", "certificate-authority-data": "@@"}),
                   "not valid base64"),
    "cert without key": (_config(cluster={"server": "https://k"}, user={"client-certificate-data": "AA=="}),
                         "together"),
    "missing file": (_config(cluster={"server": "https://k", "certificate-authority": "nope.crt"}),
                     "cannot read"),
    "exec plugin": (_config(cluster={"server": "https://k"}, user={"exec": {"command": "x"}}),
                    "not supported"),
    "clusters not a list": ({"clusters": {"a": 1}, "current-context": "x"}, "must be a list"),
    "entry without name": ({"clusters": [{"cluster": {}}]}, "needs a name"),
    "insecure not a bool": (_config(cluster={"server": "https://k", "insecure-skip-tls-verify": "no"}),
                            "true or false"),
    "token not a string": (_config(cluster={"server": "https://k"}, user={"token": 5}), "must be a string"),
}


@pytest.mark.parametrize("case", sorted(_BAD))
def test_errors_are_clear(tmp_path: Path, case: str) -> None:
    doc, message = _BAD[case]
    path = _write(tmp_path / "config", doc)
    with pytest.raises(KubeconfigError, match=message):
        load_kubeconfig(path)


def test_missing_references_are_reported(tmp_path: Path) -> None:
    doc = _config(cluster={"server": "https://k"})
    doc["contexts"][0]["context"]["cluster"] = "other"
    with pytest.raises(KubeconfigError, match="cluster 'other' not found"):
        load_kubeconfig(_write(tmp_path / "a", doc))
    doc = _config(cluster={"server": "https://k"})
    doc["contexts"][0]["context"]["user"] = "other"
    with pytest.raises(KubeconfigError, match="user 'other' not found"):
        load_kubeconfig(_write(tmp_path / "b", doc))
    with pytest.raises(KubeconfigError, match="does not exist"):
        load_kubeconfig(tmp_path / "nothing-here")
    assert issubclass(KubeconfigError, ValueError)
