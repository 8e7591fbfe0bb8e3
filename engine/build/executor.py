"""Runs a parsed Dockerfile: stages in order, every instruction as a cached step, then the image.

For each instruction a planner (``PLANNERS``: metadata table, ARG, RUN, COPY/ADD, WORKDIR) works out
the step's text after substitution and its inputs; the step's cache key is that plus the parent
state's id. On a hit the stored result is applied (" ---> Using cache"), otherwise the plan runs
and its result is stored. The final stage's state becomes the image through ``store.write_image``
(an unchanged rebuild gives byte-identical config and manifest, so the same image id and no new
layer). Progress lines follow Docker's legacy builder ("Step 2/5 : RUN ...", " ---> 3f2a...").
Any failure below (store, mounts, runtime, bad values) surfaces as one ``BuildError`` line,
prefixed with the Dockerfile line when the instruction itself is at fault.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable

from engine.build.cache import step_key
from engine.build.errors import BuildError, at_line
from engine.build.filesystem import image_state, plan_copy, plan_run, plan_workdir
from engine.build.imageconfig import history_entry, image_config, nop
from engine.build.lex import LexError, expand, name_values
from engine.build.metadata import HANDLERS, MetaStep
from engine.build.parser import Instruction, Stage, parse_instruction
from engine.build.session import PREDEFINED_ARGS, Plan, Session, StageRun
from engine.build.state import SCRATCH, State, StepResult, scratch_config
from engine.images.digest import short_id
from engine.images.errors import ImageError, ImageNotFound
from engine.images.store import Image
from engine.runtime.errors import SpecError

Planner = Callable[..., Awaitable[Plan]]  # (session, *, run, instr)


async def _plan_meta(session: Session, *, run: StageRun, instr: Instruction) -> Plan:
    step = MetaStep(
        instr=instr,
        config=copy.deepcopy(run.state.config),
        env=run.substitution_env(),
        escape=session.escape,
        cmd_set=run.cmd_set,
    )
    created_by = nop(HANDLERS[instr.keyword](step))
    run.cmd_set = step.cmd_set

    async def execute() -> StepResult:
        return StepResult(config=step.config, history=history_entry(created_by, empty_layer=True), author=step.author)

    return Plan(text=created_by, execute=execute)


async def _plan_arg(session: Session, *, run: StageRun, instr: Instruction) -> Plan:
    pairs = name_values(instr.args, keyword="ARG", escape=session.escape, allow_bare=True)
    env = run.substitution_env()
    shown = []
    for name, raw in pairs:
        default = expand(raw, env, escape=session.escape) if raw is not None else None
        if name in session.build_args:
            value: str | None = session.build_args[name]
        elif default is not None:
            value = default
        else:
            value = session.meta_args.get(name)
        session.used_args.add(name)
        run.args[name] = value
        shown.append(name if default is None else f"{name}={default}")
    created_by = nop("ARG " + " ".join(shown))
    config = run.state.config

    async def execute() -> StepResult:
        return StepResult(config=config, history=history_entry(created_by, empty_layer=True))

    return Plan(text=created_by, execute=execute)


async def _plan_run(session: Session, *, run: StageRun, instr: Instruction) -> Plan:
    return plan_run(session, run=run, instr=instr)


async def _plan_workdir(session: Session, *, run: StageRun, instr: Instruction) -> Plan:
    return plan_workdir(session, run=run, instr=instr)


PLANNERS: dict[str, Planner] = {
    **dict.fromkeys(HANDLERS, _plan_meta),
    "ARG": _plan_arg,
    "RUN": _plan_run,
    "COPY": plan_copy,
    "ADD": plan_copy,
    "WORKDIR": _plan_workdir,
}


class Executor:
    def __init__(self, session: Session, *, stages: list[Stage], extra: list[Instruction]) -> None:
        self.session = session
        self.stages = stages
        self.extra = extra  # synthetic steps for the last stage (--label)
        self.total = sum(1 + len(s.instructions) for s in stages) + len(extra)
        self.number = 0

    def _line_error(self, instr: Instruction, exc: Exception) -> BuildError:
        return at_line(self.session.dockerfile.filename, instr.line, str(exc))

    async def run(self) -> State:
        self._meta_args()
        state: State | None = None
        for stage in self.stages:
            state = await self._stage(stage, extra=self.extra if stage is self.stages[-1] else [])
            self.session.stages[stage.index] = state
        assert state is not None
        return state

    def _meta_args(self) -> None:
        session = self.session
        for instr in session.dockerfile.meta_args:
            env = {k: v for k, v in session.meta_args.items() if v is not None}
            try:
                pairs = name_values(instr.args, keyword="ARG", escape=session.escape, allow_bare=True)
                for name, raw in pairs:
                    default = expand(raw, env, escape=session.escape) if raw is not None else None
                    session.meta_args[name] = session.build_args.get(name, default)
                    session.used_args.add(name)
            except LexError as exc:
                raise self._line_error(instr, exc) from None

    async def _stage(self, stage: Stage, *, extra: list[Instruction]) -> State:
        session = self.session
        assert stage.source is not None
        self.number += 1
        session.emit(f"Step {self.number}/{self.total} : {stage.source.original}")
        run = StageRun(stage=stage, state=await self._base(stage))
        triggers = list(run.state.config.get("OnBuild") or [])
        if triggers:
            run.state.config["OnBuild"] = None
            session.emit(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            for text in triggers:
                trigger = parse_instruction(text, line=stage.line, filename=session.dockerfile.filename)
                await self._step(run, trigger)
        for instr in [*stage.instructions, *extra]:
            self.number += 1
            session.emit(f"Step {self.number}/{self.total} : {instr.original}")
            await self._step(run, instr)
        return run.state

    async def _base(self, stage: Stage) -> State:
        session = self.session
        assert stage.source is not None
        env = {k: v for k, v in session.meta_args.items() if v is not None}
        try:
            name = expand(stage.base, env, escape=session.escape)
            platform = expand(stage.platform, env, escape=session.escape) if stage.platform else None
        except LexError as exc:
            raise self._line_error(stage.source, exc) from None
        if platform and platform != session.store.platform:
            raise self._line_error(
                stage.source, ValueError(f"FROM --platform={platform}: only {session.store.platform} is built here")
            )
        index = session.dockerfile.stage_index(name)
        if index is not None and index < stage.index:
            state = copy.deepcopy(session.stages[index])
        elif name.lower() == SCRATCH:
            return State(base=SCRATCH, config=scratch_config())
        else:
            try:
                state = await image_state(session, name)
            except ImageNotFound:
                raise self._line_error(
                    stage.source,
                    ValueError(f"FROM {name}: no such image in the store (the builder does not pull; pull it first)"),
                ) from None
            except ImageError as exc:
                raise self._line_error(stage.source, ValueError(f"FROM {name}: {exc}")) from None
        session.emit(f" ---> {short_id(state.base if state.steps == 0 else state.id)}")
        return state

    async def _step(self, run: StageRun, instr: Instruction) -> None:
        session = self.session
        try:
            plan = await PLANNERS[instr.keyword](session, run=run, instr=instr)
        except (LexError, SpecError, ValueError) as exc:
            raise self._line_error(instr, exc) from None
        except BuildError as exc:  # bad arguments (missing source, unknown stage...): name the line too
            if str(exc).startswith(f"{session.dockerfile.filename}:"):
                raise
            raise self._line_error(instr, exc) from None
        parent = run.state
        chain = parent.chain
        key = step_key(parent=parent.id, text=plan.text, inputs=plan.inputs)
        cached = None
        if not session.no_cache:
            parent_chain = chain[-1] if chain else None
            cached = await asyncio.to_thread(session.cache.get, key, parent_chain=parent_chain, lease=session.lease)
        if cached is not None:
            session.emit(" ---> Using cache")
            result = cached
        else:
            if plan.label:
                session.emit(plan.label)
            try:
                result = await plan.execute()
            except SpecError as exc:
                raise self._line_error(instr, exc) from None
            await asyncio.to_thread(session.cache.put, key, result)
        run.state = parent.apply(result)
        if result.layer is not None:
            session.lease.add(result.layer.digest, run.state.chain[-1])
        session.emit(f" ---> {short_id(run.state.id)}")


def unused_build_args(session: Session) -> list[str]:
    return sorted(k for k in session.build_args if k not in session.used_args and k not in PREDEFINED_ARGS)


async def commit_image(session: Session, state: State, *, tags: list[str]) -> Image:
    """Write the final state as an image named ``tags`` (the base itself if the build added nothing)."""
    store = session.store
    if state.steps == 0:
        if state.base == SCRATCH:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        for tag in tags:
            await asyncio.to_thread(store.tag, state.base, tag)
        return await asyncio.to_thread(store.resolve, tags[0] if tags else state.base)
    config = image_config(state, default_platform=store.platform)
    layers = [layer.descriptor() for layer in state.layers]
    return await asyncio.to_thread(store.write_image, config=config, layers=layers, names=tags)
