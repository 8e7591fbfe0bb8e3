"""Merging our context into the user's kubeconfig (``pinnace up``) and taking it out (``pinnace down``)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from cli.user_kubeconfig import KubeconfigMergeError, merge, remove, user_kubeconfig_path


def cluster_config(server: str, *, name: str = "pinnace") -> dict:
    return {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": "Q0E="}}],
            "users": [{"name": f"{name}-admin", "user": {"client-certificate-data": "Y2VydA=="}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
            "current-context": name}


OTHER = {"apiVersion": "v1", "kind": "Config", "preferences": {"colors": True},
         "clusters": [{"name": "kind-x", "cluster": {"server": "https://10.0.0.1:6443"}}],
         "users": [{"name": "kind-x", "user": {"token": "t"}}],
         "contexts": [{"name": "kind-x", "context": {"cluster": "kind-x", "user": "kind-x", "namespace": "ns"}}],
         "current-context": "kind-x", "extensions": [{"name": "keep-me", "extension": {"a": 1}}]}


def names(config: dict, section: str) -> list[str]:
    return [e["name"] for e in config[section]]


def test_merge_keeps_other_entries_and_switches_context(tmp_path: Path) -> None:
    target = tmp_path / "config"
    target.write_text(yaml.safe_dump(OTHER))
    assert merge(target, cluster_config("https://127.0.0.1:6443")) == "pinnace"
    merged = yaml.safe_load(target.read_text())
    assert names(merged, "contexts") == ["kind-x", "pinnace"]
    assert names(merged, "clusters") == ["kind-x", "pinnace"]
    assert names(merged, "users") == ["kind-x", "pinnace-admin"]
    assert merged["current-context"] == "pinnace"
    assert merged["contexts"][0] == OTHER["contexts"][0]
    assert merged["extensions"] == OTHER["extensions"] and merged["preferences"] == {"colors": True}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_merge_again_replaces_rather_than_duplicates(tmp_path: Path) -> None:
    target = tmp_path / "config"
    merge(target, cluster_config("https://127.0.0.1:6443"))
    merge(target, cluster_config("https://127.0.0.1:7443"))
    merged = yaml.safe_load(target.read_text())
    assert names(merged, "clusters") == ["pinnace"]
    assert merged["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7443"


def test_merge_creates_missing_file_and_remove_deletes_it_again(tmp_path: Path) -> None:
    target = tmp_path / "home" / ".kube" / "config"
    merge(target, cluster_config("https://127.0.0.1:6443"))
    assert yaml.safe_load(target.read_text())["current-context"] == "pinnace"
    assert len(remove(target, context="pinnace")) == 3
    assert not target.exists()


@pytest.mark.parametrize("text", ["clusters: [unclosed", "- a list\n- not a mapping\n", "clusters: {a: 1}\n"])
def test_unreadable_kubeconfig_is_left_alone(tmp_path: Path, text: str) -> None:
    target = tmp_path / "config"
    target.write_text(text)
    with pytest.raises(KubeconfigMergeError):
        merge(target, cluster_config("https://127.0.0.1:6443"))
    assert target.read_text() == text


def test_remove_takes_out_only_our_entries(tmp_path: Path) -> None:
    target = tmp_path / "config"
    target.write_text(yaml.safe_dump(OTHER))
    merge(target, cluster_config("https://127.0.0.1:6443"))
    removed = remove(target, context="pinnace", server="https://127.0.0.1:6443")
    assert sorted(removed) == ["cluster pinnace", "context pinnace", "user pinnace-admin"]
    left = yaml.safe_load(target.read_text())
    assert names(left, "contexts") == ["kind-x"] and names(left, "users") == ["kind-x"]
    assert left["current-context"] == ""
    assert remove(target, context="pinnace") == []  # idempotent


def test_remove_leaves_a_context_of_another_server(tmp_path: Path) -> None:
    target = tmp_path / "config"
    merge(target, cluster_config("https://127.0.0.1:6443"))
    assert remove(target, context="pinnace", server="https://127.0.0.1:9999") == []
    assert names(yaml.safe_load(target.read_text()), "contexts") == ["pinnace"]


def test_remove_without_file_is_a_no_op(tmp_path: Path) -> None:
    assert remove(tmp_path / "absent", context="pinnace") == []
    assert not (tmp_path / "absent").exists()


def test_path_follows_kubeconfig_then_home(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert user_kubeconfig_path({"KUBECONFIG": f"{first}:{second}", "HOME": "/x"}) == first
    assert user_kubeconfig_path({"KUBECONFIG": f":{second}", "HOME": "/x"}) == second
    assert user_kubeconfig_path({"HOME": str(tmp_path)}) == tmp_path / ".kube" / "config"
