"""What every step of one build shares (``Session``), the stage being built (``StageRun``) and what
a step hands the executor (``Plan``): its cache-key text and inputs digest, and how to run it on a
cache miss. Kept apart from the executor so the step modules can use these without import cycles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from engine.build.cache import BuildCache
from engine.build.context import SourceTree
from engine.build.layers import Workspace
from engine.build.parser import Dockerfile, Stage
from engine.build.state import State, StepResult
from engine.images.content import Lease
from engine.images.store import ImageStore


@dataclass
class Session:
    store: ImageStore
    dockerfile: Dockerfile
    context: SourceTree
    workspace: Workspace
    lease: Lease
    cache: BuildCache
    emit: Callable[[str], None]  # one progress line (no newline)
    network: str = "none"
    runtime: str = "crun"
    no_cache: bool = False
    build_args: Mapping[str, str] = field(default_factory=dict)
    meta_args: dict[str, str | None] = field(default_factory=dict)
    used_args: set[str] = field(default_factory=set)
    stages: dict[int, State] = field(default_factory=dict)  # finished stages

    @property
    def escape(self) -> str:
        return self.dockerfile.escape

    def predefined_env(self, declared: Mapping[str, object]) -> list[str]:
        """``K=v`` of proxy build args given to the build but not declared with ARG."""
        return [f"{k}={v}" for k, v in sorted(self.build_args.items()) if k in PREDEFINED_ARGS and k not in declared]


# build args every RUN may use without an ARG line; like Docker, they never appear in the history
PREDEFINED_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy"}
    | {"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
)


@dataclass
class StageRun:
    stage: Stage
    state: State
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in this stage
    cmd_set: bool = False

    def substitution_env(self) -> dict[str, str]:
        """Variables for ``$X`` in instructions: ARG values, overridden by ENV (as Docker)."""
        env = {k: v for k, v in self.args.items() if v is not None}
        env.update(self.state.env())
        return env

    def build_arg_env(self) -> list[str]:
        """``K=v`` of the ARGs a RUN sees that ENV does not override, sorted (Docker's ``|N`` prefix)."""
        env = self.state.env()
        return sorted(f"{k}={v}" for k, v in self.args.items() if v is not None and k not in env)


@dataclass(frozen=True)
class Plan:
    text: str  # the step after substitution: part of the cache key
    execute: Callable[[], Awaitable[StepResult]]
    inputs: str = ""  # digest of the step's inputs (COPY/ADD sources)
    label: str = ""  # what to print while it runs (" ---> Running in ...")
