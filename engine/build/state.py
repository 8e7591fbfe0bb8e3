"""The image a build stage has produced so far: config section, layers, history, and its identity.

A ``State`` is what Docker's legacy builder keeps as an intermediate image: each step turns one
state into the next by a ``StepResult`` (a new config section, one history entry, at most one new
layer). Its ``id`` is a digest of everything that defines the image (base, config, layers, history),
so it is stable across rebuilds as long as every step was a cache hit; the cache keys steps by it.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.images import mediatypes as mt
from engine.images.snapshots import chain_ids

SCRATCH = "scratch"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Layer:
    digest: str  # of the blob
    size: int
    diff_id: str
    media_type: str = mt.OCI_LAYER_GZIP

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "diff_id": self.diff_id, "media_type": self.media_type}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Layer:
        return cls(digest=doc["digest"], size=int(doc["size"]), diff_id=doc["diff_id"], media_type=doc["media_type"])


@dataclass(frozen=True)
class StepResult:
    config: dict[str, Any]  # the whole config section after the step
    history: dict[str, Any]  # the step's history entry
    layer: Layer | None = None
    author: str | None = None  # MAINTAINER

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "history": self.history,
            "layer": self.layer.to_json() if self.layer else None,
            "author": self.author,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> StepResult:
        layer = doc.get("layer")
        return cls(
            config=doc["config"],
            history=doc["history"],
            layer=Layer.from_json(layer) if layer else None,
            author=doc.get("author"),
        )


def scratch_config() -> dict[str, Any]:
    """The config section of ``FROM scratch`` (Docker gives it a default PATH)."""
    return {"Env": [DEFAULT_PATH_ENV], "Cmd": None, "WorkingDir": "", "Entrypoint": None, "User": ""}


@dataclass
class State:
    base: str  # SCRATCH, or the base image id
    config: dict[str, Any]
    layers: list[Layer] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    platform: dict[str, str] = field(default_factory=dict)  # architecture, os (and variant) of the base
    author: str | None = None
    created: str = ""  # the base image's creation time (for an image with no steps of its own)
    steps: int = 0  # how many steps this build applied

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def chain(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def id(self) -> str:
        doc = {"base": self.base, "config": self.config, "diff_ids": self.diff_ids, "history": self.history}
        if self.author:
            doc["author"] = self.author
        return "sha256:" + hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def apply(self, result: StepResult) -> State:
        """The state after ``result``; ``self`` is left unchanged."""
        return State(
            base=self.base,
            config=copy.deepcopy(result.config),
            layers=[*self.layers, result.layer] if result.layer else list(self.layers),
            history=[*self.history, result.history],
            platform=dict(self.platform),
            author=result.author if result.author is not None else self.author,
            created=self.created,
            steps=self.steps + 1,
        )

    def env(self) -> dict[str, str]:
        """The config's Env as a mapping (later entries win, as in a process environment)."""
        out: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            key, _, value = item.partition("=")
            out[key] = value
        return out
