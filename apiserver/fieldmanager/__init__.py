"""Field ownership (``metadata.managedFields``) and server-side apply.

Every write records which manager owns which fields: ``record_update`` for create/update/patch,
``apply`` for server-side apply, which also merges, prunes and detects conflicts. ``field_set``
gives the fieldsV1 set an object's fields make up. Field sets use the stored fieldsV1 shape
throughout (see ``fieldsets``); list behaviour comes from ``machinery.patch.merge_keys``.
"""

from __future__ import annotations

from typing import Any

from apiserver.fieldmanager.apply import apply
from apiserver.fieldmanager.errors import ApplyConflict, Conflict, FieldManagerError
from apiserver.fieldmanager.extract import fields_of
from apiserver.fieldmanager.update import record_update


def field_set(obj: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """The fieldsV1 set of every field of ``obj``, as an apply of ``obj`` would claim them."""
    return fields_of(obj, kind=kind, strict=False)


__all__ = ["ApplyConflict", "Conflict", "FieldManagerError", "apply", "field_set", "record_update"]
