"""Integrity of the schema tables, and their JSON names against the official Python client's models."""

import re

import kubernetes.client
import pytest

from apiserver.protobuf import decode
from apiserver.protobuf.fieldtypes import INLINE
from apiserver.protobuf.schemas import KINDS, MESSAGES

# Messages with no model class of their own in the Python client: JSON scalars (times, Quantity,
# IntOrString, raw JSON), list wrappers, structs only ever inlined, and the envelope.
NO_CLIENT_MODEL = {
    "meta.Time", "meta.MicroTime", "meta.FieldsV1", "resource.Quantity", "intstr.IntOrString",
    "runtime.RawExtension", "runtime.Unknown", "runtime.TypeMeta", "authentication.ExtraValue",
    "core.VolumeSource", "core.EphemeralContainerCommon", "core.ProbeHandler", "networking.IngressRuleValue",
}
ENVELOPE_ONLY = {"runtime.Unknown", "runtime.TypeMeta", "runtime.RawExtension"}


def referenced(spec: str) -> str | None:
    """The message a type string refers to, if any."""
    base = re.sub(r"^(\[\]|map\[[^\]]*\])", "", spec)
    return base if "." in base else None


def test_every_type_string_compiles() -> None:
    for message, fields in MESSAGES.items():
        for number, (_name, spec) in fields.items():
            assert number > 0, message
            decode.compile_type(spec)  # KeyError on an unknown scalar or message


def test_every_kind_has_a_message() -> None:
    assert KINDS
    for kind, message in KINDS.items():
        assert message in MESSAGES, kind


def test_no_dead_messages() -> None:
    reached: set[str] = set()
    stack = list(KINDS.values())
    while stack:
        message = stack.pop()
        if message in reached:
            continue
        reached.add(message)
        stack.extend(m for _n, spec in MESSAGES[message].values() if (m := referenced(spec)))
    assert set(MESSAGES) - reached == ENVELOPE_ONLY


def test_schema_graph_is_acyclic() -> None:
    """No recursive message types, so decoding depth is bounded by the schema, not by the input."""
    state: dict[str, str] = {}

    def visit(message: str, path: tuple[str, ...]) -> None:
        if state.get(message) == "done":
            return
        assert state.get(message) != "active", f"cycle: {' -> '.join((*path, message))}"
        state[message] = "active"
        for _name, spec in MESSAGES[message].values():
            if (child := referenced(spec)) is not None:
                visit(child, (*path, message))
        state[message] = "done"

    for message in MESSAGES:
        visit(message, ())


def json_names(message: str) -> list[str]:
    names = []
    for name, spec in MESSAGES[message].values():
        names.extend(json_names(spec) if name == INLINE else [name])
    return names


@pytest.mark.parametrize("message", sorted(MESSAGES))
def test_json_names_match_the_client_models(message: str) -> None:
    names = json_names(message)
    assert len(names) == len(set(names)), "duplicate JSON name"
    group, name = message.split(".")
    candidates = [f"V1{name}", f"{group.capitalize()}V1{name}", f"CoreV1{name}"]
    model = next((getattr(kubernetes.client, c) for c in candidates if hasattr(kubernetes.client, c)), None)
    if model is None:
        assert message in NO_CLIENT_MODEL
        return
    assert message not in NO_CLIENT_MODEL
    known = set(model.attribute_map.values()) | {"apiVersion", "kind"}
    assert set(names) <= known, sorted(set(names) - known)
