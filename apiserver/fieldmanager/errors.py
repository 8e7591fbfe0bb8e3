"""The field manager's two error types and the upstream wording of conflict messages.

``FieldManagerError`` is bad input (the API server answers 400/422). ``ApplyConflict`` is the 409
an apply gets when it would change fields another manager owns; kubectl prints its message and
adds its own advice, so the text follows kube-apiserver's, e.g.
``Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver.fieldmanager.fieldsets import Path, path_text


class FieldManagerError(ValueError):
    """An apply configuration or object whose fields cannot be interpreted."""


@dataclass(frozen=True)
class Conflict:
    """One field an apply would change that another manager entry owns."""

    manager: str
    operation: str
    api_version: str
    subresource: str
    path: Path

    @property
    def field(self) -> str:
        return path_text(self.path)

    @property
    def owner(self) -> str:
        """The manager as upstream names it: quoted, plus subresource and version of Update entries."""
        text = orjson.dumps(self.manager).decode()
        if self.subresource:
            text += f" with subresource {orjson.dumps(self.subresource).decode()}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


class ApplyConflict(Exception):
    """An apply refused because it changes fields owned by other managers (HTTP 409)."""

    def __init__(self, found: Sequence[Conflict]) -> None:
        self.details: list[Conflict] = list(found)
        #: (manager, field path such as ``.spec.replicas``)
        self.conflicts: list[tuple[str, str]] = [(c.manager, c.field) for c in self.details]
        super().__init__(self.message)

    @property
    def message(self) -> str:
        n = len(self.details)
        return f"Apply failed with {n} conflict{'' if n == 1 else 's'}: {self._body()}"

    def _body(self) -> str:
        if len(self.details) == 1:
            c = self.details[0]
            return f"conflict with {c.owner}: {c.field}"
        by_owner: dict[tuple[str, str, str, str], list[Conflict]] = {}
        for c in self.details:
            by_owner.setdefault((c.manager, c.operation, c.api_version, c.subresource), []).append(c)
        lines: list[str] = []
        for key in sorted(by_owner):
            group = by_owner[key]
            lines.append(f"conflicts with {group[0].owner}:")
            lines.extend(f"- {c.field}" for c in group)
        return "\n".join(lines)

    @property
    def causes(self) -> list[dict[str, Any]]:
        """``details.causes`` of the 409 Status, one per field."""
        return [{"type": "FieldManagerConflict", "message": f"conflict with {c.owner}", "field": c.field}
                for c in self.details]

    def __str__(self) -> str:
        return self.message
