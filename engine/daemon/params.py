"""Reading Docker Engine API query parameters: booleans, JSON-valued ones and ``filters``.

Docker is lenient in what it takes (``1``/``true``/``True`` for booleans; ``filters`` either as
``{"key": ["v1", "v2"]}`` or the legacy ``{"key": {"v1": true}}``) and strict in what it refuses:
a malformed value is a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from engine.daemon.errors import BadParameter

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def flag(request: web.Request, name: str, *, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadParameter(f"invalid value for {name!r}: {raw!r} is not a boolean")


def json_object(request: web.Request, name: str) -> dict[str, Any]:
    """A JSON-object parameter (``buildargs``, ``labels``); {} when absent or empty."""
    raw = request.query.get(name, "")
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadParameter(f"invalid value for {name!r}: not valid JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadParameter(f"invalid value for {name!r}: expected a JSON object")
    return value


def filters(request: web.Request, *, allowed: frozenset[str]) -> dict[str, list[str]]:
    """The ``filters`` parameter as name -> values, refusing names not in ``allowed``."""
    raw = json_object(request, "filters")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key not in allowed:
            raise BadParameter(f"invalid filter '{key}'")
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = value
        else:
            raise BadParameter(f"invalid filter '{key}': expected a list of strings")
    return out


def one_bool(values: list[str], name: str) -> bool:
    """A boolean filter (``dangling``): exactly one value, true or false."""
    if len(values) != 1 or values[0].lower() not in _TRUE | _FALSE - {""}:
        raise BadParameter(f"invalid filter '{name}={','.join(values)}': expected true or false")
    return values[0].lower() in _TRUE
