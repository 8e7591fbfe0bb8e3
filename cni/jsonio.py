"""JSON for the plugin process: CPython's C scanner and encoder, without importing ``json``.

A CNI plugin is a fresh process per call, so its start-up is part of every pod's ADD and DEL.
``import json`` pulls in ``re`` (and with it ``enum``, ``functools``...), about 6 ms here — a quarter of
the reference plugin's whole ADD — and ``orjson`` imports ``dataclasses``/``uuid`` (20 ms). The C
accelerator ``_json`` that ``json`` itself uses needs none of that, so this module drives it directly
and falls back to the ``json`` module where ``_json`` is missing (other interpreters).

Only what CNI needs: objects, arrays, strings, numbers, booleans, null. NaN/Infinity are refused both
ways (they are not JSON), and a value must fill the whole input apart from white space.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - not CPython
    _json = None

_WHITESPACE = " \t\n\r"


class JsonError(ValueError):
    """The text is not one JSON value, or an object holds something JSON cannot carry."""


def _refuse_constant(name: str) -> object:
    raise JsonError(f"{name} is not valid JSON")


def _refuse_type(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads from its ``JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_refuse_constant)
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_ScanContext()) if _json is not None else None
# args: markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan
_encode = (_json.make_encoder(None, _refuse_type, _json.encode_basestring_ascii, None, ":", ",",
                              False, False, False) if _json is not None else None)


def loads(data: bytes | str) -> object:
    """Parse one JSON document; raise JsonError (never StopIteration or UnicodeError) otherwise."""
    try:
        text = data.decode() if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8: {exc}") from None
    if _scan is None:  # pragma: no cover - not CPython
        import json

        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise JsonError(str(exc)) from None
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        try:
            value, end = _scan(text, start)
        except SystemError:
            # the C scanner raises json.decoder.JSONDecodeError only if json.decoder is already loaded
            # (it looks in sys.modules, it does not import); load it for the error's sake and rescan
            import json.decoder

            value, end = _scan(text, start)
    except StopIteration as stop:
        raise JsonError(f"expected a JSON value at character {stop.value}") from None
    except RecursionError:
        raise JsonError("nested too deeply") from None
    except ValueError as exc:
        raise JsonError(str(exc)) from None
    if text[end:].strip(_WHITESPACE):
        raise JsonError(f"extra data after the JSON value at character {end}")
    return value


def dumps(value: object) -> str:
    """Compact JSON text (ASCII, no spaces); raise JsonError for values JSON cannot hold."""
    try:
        if _encode is None:  # pragma: no cover - not CPython
            import json

            return json.dumps(value, separators=(",", ":"), allow_nan=False)
        return "".join(_encode(value, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        raise JsonError(str(exc)) from None
