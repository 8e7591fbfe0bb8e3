"""Write-only convenience fields Kubernetes folds into the stored form before it is saved."""

from __future__ import annotations

import base64
from typing import Any

from apiserver import errors


def secret_string_data(secret: dict[str, Any]) -> None:
    """``stringData`` is merged into ``data`` (base64), overriding equal keys, and never stored."""
    string_data = secret.pop("stringData", None)
    if not string_data:
        return
    if not isinstance(string_data, dict) or not all(isinstance(v, str) for v in string_data.values()):
        raise errors.bad_request("stringData must be a map of strings")
    data = secret.get("data")
    if not isinstance(data, dict):
        data = secret["data"] = {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(value.encode()).decode()
