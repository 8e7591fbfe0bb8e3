"""The user's kubeconfig: merge our cluster's context in (``pinnace up``), take it out (``pinnace down``).

As kind does, ``up`` adds one cluster, one user and one context to the user's own kubeconfig (the
first file of ``$KUBECONFIG`` if set, else ``~/.kube/config``), replacing entries of the same names,
keeping every other entry, and makes that context current; so plain ``kubectl`` reaches the cluster
at once. ``down`` removes exactly those entries again, and the file itself when nothing else is left
in it (``up`` created it). Files are written to a temp name and renamed
(mode 0600), so a crash never leaves a half-written kubeconfig, and a file we cannot parse is never
overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

SECTIONS = ("clusters", "users", "contexts")


class KubeconfigMergeError(ValueError):
    """The user's kubeconfig cannot be read as a kubeconfig; it is left as it is."""


def user_kubeconfig_path(env: Mapping[str, str] | None = None) -> Path:
    """Where kubectl would write: the first entry of $KUBECONFIG, else ~/.kube/config."""
    env = os.environ if env is None else env
    first = next((p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p), None)
    if first:
        return Path(first).expanduser()
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".kube" / "config"


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KubeconfigMergeError(f"{path} is not valid YAML ({exc.__class__.__name__}); not changing it") from None
    if not isinstance(config, dict):
        raise KubeconfigMergeError(f"{path} is not a kubeconfig (a YAML mapping); not changing it")
    for section in SECTIONS:
        entries = config.get(section)
        if entries is None:
            config[section] = []
        elif not isinstance(entries, list):
            raise KubeconfigMergeError(f"{path}: {section} is not a list; not changing it")
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    config.setdefault("preferences", {})
    return config


def _write(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)
    temp.replace(path)


def _names(source: Mapping[str, Any], section: str) -> set[str]:
    return {e.get("name") for e in source.get(section) or [] if isinstance(e, dict)}


def merge(target: Path, source: Mapping[str, Any]) -> str:
    """Put every cluster/user/context of ``source`` into ``target``, set its current context; that name."""
    context = source.get("current-context")
    if not context:
        raise KubeconfigMergeError("the cluster's kubeconfig names no current-context")
    config = _load(target)
    for section in SECTIONS:
        replaced = _names(source, section)
        kept = [e for e in config[section] if not (isinstance(e, dict) and e.get("name") in replaced)]
        config[section] = kept + [dict(e) for e in source.get(section) or []]
    config["current-context"] = context
    _write(target, config)
    return str(context)


def _server_of(config: Mapping[str, Any], cluster: object) -> object:
    entry = next((e for e in config["clusters"] if isinstance(e, dict) and e.get("name") == cluster), None)
    return ((entry or {}).get("cluster") or {}).get("server")


def remove(target: Path, *, context: str, server: str | None = None) -> list[str]:
    """Take ``context`` and the cluster and user it names out of ``target``; what was removed.

    With ``server``, only if the context's cluster is that API server (another cluster's context of
    the same name is left alone)."""
    if not target.exists():
        return []
    config = _load(target)
    entry = next((e for e in config["contexts"] if isinstance(e, dict) and e.get("name") == context), None)
    if entry is None:
        return []
    body = entry.get("context") or {}
    if server is not None and _server_of(config, body.get("cluster")) != server:
        return []
    doomed = {"contexts": context, "clusters": body.get("cluster"), "users": body.get("user")}
    removed = []
    for section, name in doomed.items():
        before = len(config[section])
        config[section] = [e for e in config[section] if not (isinstance(e, dict) and e.get("name") == name)]
        if len(config[section]) < before:
            removed.append(f"{section[:-1]} {name}")
    if config.get("current-context") == context:
        config["current-context"] = ""
    if _is_empty(config):  # nothing but what ``merge`` put there: the file was ours
        target.unlink()
    else:
        _write(target, config)
    return removed


def _is_empty(config: Mapping[str, Any]) -> bool:
    skeleton = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": "",
                **{section: [] for section in SECTIONS}}
    return all(skeleton.get(key, object()) == value for key, value in config.items())
