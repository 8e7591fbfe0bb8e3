"""Validation: the per-type checks the API server runs after defaulting, returned as Status causes.

kubectl prints an Invalid error's causes verbatim (``The Deployment "web" is invalid: spec.selector:
Required value``), and tools match on them, so every check here mirrors upstream Kubernetes
(apimachinery's util/validation and pkg/apis/{core,apps,batch,coordination,discovery}/validation):
same field paths, same reasons, same message text — including how Go renders the offending value
(``"name"`` for strings, ``map[string]string{"app":"web"}`` for label maps).

A cause is a dict ``{"reason": ..., "message": ..., "field": ...}`` where the message is the part
after the field (``Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain ...``). Validators take
``(obj, old)`` — ``old`` is None on create — and return a list of causes, empty when valid. They
never raise: values of the wrong JSON type become causes too. ``object_meta`` is separate because
the server runs it for every kind; kind validators check everything else.

Performance matters for object_meta and configmap (run on every create of a benchmark): regexes are
compiled once and the common, valid case takes the shortest path.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import re
import zoneinfo
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

Cause = dict
Validator = Callable[[dict, dict | None], list[Cause]]

# --- causes and Go-style value rendering ------------------------------------------------------------


class GoText(str):
    """A value already rendered the way Go's ``%#v`` prints it (structs, typed maps)."""


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               '"': '\\"', "\\": "\\\\"}


def go_quote(text: str) -> str:
    """Go's strconv.Quote: double quotes, backslash escapes, printable Unicode kept as is."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _go_string_map(value: dict) -> str:
    if not value:
        return "map[string]string{}"
    body = ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in sorted(value.items()))
    return f"map[string]string{{{body}}}"


def go_value(value: Any) -> str:
    """Render a bad value as an upstream field error does (``%q`` for strings, ``%#v`` otherwise)."""
    if isinstance(value, GoText):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return _go_string_map(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _labels_text(labels: Any) -> GoText:
    """A (possibly missing) label map as ``%#v`` shows a map[string]string."""
    if labels is None:
        return GoText("map[string]string(nil)")
    return GoText(go_value(labels))


def _cause(reason: str, field: str, message: str) -> Cause:
    return {"reason": reason, "message": message, "field": field}


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def invalid(field: str, value: Any, detail: str) -> Cause:
    return _cause("FieldValueInvalid", field, _with_detail(f"Invalid value: {go_value(value)}", detail))


def required(field: str, detail: str = "") -> Cause:
    return _cause("FieldValueRequired", field, _with_detail("Required value", detail))


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(str(v)) for v in supported)
    return _cause("FieldValueNotSupported", field, f"Unsupported value: {go_value(value)}: {detail}")


def duplicate(field: str, value: Any) -> Cause:
    return _cause("FieldValueDuplicate", field, f"Duplicate value: {go_value(value)}")


def forbidden(field: str, detail: str) -> Cause:
    return _cause("FieldValueForbidden", field, _with_detail("Forbidden", detail))


def too_long(field: str, limit: int) -> Cause:
    return _cause("FieldValueTooLong", field, f"Too long: must have at most {limit} bytes")


def too_many(field: str, actual: int, limit: int) -> Cause:
    return _cause("FieldValueTooMany", field, f"Too many: {actual}: must have at most {limit} items")


def not_found(field: str, value: Any) -> Cause:
    return _cause("FieldValueNotFound", field, f"Not found: {go_value(value)}")


def type_invalid(field: str, value: Any, expected: str) -> Cause:
    shown = go_value(value) if isinstance(value, str | GoText) else json.dumps(value, default=str)
    return _cause("FieldValueTypeInvalid", field, f"Invalid value: {shown}: must be of type {expected}")


def _guarded(fn: Validator) -> Validator:
    """Last line of defence: a malformed object yields a cause, never a traceback."""

    @functools.wraps(fn)
    def run(obj: dict, old: dict | None = None) -> list[Cause]:
        if not isinstance(obj, dict):
            return [type_invalid("", GoText(type(obj).__name__), "object")]
        try:
            return fn(obj, old if isinstance(old, dict) else None)
        except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
            return [_cause("FieldValueTypeInvalid", "", f"Invalid value: malformed object: {exc}")]

    return run


# --- typed access -----------------------------------------------------------------------------------

_TYPE_NAMES = {dict: "object", list: "array", str: "string", int: "integer", bool: "boolean"}


def _get(causes: list[Cause], path: str, value: Any, kind: type) -> Any:
    """``value`` when it has JSON type ``kind`` (None stays None); otherwise a type cause and None."""
    if value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    causes.append(type_invalid(path, value, _TYPE_NAMES[kind]))
    return None


def _map(causes: list[Cause], path: str, value: Any) -> dict:
    return _get(causes, path, value, dict) or {}


def _list(causes: list[Cause], path: str, value: Any) -> list:
    return _get(causes, path, value, list) or []


def _str(causes: list[Cause], path: str, value: Any) -> str:
    return _get(causes, path, value, str) or ""


def _int(causes: list[Cause], path: str, value: Any) -> int | None:
    return _get(causes, path, value, int)


def _dig(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...``, None as soon as a level is missing or not an object."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _meta(obj: dict, key: str) -> Any:
    """``obj.metadata[key]``, None when metadata is missing or not an object."""
    return _dig(obj, "metadata", key)


def _hashable(value: Any) -> Any:
    """A set/dict key for any JSON value (lists and objects by their JSON text)."""
    return value if isinstance(value, str | int | float | bool | None) else json.dumps(value, default=str)


def _dict_items(causes: list[Cause], path: str, value: Any) -> Iterable[tuple[str, dict]]:
    """(indexed path, element) for each dict element of a list field."""
    for i, item in enumerate(_list(causes, path, value)):
        item_path = f"{path}[{i}]"
        if isinstance(item, dict):
            yield item_path, item
        else:
            causes.append(type_invalid(item_path, item, "object"))


# --- formats (apimachinery pkg/util/validation) ------------------------------------------------------


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    listed = "".join(("" if i == 0 else " or ") + f"'{ex}', " for i, ex in enumerate(examples))
    return f"{message} (e.g. {listed}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT)
_PERCENT_RE = re.compile(_PERCENT_FMT)
_PORT_NAME_CHARS_RE = re.compile("[-a-z0-9]+")
_HAS_LETTER_RE = re.compile("[a-z]")

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63

_DNS1123_LABEL_MSG = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character", _DNS1123_LABEL_FMT, "my-name", "123-abc")
_DNS1123_SUBDOMAIN_MSG = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character", _DNS1123_SUBDOMAIN_FMT, "example.com")
_DNS1035_LABEL_MSG = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character", _DNS1035_LABEL_FMT, "my-name", "abc-123")
_QNAME_MSG = _regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character", _QNAME_FMT, "MyName", "my.name", "123-abc")
_QNAME_SHAPE_MSG = ("a qualified name " + _QNAME_MSG
                    + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
_LABEL_VALUE_MSG = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character", _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
_CONFIG_KEY_MSG = _regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'", _CONFIG_KEY_FMT,
    "key.name", "KEY_NAME", "key-name")
_PERCENT_MSG = _regex_error(
    "a valid percent string must be a numeric string followed by an ending '%'", _PERCENT_FMT, "1%", "93%")
_ENV_NAME_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
_PORT_RANGE_MSG = _range_error(1, 65535)
IS_NEGATIVE_MSG = "must be greater than or equal to 0"
FIELD_IMMUTABLE_MSG = "field is immutable"


def is_dns1123_label(value: str) -> list[str]:
    errs = [_max_len(DNS1123_LABEL_MAX)] if len(value) > DNS1123_LABEL_MAX else []
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errs.append("must not contain dots" if _DNS1123_SUBDOMAIN_RE.fullmatch(value) else _DNS1123_LABEL_MSG)
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [_max_len(DNS1123_SUBDOMAIN_MAX)] if len(value) > DNS1123_SUBDOMAIN_MAX else []
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_DNS1123_SUBDOMAIN_MSG)
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [_max_len(DNS1035_LABEL_MAX)] if len(value) > DNS1035_LABEL_MAX else []
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(_DNS1035_LABEL_MSG)
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label keys, annotation keys, finalizers: ``[prefix/]name`` with a DNS subdomain prefix."""
    if len(value) <= QUALIFIED_NAME_MAX and _QNAME_RE.fullmatch(value):
        return []
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [_QNAME_SHAPE_MSG]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + _max_len(QUALIFIED_NAME_MAX))
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + _QNAME_MSG)
    return errs


def is_label_value(value: str) -> list[str]:
    errs = [_max_len(LABEL_VALUE_MAX)] if len(value) > LABEL_VALUE_MAX else []
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


def is_config_map_key(value: str) -> list[str]:
    errs = [_max_len(DNS1123_SUBDOMAIN_MAX)] if len(value) > DNS1123_SUBDOMAIN_MAX else []
    if not _CONFIG_KEY_RE.fullmatch(value):
        errs.append(_CONFIG_KEY_MSG)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [_PORT_RANGE_MSG]


def is_valid_port_name(port: str) -> list[str]:
    errs = [_max_len(15)] if len(port) > 15 else []
    if not _PORT_NAME_CHARS_RE.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_env_var_name(value: str) -> list[str]:
    """The relaxed rule (on by default since 1.32): printable ASCII except '='."""
    if not value:
        return ["environment variable name must be non-empty"]
    if not (value.isascii() and value.isprintable()) or "=" in value:
        return [_ENV_NAME_MSG]
    return []


_IPV4_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP as Go's sloppy parser reads it (IPv4 octets may carry leading zeros); None if invalid."""
    if not isinstance(value, str) or "%" in value:
        return None
    match = _IPV4_RE.fullmatch(value)
    if match:
        octets = [int(part) for part in match.groups()]
        return ipaddress.IPv4Address(bytes(octets)) if max(octets) <= 255 else None
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:
        return None


def _valid_ip(causes: list[Cause], path: str, value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    ip = parse_ip(value)
    if ip is None:
        causes.append(invalid(path, value, IP_MSG))
    return ip


def _non_special_ip(causes: list[Cause], path: str, value: str,
                    ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Endpoints may not point at unspecified, loopback or link-local addresses."""
    if ip.is_unspecified:
        causes.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        causes.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and not ip.is_multicast:
        causes.append(invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    link_local_multicast = (ipaddress.ip_network("224.0.0.0/24") if ip.version == 4
                            else ipaddress.ip_network("ff02::/16"))
    if ip in link_local_multicast:
        causes.append(invalid(path, value,
                              "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))


def _names(causes: list[Cause], path: str, value: str, checker: Callable[[str], list[str]]) -> None:
    for msg in checker(value):
        causes.append(invalid(path, value, msg))


# --- names ------------------------------------------------------------------------------------------

_NAME_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "subdomain": is_dns1123_subdomain,
    "label": is_dns1123_label,
    "dns1035": is_dns1035_label,
}
_NAME_RULE_BY_KIND = {"Namespace": "label", "Service": "dns1035", "StatefulSet": "label"}


def name_rule(kind: str) -> str:
    """Which name rule a kind's metadata.name follows (upstream's per-type ValidateNameFunc)."""
    return _NAME_RULE_BY_KIND.get(kind, "subdomain")


def _mask_trailing_dash(name: str) -> str:
    """generateName may end in '-' (a suffix follows); upstream swaps it for a letter before checking."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


@functools.lru_cache(maxsize=4096)
def _namespace_errors(name: str) -> tuple[str, ...]:
    return tuple(is_dns1123_label(name))


# --- quantities --------------------------------------------------------------------------------------

QUANTITY_FORMAT_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
QUANTITY_SUFFIX_MSG = "unable to parse quantity's suffix"
_QUANTITY_RE = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_EXPONENT_RE = re.compile(r"[eE]([-+]?\d+)")
_QUANTITY_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}


def parse_quantity(value: Any) -> Fraction:
    """A resource.Quantity ("500m", "1Gi", 2) as an exact number; ValueError with upstream's text."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(QUANTITY_FORMAT_MSG)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(QUANTITY_FORMAT_MSG)
        return Fraction(repr(value))
    match = _QUANTITY_RE.fullmatch(value)
    if not match or not _NUMBER_RE.fullmatch(match.group(1)):
        raise ValueError(QUANTITY_FORMAT_MSG)
    number, suffix = Fraction(match.group(1)), match.group(2)
    scale = _QUANTITY_SUFFIXES.get(suffix)
    if scale is None:
        exponent = _EXPONENT_RE.fullmatch(suffix)
        if not exponent:
            raise ValueError(QUANTITY_SUFFIX_MSG)
        scale = Fraction(10) ** int(exponent.group(1))
    return number * scale


def _quantity_text(value: Any) -> str:
    return value if isinstance(value, str) else go_value(value)


# --- labels, annotations and selectors --------------------------------------------------------------

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def _labels(causes: list[Cause], path: str, labels: Any) -> None:
    """Label maps (metadata.labels, selectors, nodeSelector): keys qualified names, values label values."""
    for key, value in _map(causes, path, labels).items():
        if not (len(key) <= QUALIFIED_NAME_MAX and _QNAME_RE.fullmatch(key)):
            _names(causes, path, key, is_qualified_name)
        if value is None:
            continue  # Go decodes null in a map[string]string as ""
        if not isinstance(value, str):
            causes.append(type_invalid(f"{path}[{key}]", value, "string"))
        elif len(value) > LABEL_VALUE_MAX or not _LABEL_VALUE_RE.fullmatch(value):
            _names(causes, path, value, is_label_value)


def _annotations(causes: list[Cause], path: str, annotations: Any) -> None:
    total = 0
    for key, value in _map(causes, path, annotations).items():
        if not (len(key) <= QUALIFIED_NAME_MAX and _QNAME_RE.fullmatch(key)):
            for msg in is_qualified_name(key.lower()):
                causes.append(invalid(path, key, msg))
        if value is None:
            value = ""
        if not isinstance(value, str):
            causes.append(type_invalid(f"{path}[{key}]", value, "string"))
            continue
        total += len(key) + (len(value) if value.isascii() else len(value.encode()))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))


_SELECTOR_OPS_WITH_VALUES = ("In", "NotIn")
_SELECTOR_OPS_WITHOUT_VALUES = ("Exists", "DoesNotExist")


def _label_selector(causes: list[Cause], path: str, selector: dict) -> None:
    _labels(causes, f"{path}.matchLabels", selector.get("matchLabels"))
    for expr_path, expr in _dict_items(causes, f"{path}.matchExpressions", selector.get("matchExpressions")):
        operator, values = expr.get("operator"), _list(causes, f"{expr_path}.values", expr.get("values"))
        if operator in _SELECTOR_OPS_WITH_VALUES:
            if not values:
                causes.append(required(f"{expr_path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in _SELECTOR_OPS_WITHOUT_VALUES:
            if values:
                causes.append(forbidden(f"{expr_path}.values",
                                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(invalid(f"{expr_path}.operator", operator, "not a valid selector operator"))
        _names(causes, f"{expr_path}.key", _str(causes, f"{expr_path}.key", expr.get("key")), is_qualified_name)
        for j, value in enumerate(values):
            if isinstance(value, str):
                _names(causes, f"{expr_path}.values[{j}]", value, is_label_value)


def selector_matches(selector: Any, labels: Any) -> bool | None:
    """Whether a LabelSelector selects a label set; None when the selector cannot be evaluated.
    A missing selector selects nothing, an empty one everything (as upstream)."""
    if selector is None:
        return False
    if not isinstance(selector, dict):
        return None
    labels = labels if isinstance(labels, dict) else {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(expressions, list):
        return None
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        if not isinstance(expr, dict):
            return None
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if operator == "In":
            if not values:
                return None
            if not present or labels[key] not in values:
                return False
        elif operator == "NotIn":
            if not values:
                return None
            if present and labels[key] in values:
                return False
        elif operator == "Exists":
            if not present:
                return False
        elif operator == "DoesNotExist":
            if present:
                return False
        else:
            return None
    return True


def _selector_text(selector: dict) -> GoText:
    """A LabelSelector as ``%#v`` renders the internal struct in upstream messages."""
    labels = selector.get("matchLabels")
    labels_text = _labels_text(labels) if isinstance(labels, dict) or labels is None else go_value(labels)
    expressions = selector.get("matchExpressions")
    exprs_text = ("[]v1.LabelSelectorRequirement(nil)" if not expressions
                  else "[]v1.LabelSelectorRequirement{" + go_value(expressions) + "}")
    return GoText(f"v1.LabelSelector{{MatchLabels:{labels_text}, MatchExpressions:{exprs_text}}}")


# --- object metadata --------------------------------------------------------------------------------

_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def _finalizer(causes: list[Cause], path: str, name: Any) -> None:
    if not isinstance(name, str):
        causes.append(type_invalid(path, name, "string"))
        return
    _names(causes, path, name, is_qualified_name)
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        causes.append(invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified"))


def _owner_references(causes: list[Cause], path: str, refs: Any) -> None:
    controllers = []
    for _, ref in _dict_items(causes, path, refs):
        api_version, kind = ref.get("apiVersion") or "", ref.get("kind") or ""
        if not isinstance(api_version, str) or not api_version.rsplit("/", 1)[-1]:
            causes.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                causes.append(invalid(f"{path}.{key}", ref.get(key) or "", "must not be empty"))
        if api_version == "v1" and kind == "Event":
            causes.append(invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            controllers.append(f"{kind}/{ref.get('name')}")
    if len(controllers) > 1:
        causes.append(invalid(path, refs, "Only one reference can have Controller set to true. Found \"true\" in "
                                          f"references for {controllers[0]} and {controllers[1]}"))


def object_meta(obj: dict, *, namespaced: bool, name_rule: str = "subdomain") -> list[Cause]:
    """Validate metadata as upstream's ValidateObjectMeta does for every kind on create and update."""
    causes: list[Cause] = []
    if not isinstance(obj, dict):
        return [type_invalid("", GoText(type(obj).__name__), "object")]
    meta = _map(causes, "metadata", obj.get("metadata"))
    check = _NAME_CHECKS[name_rule]
    name = _str(causes, "metadata.name", meta.get("name"))
    generate_name = _str(causes, "metadata.generateName", meta.get("generateName"))
    if generate_name:
        for msg in check(_mask_trailing_dash(generate_name)):
            causes.append(invalid("metadata.generateName", generate_name, msg))
    if not name:
        if not generate_name:
            causes.append(required("metadata.name", "name or generateName is required"))
    elif not (name_rule == "subdomain" and len(name) <= DNS1123_SUBDOMAIN_MAX
              and _DNS1123_SUBDOMAIN_RE.fullmatch(name)):
        _names(causes, "metadata.name", name, check)

    namespace = _str(causes, "metadata.namespace", meta.get("namespace"))
    if namespaced:
        if not namespace:
            causes.append(required("metadata.namespace"))
        else:
            for msg in _namespace_errors(namespace):
                causes.append(invalid("metadata.namespace", namespace, msg))
    elif namespace:
        causes.append(forbidden("metadata.namespace", "not allowed on this type"))

    generation = _int(causes, "metadata.generation", meta.get("generation"))
    if generation is not None and generation < 0:
        causes.append(invalid("metadata.generation", generation, IS_NEGATIVE_MSG))
    if meta.get("labels"):
        _labels(causes, "metadata.labels", meta["labels"])
    if meta.get("annotations"):
        _annotations(causes, "metadata.annotations", meta["annotations"])
    if meta.get("ownerReferences"):
        _owner_references(causes, "metadata.ownerReferences", meta["ownerReferences"])
    if meta.get("finalizers"):
        finalizers = _list(causes, "metadata.finalizers", meta["finalizers"])
        for finalizer in finalizers:
            _finalizer(causes, "metadata.finalizers", finalizer)
        if "orphan" in finalizers and "foregroundDeletion" in finalizers:
            causes.append(invalid("metadata.finalizers", finalizers,
                                  "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


# --- pod spec (core/v1) -----------------------------------------------------------------------------

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_TOLERATION_OPERATORS = ("Equal", "Exists")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_MAX_INT32 = 2147483647
_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_STANDARD_RESOURCES = _CONTAINER_RESOURCES | frozenset({
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
})
#: every key of a Volume that names a volume source
_VOLUME_SOURCES = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
})


def _enum(causes: list[Cause], path: str, value: Any, allowed: tuple[str, ...]) -> None:
    """An enumerated string field that defaulting always fills: "" is Required, others NotSupported."""
    if value is None or value == "":
        causes.append(required(path))
    elif value not in allowed:
        causes.append(not_supported(path, value, allowed))


def _port_num_or_name(causes: list[Cause], path: str, port: Any) -> None:
    if isinstance(port, bool):
        causes.append(type_invalid(path, port, "integer or string"))
    elif isinstance(port, int):
        for msg in is_valid_port_num(port):
            causes.append(invalid(path, port, msg))
    elif isinstance(port, str):
        for msg in is_valid_port_name(port):
            causes.append(invalid(path, port, msg))
    elif port is not None:
        causes.append(type_invalid(path, port, "integer or string"))


def _nonnegative(causes: list[Cause], path: str, value: Any) -> None:
    number = _int(causes, path, value)
    if number is not None and number < 0:
        causes.append(invalid(path, number, IS_NEGATIVE_MSG))


def _is_extended_resource(name: str) -> bool:
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


def _resource_name(causes: list[Cause], path: str, name: str) -> None:
    errors = is_qualified_name(name)
    for msg in errors:
        causes.append(invalid(path, name, msg))
    if "/" not in name:
        if not errors and name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
            causes.append(invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            causes.append(invalid(path, name, "must be a standard resource for containers"))


def _resource_list(causes: list[Cause], path: str, resources: Any) -> dict[str, Fraction]:
    values: dict[str, Fraction] = {}
    for name, raw in _map(causes, path, resources).items():
        item_path = f"{path}[{name}]"
        _resource_name(causes, item_path, name)
        try:
            value = parse_quantity(raw)
        except ValueError as exc:
            causes.append(invalid(item_path, raw, str(exc)))
            continue
        values[name] = value
        if value < 0:
            causes.append(invalid(item_path, _quantity_text(raw), IS_NEGATIVE_MSG))
        if _is_extended_resource(name) and value.denominator != 1:
            causes.append(invalid(item_path, GoText(_quantity_text(raw)), "must be an integer"))
    return values


def _resources(causes: list[Cause], path: str, resources: Any) -> None:
    resources = _map(causes, path, resources)
    limits_raw = _map(causes, f"{path}.limits", resources.get("limits"))
    limits = _resource_list(causes, f"{path}.limits", limits_raw)
    requests_raw = _map(causes, f"{path}.requests", resources.get("requests"))
    requests = _resource_list(causes, f"{path}.requests", requests_raw)
    for name, value in requests.items():
        overcommit = not _is_extended_resource(name) and not name.startswith("hugepages-")
        if name in limits:
            text, limit_text = _quantity_text(requests_raw[name]), _quantity_text(limits_raw[name])
            if not overcommit and value != limits[name]:
                causes.append(invalid(f"{path}.requests", text, f"must be equal to {name} limit of {limit_text}"))
            elif value > limits[name]:
                causes.append(invalid(f"{path}.requests", text,
                                      f"must be less than or equal to {name} limit of {limit_text}"))
        elif not overcommit:
            causes.append(required(f"{path}.limits", "Limit must be set for non overcommitable resources"))


def _container_ports(causes: list[Cause], path: str, ports: Any) -> None:
    names: set[str] = set()
    for port_path, port in _dict_items(causes, path, ports):
        name = _str(causes, f"{port_path}.name", port.get("name"))
        if name:
            messages = is_valid_port_name(name)
            for msg in messages:
                causes.append(invalid(f"{port_path}.name", name, msg))
            if not messages and name in names:
                causes.append(duplicate(f"{port_path}.name", name))
            names.add(name)
        container_port = _int(causes, f"{port_path}.containerPort", port.get("containerPort"))
        if not container_port:
            causes.append(required(f"{port_path}.containerPort"))
        else:
            for msg in is_valid_port_num(container_port):
                causes.append(invalid(f"{port_path}.containerPort", container_port, msg))
        host_port = _int(causes, f"{port_path}.hostPort", port.get("hostPort"))
        if host_port:
            for msg in is_valid_port_num(host_port):
                causes.append(invalid(f"{port_path}.hostPort", host_port, msg))
        _enum(causes, f"{port_path}.protocol", port.get("protocol"), _PROTOCOLS)


def _env(causes: list[Cause], path: str, env: Any) -> None:
    for var_path, var in _dict_items(causes, path, env):
        name = _str(causes, f"{var_path}.name", var.get("name"))
        if not name:
            causes.append(required(f"{var_path}.name"))
        else:
            _names(causes, f"{var_path}.name", name, is_env_var_name)
        source = var.get("valueFrom")
        if source is None:
            continue
        source = _map(causes, f"{var_path}.valueFrom", source)
        count = sum(1 for key in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                    if source.get(key) is not None)
        if count == 0:
            causes.append(invalid(f"{var_path}.valueFrom", "", "must specify one of: `fieldRef`, "
                                  "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif var.get("value"):
            causes.append(invalid(f"{var_path}.valueFrom", "", "may not be specified when `value` is not empty"))
        elif count > 1:
            causes.append(invalid(f"{var_path}.valueFrom", "", "may not have more than one field specified at a time"))


def _volume_mounts(causes: list[Cause], path: str, mounts: Any, volumes: set[str]) -> None:
    mount_paths: set[str] = set()
    for mount_path, mount in _dict_items(causes, path, mounts):
        name = _str(causes, f"{mount_path}.name", mount.get("name"))
        if not name:
            causes.append(required(f"{mount_path}.name"))
        if name not in volumes:
            causes.append(not_found(f"{mount_path}.name", name))
        target = _str(causes, f"{mount_path}.mountPath", mount.get("mountPath"))
        if not target:
            causes.append(required(f"{mount_path}.mountPath"))
        if target in mount_paths:
            causes.append(invalid(f"{mount_path}.mountPath", target, "must be unique"))
        mount_paths.add(target)


def _probe(causes: list[Cause], path: str, probe: Any, *, liveness_like: bool) -> None:
    if probe is None:
        return
    probe = _map(causes, path, probe)
    handlers = [key for key in _PROBE_HANDLERS if probe.get(key) is not None]
    if not handlers:
        causes.append(required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        causes.append(forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        _nonnegative(causes, f"{path}.{key}", probe.get(key))
    if liveness_like and probe.get("successThreshold") not in (None, 1):
        causes.append(invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1"))
    for key in ("httpGet", "tcpSocket"):
        handler = probe.get(key)
        if isinstance(handler, dict):
            _port_num_or_name(causes, f"{path}.{key}.port", handler.get("port"))


def _container(causes: list[Cause], path: str, container: dict, volumes: set[str], *, init: bool) -> None:
    name = _str(causes, f"{path}.name", container.get("name"))
    if not name:
        causes.append(required(f"{path}.name"))
    else:
        _names(causes, f"{path}.name", name, is_dns1123_label)
    if not _str(causes, f"{path}.image", container.get("image")):
        causes.append(required(f"{path}.image"))
    policy = container.get("terminationMessagePolicy")
    if policy is None or policy == "":
        causes.append(required(f"{path}.terminationMessagePolicy"))
    elif policy not in _TERMINATION_MESSAGE_POLICIES:
        causes.append(not_supported(f"{path}.terminationMessagePolicy", policy, _TERMINATION_MESSAGE_POLICIES))
    _container_ports(causes, f"{path}.ports", container.get("ports"))
    _env(causes, f"{path}.env", container.get("env"))
    _volume_mounts(causes, f"{path}.volumeMounts", container.get("volumeMounts"), volumes)
    _enum(causes, f"{path}.imagePullPolicy", container.get("imagePullPolicy"), _PULL_POLICIES)
    _resources(causes, f"{path}.resources", container.get("resources"))
    restart = container.get("restartPolicy")
    sidecar = init and restart == "Always"
    if not init and restart is not None:
        causes.append(forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
    elif init and restart is not None and restart != "Always":
        causes.append(not_supported(f"{path}.restartPolicy", restart, ("Always",)))
    if init and not sidecar:
        for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if container.get(key) is not None:
                causes.append(forbidden(f"{path}.{key}",
                                        "may not be set for init containers without restartPolicy=Always"))
    else:
        for key in _PROBES:
            _probe(causes, f"{path}.{key}", container.get(key), liveness_like=key != "readinessProbe")


def _containers(causes: list[Cause], path: str, items: Any, volumes: set[str], names: set[str], *,
                init: bool) -> None:
    containers = list(_dict_items(causes, path, items))
    if not init and not containers:
        causes.append(required(path))
        return
    for item_path, container in containers:
        _container(causes, item_path, container, volumes, init=init)
        name = container.get("name")
        if isinstance(name, str) and name:
            if name in names:
                causes.append(duplicate(f"{item_path}.name", name))
            names.add(name)


def _volumes(causes: list[Cause], path: str, items: Any) -> set[str]:
    names: set[str] = set()
    for volume_path, volume in _dict_items(causes, path, items):
        name = _str(causes, f"{volume_path}.name", volume.get("name"))
        if not name:
            causes.append(required(f"{volume_path}.name"))
        else:
            _names(causes, f"{volume_path}.name", name, is_dns1123_label)
            if name in names:
                causes.append(duplicate(f"{volume_path}.name", name))
            names.add(name)
        sources = [key for key in volume if key in _VOLUME_SOURCES and volume[key] is not None]
        if not sources:
            causes.append(required(volume_path, "must specify a volume type"))
        elif len(sources) > 1:
            causes.append(forbidden(f"{volume_path}.{sources[1]}", "may not specify more than 1 volume type"))
    return names


def _tolerations(causes: list[Cause], path: str, items: Any) -> None:
    for item_path, toleration in _dict_items(causes, path, items):
        key = _str(causes, f"{item_path}.key", toleration.get("key"))
        operator = toleration.get("operator") or ""
        value = _str(causes, f"{item_path}.value", toleration.get("value"))
        effect = toleration.get("effect") or ""
        if key:
            _names(causes, f"{item_path}.key", key, is_qualified_name)
        elif operator != "Exists":
            causes.append(invalid(f"{item_path}.operator", operator,
                                  "operator must be Exists when `key` is empty, which means \"match all values "
                                  "and all keys\""))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(invalid(f"{item_path}.effect", effect,
                                  "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            errors = is_label_value(value)
            if errors:
                causes.append(invalid(f"{item_path}.operator", value, ";".join(errors)))
        elif operator == "Exists":
            if value:
                causes.append(invalid(f"{item_path}.operator", value,
                                      "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(not_supported(f"{item_path}.operator", operator, _TOLERATION_OPERATORS))
        if effect and effect not in _TAINT_EFFECTS:
            causes.append(not_supported(f"{item_path}.effect", effect, _TAINT_EFFECTS))


def _optional_name(causes: list[Cause], path: str, value: Any, checker: Callable[[str], list[str]]) -> None:
    name = _str(causes, path, value)
    if name:
        _names(causes, path, name, checker)


def _pod_spec(causes: list[Cause], path: str, spec: dict, *, is_pod: bool) -> None:
    if spec.get("terminationGracePeriodSeconds") is None:
        causes.append(required(f"{path}.terminationGracePeriodSeconds"))
    else:
        _int(causes, f"{path}.terminationGracePeriodSeconds", spec["terminationGracePeriodSeconds"])
    volumes = _volumes(causes, f"{path}.volumes", spec.get("volumes"))
    names: set[str] = set()
    _containers(causes, f"{path}.containers", spec.get("containers"), volumes, names, init=False)
    _containers(causes, f"{path}.initContainers", spec.get("initContainers"), volumes, names, init=True)
    if spec.get("hostNetwork") is True:
        for container_path, container in _dict_items(causes, f"{path}.containers", spec.get("containers")):
            for port_path, port in _dict_items(causes, f"{container_path}.ports", container.get("ports")):
                host_port, container_port = port.get("hostPort") or 0, port.get("containerPort")
                if (is_pod or host_port) and host_port != container_port:
                    causes.append(invalid(f"{port_path}.hostPort", host_port,
                                          "must match `containerPort` when `hostNetwork` is true"))
    _enum(causes, f"{path}.restartPolicy", spec.get("restartPolicy"), _RESTART_POLICIES)
    dns_policy = spec.get("dnsPolicy")
    _enum(causes, f"{path}.dnsPolicy", dns_policy, _DNS_POLICIES)
    if dns_policy == "None":
        dns_config = spec.get("dnsConfig")
        if not isinstance(dns_config, dict):
            causes.append(required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
        elif not dns_config.get("nameservers"):
            causes.append(required(f"{path}.dnsConfig.nameservers",
                                   "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if spec.get("nodeSelector"):
        _labels(causes, f"{path}.nodeSelector", spec["nodeSelector"])
    _optional_name(causes, f"{path}.serviceAccountName", spec.get("serviceAccountName"), is_dns1123_subdomain)
    _optional_name(causes, f"{path}.nodeName", spec.get("nodeName"), is_dns1123_subdomain)
    _optional_name(causes, f"{path}.hostname", spec.get("hostname"), is_dns1123_label)
    _optional_name(causes, f"{path}.subdomain", spec.get("subdomain"), is_dns1123_label)
    _optional_name(causes, f"{path}.priorityClassName", spec.get("priorityClassName"), is_dns1123_subdomain)
    deadline = _int(causes, f"{path}.activeDeadlineSeconds", spec.get("activeDeadlineSeconds"))
    if deadline is not None and not 1 <= deadline <= _MAX_INT32:
        causes.append(invalid(f"{path}.activeDeadlineSeconds", deadline, _range_error(1, _MAX_INT32)))
    if spec.get("tolerations"):
        _tolerations(causes, f"{path}.tolerations", spec["tolerations"])
    if is_pod:
        for list_key in ("containers", "initContainers"):
            for item_path, container in _dict_items([], f"{path}.{list_key}", spec.get(list_key)):
                image = container.get("image")
                if isinstance(image, str) and image != image.strip():
                    causes.append(invalid(f"{item_path}.image", image, "must not have leading or trailing whitespace"))


def _pod_template(causes: list[Cause], path: str, template: Any) -> dict:
    """Validate a PodTemplateSpec at ``path`` (e.g. spec.template); returns it as a dict."""
    template = _map(causes, path, template)
    meta = _map(causes, f"{path}.metadata", template.get("metadata"))
    if meta.get("labels"):
        _labels(causes, f"{path}.labels", meta["labels"])
    if meta.get("annotations"):
        _annotations(causes, f"{path}.annotations", meta["annotations"])
    spec = _map(causes, f"{path}.spec", template.get("spec"))
    _pod_spec(causes, f"{path}.spec", spec, is_pod=False)
    if spec.get("ephemeralContainers"):
        causes.append(forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template"))
    return template


def _template_labels(template: dict) -> Any:
    meta = template.get("metadata")
    return meta.get("labels") if isinstance(meta, dict) else None


# --- pod updates -------------------------------------------------------------------------------------

POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:  # keys of mixed types cannot be sorted
        return json.dumps(value, default=str)


def _diff_lines(old: Any, new: Any, path: str, out: list[str]) -> None:
    """A short, stable listing of what changed between two JSON values (for Forbidden messages)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            _diff_lines(old.get(key), new.get(key), f"{path}.{key}" if path else key, out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff_lines(a, b, f"{path}[{i}]", out)
    elif old != new:
        out.append(f"  {path}: {_json_text(old)} -> {_json_text(new)}")


def _with_old_images(containers: Any, old_containers: Any) -> Any:
    if not isinstance(containers, list) or not isinstance(old_containers, list):
        return containers
    merged = []
    for i, container in enumerate(containers):
        if isinstance(container, dict) and i < len(old_containers) and isinstance(old_containers[i], dict):
            container = {**container, "image": old_containers[i].get("image")}
        merged.append(container)
    return merged


def _toleration_key(toleration: Any) -> Any:
    if not isinstance(toleration, dict):
        return toleration
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}


def _pod_update(obj: dict, old: dict) -> list[Cause]:
    causes: list[Cause] = []
    spec, old_spec = obj.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return causes
    mutable = dict(spec)
    for key in ("containers", "initContainers"):
        if key in mutable:
            mutable[key] = _with_old_images(mutable[key], old_spec.get(key))
    old_deadline, new_deadline = old_spec.get("activeDeadlineSeconds"), spec.get("activeDeadlineSeconds")
    if isinstance(old_deadline, int) and old_deadline > 0:
        if new_deadline is None:
            causes.append(invalid("spec.activeDeadlineSeconds", None,
                                  "must not update from a positive integer to nil value"))
        elif isinstance(new_deadline, int) and new_deadline > old_deadline:
            causes.append(invalid("spec.activeDeadlineSeconds", new_deadline,
                                  "must be less than or equal to previous value"))
    mutable["activeDeadlineSeconds"] = old_deadline
    old_tolerations = old_spec.get("tolerations") if isinstance(old_spec.get("tolerations"), list) else []
    new_tolerations = spec.get("tolerations") if isinstance(spec.get("tolerations"), list) else []
    new_keys = [_toleration_key(t) for t in new_tolerations]
    if any(_toleration_key(t) not in new_keys for t in old_tolerations):
        causes.append(forbidden("spec.tolerations",
                                "existing toleration can not be modified except its tolerationSeconds"))
    mutable["tolerations"] = old_spec.get("tolerations")
    grace, old_grace = spec.get("terminationGracePeriodSeconds"), old_spec.get("terminationGracePeriodSeconds")
    if grace == 1 and isinstance(old_grace, int) and old_grace < 0:
        mutable["terminationGracePeriodSeconds"] = old_grace
    if not old_spec.get("nodeName"):
        mutable["nodeName"] = old_spec.get("nodeName")
    gates = spec.get("schedulingGates") if isinstance(spec.get("schedulingGates"), list) else []
    old_gates = old_spec.get("schedulingGates") if isinstance(old_spec.get("schedulingGates"), list) else []
    for i, gate in enumerate(gates):
        if gate not in old_gates:
            name = gate.get("name") if isinstance(gate, dict) else gate
            causes.append(forbidden(f"spec.schedulingGates[{i}].name",
                                    f"only deletion is allowed, but found new scheduling gate '{name}'"))
    mutable["schedulingGates"] = old_spec.get("schedulingGates")
    mutable["ephemeralContainers"] = old_spec.get("ephemeralContainers")
    normalized_old = {k: v for k, v in old_spec.items() if v is not None}
    normalized_new = {k: v for k, v in mutable.items() if v is not None}
    if normalized_new != normalized_old:
        lines: list[str] = []
        _diff_lines(normalized_old, normalized_new, "spec", lines)
        causes.append(forbidden("spec", POD_UPDATE_MSG + "\n" + "\n".join(lines)))
    return causes


# --- core/v1 kinds -----------------------------------------------------------------------------------


def nothing(obj: dict, old: dict | None) -> list[Cause]:
    """Kinds with nothing to check beyond object metadata."""
    return []


@_guarded
def namespace(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    for finalizer in _list(causes, "spec.finalizers", spec.get("finalizers")):
        _finalizer(causes, "spec.finalizers", finalizer)
    return causes


@_guarded
def pod(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    _pod_spec(causes, "spec", spec, is_pod=True)
    if old is not None:
        causes.extend(_pod_update(obj, old))
    return causes


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_SESSION_AFFINITIES = ("ClientIP", "None")
_IP_FAMILIES = ("IPv4", "IPv6")
_IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
_TRAFFIC_POLICIES = ("Cluster", "Local")
NODE_PORT_RANGE = (30000, 32767)
_MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
_CLIENT_IP = "when session affinity type is ClientIP"


def _service_port_text(protocol: Any, port: Any) -> GoText:
    return GoText(f'core.ServicePort{{Name:"", Protocol:{go_value(protocol)}, AppProtocol:(*string)(nil), '
                  f'Port:{go_value(port)}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}')


def _service_port(causes: list[Cause], path: str, port: dict, *, require_name: bool, names: set[str]) -> None:
    name = _str(causes, f"{path}.name", port.get("name"))
    if require_name and not name:
        causes.append(required(f"{path}.name"))
    elif name:
        _names(causes, f"{path}.name", name, is_dns1123_label)
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        names.add(name)
    number = _int(causes, f"{path}.port", port.get("port"))
    for msg in is_valid_port_num(number or 0):
        causes.append(invalid(f"{path}.port", number or 0, msg))
    _enum(causes, f"{path}.protocol", port.get("protocol"), _PROTOCOLS)
    _port_num_or_name(causes, f"{path}.targetPort", port.get("targetPort"))
    app_protocol = port.get("appProtocol")
    if isinstance(app_protocol, str):
        _names(causes, f"{path}.appProtocol", app_protocol, is_qualified_name)


def _service_cluster_ips(causes: list[Cause], spec: dict) -> None:
    """clusterIP / clusterIPs / ipFamilies / ipFamilyPolicy consistency (ValidateServiceClusterIPsRelatedFields)."""
    cluster_ip = _str(causes, "spec.clusterIP", spec.get("clusterIP"))
    cluster_ips = _list(causes, "spec.clusterIPs", spec.get("clusterIPs"))
    if cluster_ip:
        if not cluster_ips:
            causes.append(required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            causes.append(invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    elif cluster_ips:
        causes.append(invalid("spec.clusterIPs", cluster_ips, "must be empty when `clusterIP` is not specified"))
    seen: set[Any] = set()
    for i, family in enumerate(_list(causes, "spec.ipFamilies", spec.get("ipFamilies"))):
        if family not in _IP_FAMILIES:
            causes.append(not_supported(f"spec.ipFamilies[{i}]", family, _IP_FAMILIES))
        if isinstance(family, str) and family in seen:
            causes.append(duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family if isinstance(family, str) else None)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in _IP_FAMILY_POLICIES:
        causes.append(not_supported("spec.ipFamilyPolicy", policy, _IP_FAMILY_POLICIES))
    bad_ip = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                bad_ip = True
                causes.append(invalid("spec.clusterIPs", cluster_ips, "'None' must be the first and only value"))
            continue
        bad_ip = _valid_ip(causes, f"spec.clusterIPs[{i}]", ip) is None or bad_ip
    if len(cluster_ips) > 2:
        causes.append(invalid("spec.clusterIPs", cluster_ips, "may only hold up to 2 values"))
    if bad_ip:
        return
    parsed = [parse_ip(ip) for ip in cluster_ips if ip != "None"]
    if len(parsed) > 1 and len({ip.version for ip in parsed if ip is not None}) != len(parsed):
        causes.append(invalid("spec.clusterIPs", cluster_ips, "may specify no more than one IP for each IP family"))
    families = spec.get("ipFamilies") or []
    if cluster_ips and cluster_ips != ["None"] and isinstance(families, list):
        for i, ip in enumerate(parsed[: len(families)]):
            expected = families[i]
            if ip is not None and expected in _IP_FAMILIES and ip.version != (4 if expected == "IPv4" else 6):
                causes.append(invalid(f"spec.clusterIPs[{i}]", cluster_ips[i],
                                      f"expected an {expected} value as indicated by `ipFamilies[{i}]`"))


def _service_update(spec: dict, old_spec: dict) -> list[Cause]:
    """Cluster IPs may be added (e.g. set from "") but never changed or dropped once allocated."""
    causes: list[Cause] = []
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return causes
    new_ips, old_ips = spec.get("clusterIPs") or [], old_spec.get("clusterIPs") or []
    if not isinstance(new_ips, list) or not isinstance(old_ips, list):
        return causes  # a wrong type is reported by the create-time checks
    if new_ips == ["None"] and old_ips == ["None"]:
        return causes
    if len(new_ips) == len(old_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                causes.append(invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            causes.append(invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            causes.append(invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
        if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            causes.append(invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                  "must be set to 'SingleStack' when releasing the secondary clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        causes.append(invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
    return causes


def _session_affinity(causes: list[Cause], spec: dict) -> None:
    affinity = spec.get("sessionAffinity")
    _enum(causes, "spec.sessionAffinity", affinity, _SESSION_AFFINITIES)
    config = spec.get("sessionAffinityConfig")
    if affinity == "None" and config is not None:
        causes.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    elif affinity == "ClientIP":
        client = config.get("clientIP") if isinstance(config, dict) else None
        timeout = client.get("timeoutSeconds") if isinstance(client, dict) else None
        if not isinstance(config, dict):
            causes.append(required("spec.sessionAffinityConfig", _CLIENT_IP))
        elif not isinstance(client, dict):
            causes.append(required("spec.sessionAffinityConfig.clientIP", _CLIENT_IP))
        elif timeout is None:
            causes.append(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", _CLIENT_IP))
        elif not isinstance(timeout, int) or not 0 < timeout <= _MAX_CLIENT_IP_AFFINITY_SECONDS:
            causes.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                  f"must be greater than 0 and less than {_MAX_CLIENT_IP_AFFINITY_SECONDS}"))


def _service_traffic_policies(causes: list[Cause], spec: dict) -> None:
    service_type = spec.get("type")
    external = service_type in ("NodePort", "LoadBalancer") or (
        service_type == "ClusterIP" and bool(spec.get("externalIPs")))
    policy = spec.get("externalTrafficPolicy")
    if not external:
        if policy:
            causes.append(invalid("spec.externalTrafficPolicy", policy,
                                  "may only be set for externally-accessible services"))
    else:
        _enum(causes, "spec.externalTrafficPolicy", policy, _TRAFFIC_POLICIES)
    internal = spec.get("internalTrafficPolicy")
    if internal is None and service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        causes.append(required("spec.internalTrafficPolicy"))
    elif internal is not None and internal not in _TRAFFIC_POLICIES:
        causes.append(not_supported("spec.internalTrafficPolicy", internal, _TRAFFIC_POLICIES))


@_guarded
def service(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    service_type = spec.get("type")
    ports = list(_dict_items(causes, "spec.ports", spec.get("ports")))
    headless = spec.get("clusterIPs") == ["None"]
    if not ports and not headless and service_type != "ExternalName":
        causes.append(required("spec.ports"))
    if service_type in ("LoadBalancer", "NodePort") and headless:
        causes.append(invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {service_type} services"))
    elif service_type == "ExternalName":
        if spec.get("clusterIPs"):
            causes.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            causes.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            causes.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = _str(causes, "spec.externalName", spec.get("externalName")).removesuffix(".")
        if cname:
            _names(causes, "spec.externalName", cname, is_dns1123_subdomain)
        else:
            causes.append(required("spec.externalName"))
    names: set[str] = set()
    for port_path, port in ports:
        _service_port(causes, port_path, port, require_name=len(ports) > 1, names=names)
    if spec.get("selector") is not None:
        _labels(causes, "spec.selector", spec["selector"])
    _session_affinity(causes, spec)
    if service_type != "ExternalName":
        _service_cluster_ips(causes, spec)
    for i, ip in enumerate(_list(causes, "spec.externalIPs", spec.get("externalIPs"))):
        parsed = _valid_ip(causes, f"spec.externalIPs[{i}]", ip)
        if parsed is not None:
            _non_special_ip(causes, f"spec.externalIPs[{i}]", ip, parsed)
    _enum(causes, "spec.type", service_type, _SERVICE_TYPES)
    node_ports: set[tuple[Any, Any]] = set()
    service_ports: set[tuple[Any, Any]] = set()
    for port_path, port in ports:
        node_port, protocol = _hashable(port.get("nodePort")), _hashable(port.get("protocol"))
        if node_port:
            if service_type == "ClusterIP":
                causes.append(forbidden(f"{port_path}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif isinstance(node_port, int) and not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                causes.append(invalid(f"{port_path}.nodePort", node_port,
                                      "provided port is not in the valid range. The range of valid ports is "
                                      f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))
            if (protocol, node_port) in node_ports:
                causes.append(duplicate(f"{port_path}.nodePort", port.get("nodePort")))
            node_ports.add((protocol, node_port))
        key = (protocol, _hashable(port.get("port")))
        if key in service_ports:
            causes.append(duplicate(port_path, _service_port_text(port.get("protocol"), port.get("port"))))
        service_ports.add(key)
    if spec.get("allocateLoadBalancerNodePorts") is not None and service_type != "LoadBalancer":
        causes.append(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        causes.append(required("allocateLoadBalancerNodePorts"))
    _service_traffic_policies(causes, spec)
    if old is not None and isinstance(old.get("spec"), dict):
        causes.extend(_service_update(spec, old["spec"]))
    return causes


def _endpoint_port(causes: list[Cause], path: str, port: dict, *, require_name: bool) -> None:
    name = _str(causes, f"{path}.name", port.get("name"))
    if require_name and not name:
        causes.append(required(f"{path}.name"))
    elif name:
        _names(causes, f"{path}.name", name, is_dns1123_label)
    number = _int(causes, f"{path}.port", port.get("port")) or 0
    for msg in is_valid_port_num(number):
        causes.append(invalid(f"{path}.port", number, msg))
    _enum(causes, f"{path}.protocol", port.get("protocol"), _PROTOCOLS)


@_guarded
def endpoints(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    for subset_path, subset in _dict_items(causes, "subsets", obj.get("subsets")):
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            causes.append(required(subset_path, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for address_path, address in _dict_items(causes, f"{subset_path}.{key}", subset.get(key)):
                ip = _valid_ip(causes, f"{address_path}.ip", address.get("ip"))
                if ip is not None:
                    _non_special_ip(causes, f"{address_path}.ip", address["ip"], ip)
                _optional_name(causes, f"{address_path}.hostname", address.get("hostname"), is_dns1123_label)
                _optional_name(causes, f"{address_path}.nodeName", address.get("nodeName"), is_dns1123_subdomain)
        ports = list(_dict_items(causes, f"{subset_path}.ports", subset.get("ports")))
        for port_path, port in ports:
            _endpoint_port(causes, port_path, port, require_name=len(ports) > 1)
    return causes


MAX_DATA_SIZE = 1024 * 1024
IMMUTABLE_SET_MSG = "field is immutable when `immutable` is set"


def _utf8_len(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode())


@_guarded
def configmap(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    data = _map(causes, "data", obj.get("data"))
    binary = _map(causes, "binaryData", obj.get("binaryData"))
    total = 0
    for key, value in data.items():
        if not (len(key) <= DNS1123_SUBDOMAIN_MAX and _CONFIG_KEY_RE.fullmatch(key) and not key.startswith("..")
                and key != "."):
            _names(causes, f"data[{key}]", key, is_config_map_key)
        if key in binary:
            causes.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        if isinstance(value, str):
            total += _utf8_len(value)
        elif value is not None:
            causes.append(type_invalid(f"data[{key}]", value, "string"))
    for key, value in binary.items():
        _names(causes, f"binaryData[{key}]", key, is_config_map_key)
        decoded = _base64(causes, f"binaryData[{key}]", value)
        total += len(decoded) if decoded is not None else 0
    if total > MAX_DATA_SIZE:
        causes.append(too_long("", MAX_DATA_SIZE))
    if old is not None:
        causes.extend(_immutable_data(obj, old, ("data", "binaryData")))
    return causes


def _immutable_data(obj: dict, old: dict, fields: tuple[str, ...]) -> list[Cause]:
    """ConfigMaps and Secrets marked immutable: the flag and the payload are frozen."""
    causes: list[Cause] = []
    if old.get("immutable") is not True:
        return causes
    if obj.get("immutable") is not True:
        causes.append(forbidden("immutable", IMMUTABLE_SET_MSG))
    for key in fields:
        if (obj.get(key) or None) != (old.get(key) or None):
            causes.append(forbidden(key, IMMUTABLE_SET_MSG))
    return causes


_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n")


def _base64(causes: list[Cause], path: str, value: Any) -> bytes | None:
    """Decode a base64 []byte field like Go's StdEncoding (newlines ignored, padding required)."""
    if not isinstance(value, str):
        causes.append(type_invalid(path, value, "string"))
        return None
    try:
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        offset = next((i for i, ch in enumerate(value) if ch not in _BASE64_CHARS), None)
        if offset is None:
            offset = value.index("=") if "=" in value else len(value) - len(value) % 4
        causes.append(invalid(path, GoText('"<secret contents redacted>"'),
                              f"illegal base64 data at input byte {offset}"))
        return None


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
_DOCKER_JSON_KEYS = (".dockercfg", ".dockerconfigjson")


def _secret_type_rules(causes: list[Cause], obj: dict, decoded: dict[str, bytes]) -> None:
    secret_type = obj.get("type") if isinstance(obj.get("type"), str) else ""
    if secret_type == "kubernetes.io/service-account-token":
        annotations = _meta(obj, "annotations")
        if not isinstance(annotations, dict) or not annotations.get("kubernetes.io/service-account.name"):
            causes.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif secret_type == "kubernetes.io/basic-auth":
        if "username" not in decoded and "password" not in decoded:
            causes.append(required("data[username]"))
            causes.append(required("data[password]"))
    elif secret_type == "kubernetes.io/ssh-auth":
        if not decoded.get("ssh-privatekey"):
            causes.append(required("data[ssh-privatekey]"))
    for key in _SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if key not in decoded:
            causes.append(required(f"data[{key}]"))
        elif key in _DOCKER_JSON_KEYS:
            try:
                if not isinstance(json.loads(decoded[key]), dict):
                    raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
            except ValueError as exc:
                causes.append(invalid(f"data[{key}]", "<secret contents redacted>", str(exc)))


@_guarded
def secret(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    decoded: dict[str, bytes] = {}
    for key, value in _map(causes, "data", obj.get("data")).items():
        if not (_CONFIG_KEY_RE.fullmatch(key) and len(key) <= DNS1123_SUBDOMAIN_MAX and not key.startswith("..")
                and key != "."):
            _names(causes, f"data[{key}]", key, is_config_map_key)
        raw = _base64(causes, f"data[{key}]", value)
        if raw is not None:
            decoded[key] = raw
            total += len(raw)
    if total > MAX_DATA_SIZE:
        causes.append(too_long("data", MAX_DATA_SIZE))
    _secret_type_rules(causes, obj, decoded)
    if old is not None:
        if (obj.get("type") or "") != (old.get("type") or ""):
            causes.append(invalid("type", obj.get("type") or "", FIELD_IMMUTABLE_MSG))
        causes.extend(_immutable_data(obj, old, ("data",)))
    return causes


REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def _event_common(causes: list[Cause], event: dict, *, involved_key: str, message_key: str,
                  controller_field: str) -> None:
    """Upstream's legacyValidateEvent, shared by core/v1 and events.k8s.io/v1 (different JSON names)."""
    namespace = _meta(event, "namespace") if isinstance(_meta(event, "namespace"), str) else ""
    involved = event.get(involved_key) if isinstance(event.get(involved_key), dict) else {}
    involved_namespace = involved.get("namespace") or ""
    if not event.get("eventTime"):
        if not involved_namespace:
            if namespace not in ("", "default"):
                causes.append(invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace"))
        elif namespace != involved_namespace:
            causes.append(invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace"))
    else:
        if not involved_namespace and namespace not in ("default", "kube-system"):
            causes.append(invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace"))
        controller = event.get("reportingController" if involved_key == "regarding" else "reportingComponent")
        controller = controller if isinstance(controller, str) else ""
        if not controller:
            causes.append(required(controller_field))
        _names(causes, controller_field, controller, is_qualified_name)
        for key, limit in (("reportingInstance", REPORTING_INSTANCE_LIMIT), ("action", ACTION_LIMIT),
                           ("reason", REASON_LIMIT)):
            value = event.get(key) if isinstance(event.get(key), str) else ""
            if not value:
                causes.append(required(key))
            if len(value) > limit:
                causes.append(invalid(key, "", f"can have at most {limit} characters"))
        message = event.get(message_key)
        if isinstance(message, str) and len(message) > NOTE_LIMIT:
            causes.append(invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    if namespace:
        _names(causes, "namespace", namespace, is_dns1123_subdomain)


@_guarded
def event(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    _event_common(causes, obj, involved_key="involvedObject", message_key="message",
                  controller_field="reportingComponent")
    return causes


@_guarded
def events_v1(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    _event_common(causes, obj, involved_key="regarding", message_key="note", controller_field="reportingController")
    series = obj.get("series")
    if isinstance(series, dict):
        count = series.get("count")
        if not isinstance(count, int) or count < 2:
            causes.append(invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            causes.append(required("series.lastObservedTime"))
    if not obj.get("eventTime"):
        causes.append(required("eventTime"))
    event_type = obj.get("type")
    if event_type not in ("Normal", "Warning"):
        causes.append(invalid("type", "", f"has invalid value: {event_type if isinstance(event_type, str) else ''}"))
    for key, field in (("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp"),
                       ("deprecatedCount", "count")):
        if obj.get(key):
            causes.append(invalid(field, "", "needs to be unset"))
    source = obj.get("deprecatedSource")
    if isinstance(source, dict) and (source.get("component") or source.get("host")):
        causes.append(invalid("source", "", "needs to be unset"))
    return causes


_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_VOLUME_MODES = ("Block", "Filesystem")
PVC_SPEC_IMMUTABLE_MSG = ("spec is immutable after creation except resources.requests and "
                          "volumeAttributesClassName for bound claims")


def _pvc_spec(causes: list[Cause], path: str, spec: dict) -> None:
    modes = _list(causes, f"{path}.accessModes", spec.get("accessModes"))
    if not modes:
        causes.append(required(f"{path}.accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        _label_selector(causes, f"{path}.selector", _map(causes, f"{path}.selector", spec["selector"]))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(not_supported(f"{path}.accessModes", mode, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and any(m in _ACCESS_MODES and m != "ReadWriteOncePod" for m in modes):
        causes.append(forbidden(f"{path}.accessModes", "may not use ReadWriteOncePod with other access modes"))
    resources = _map(causes, f"{path}.resources", spec.get("resources"))
    requests = _map(causes, f"{path}.resources.requests", resources.get("requests"))
    storage_path = f"{path}.resources[storage]"
    if "storage" not in requests:
        causes.append(required(storage_path))
    else:
        try:
            if parse_quantity(requests["storage"]) <= 0:
                causes.append(invalid(storage_path, _quantity_text(requests["storage"]), "must be greater than zero"))
        except ValueError as exc:
            causes.append(invalid(storage_path, requests["storage"], str(exc)))
    _optional_name(causes, f"{path}.storageClassName", spec.get("storageClassName"), is_dns1123_subdomain)
    mode = spec.get("volumeMode")
    if mode is not None and mode not in _VOLUME_MODES:
        causes.append(not_supported(f"{path}.volumeMode", mode, _VOLUME_MODES))


@_guarded
def persistentvolumeclaim(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    _pvc_spec(causes, "spec", spec)
    old_spec = old.get("spec") if old is not None else None
    if isinstance(old_spec, dict):
        comparable_new, comparable_old = dict(spec), dict(old_spec)
        if not old_spec.get("volumeName"):
            comparable_old["volumeName"] = spec.get("volumeName")
        if _dig(obj, "status", "phase") == "Bound":
            comparable_new["resources"] = comparable_old.get("resources")
        comparable_new = {k: v for k, v in comparable_new.items() if v is not None}
        comparable_old = {k: v for k, v in comparable_old.items() if v is not None}
        if comparable_new != comparable_old:
            lines: list[str] = []
            _diff_lines(comparable_old, comparable_new, "spec", lines)
            causes.append(forbidden("spec", PVC_SPEC_IMMUTABLE_MSG + "\n" + "\n".join(lines)))
        try:
            new_size = parse_quantity(_dig(spec, "resources", "requests", "storage") or 0)
            old_size = parse_quantity(_dig(old_spec, "resources", "requests", "storage") or 0)
        except ValueError:
            return causes
        if new_size < old_size:
            causes.append(forbidden("spec.resources.requests.storage", "field can not be less than previous value"))
    return causes


# --- apps/v1 ----------------------------------------------------------------------------------------


def _int_or_percent_text(value: Any) -> GoText:
    """An IntOrString as ``%#v`` renders it."""
    if isinstance(value, str):
        return GoText(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}")
    number = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return GoText(f'intstr.IntOrString{{Type:0, IntVal:{number}, StrVal:""}}')


def _int_or_percent_value(value: Any) -> int:
    if isinstance(value, str) and _PERCENT_RE.fullmatch(value):
        return int(value[:-1])
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _positive_int_or_percent(causes: list[Cause], path: str, value: Any) -> None:
    if isinstance(value, str):
        if not _PERCENT_RE.fullmatch(value):
            causes.append(invalid(path, _int_or_percent_text(value), _PERCENT_MSG))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            causes.append(invalid(path, value, IS_NEGATIVE_MSG))
    elif value is not None:  # upstream's text really has the doubled '%'
        causes.append(invalid(path, value, "must be an integer or percentage (e.g '5%%')"))


def _not_more_than_100_percent(causes: list[Cause], path: str, value: Any) -> None:
    if isinstance(value, str) and _PERCENT_RE.fullmatch(value) and int(value[:-1]) > 100:
        causes.append(invalid(path, _int_or_percent_text(value), "must not be greater than 100%"))


def _workload_selector(causes: list[Cause], spec: dict, kind: str) -> Any:
    """spec.selector: required, valid and non-empty; returns it for matching the template."""
    selector = spec.get("selector")
    if selector is None:
        causes.append(required("spec.selector"))
        return None
    if not isinstance(selector, dict):
        causes.append(type_invalid("spec.selector", selector, "object"))
        return selector  # unusable: selector_matches() says None, so no template mismatch is reported
    _label_selector(causes, "spec.selector", selector)
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        causes.append(invalid("spec.selector", _selector_text(selector), f"empty selector is invalid for {kind}"))
    return selector


def _template_for_selector(causes: list[Cause], spec: dict, selector: Any, controller: str, *,
                           unusable_selector: str | None = "invalid label selector", pod_spec: bool = True) -> None:
    """The pod template of a Deployment/ReplicaSet/DaemonSet/StatefulSet: selected, restartPolicy Always.
    ``unusable_selector`` is the detail reported when the selector cannot be evaluated (None: nothing);
    StatefulSets validate only the template's labels and annotations, not its pod spec (as upstream)."""
    raw = spec.get("template")
    labels = _template_labels(raw) if isinstance(raw, dict) else None
    empty = isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions")
    matched = selector_matches(selector, labels)
    if matched is False and not empty:
        causes.append(invalid("spec.template.metadata.labels", _labels_text(labels),
                              "`selector` does not match template `labels`"))
    elif matched is None and isinstance(selector, dict) and unusable_selector is not None:
        causes.append(invalid("spec.selector", _selector_text(selector), unusable_selector))
    if pod_spec:
        template = _pod_template(causes, "spec.template", raw)
    else:
        template = _map(causes, "spec.template", raw)
        meta = _map(causes, "spec.template.metadata", template.get("metadata"))
        if meta.get("labels"):
            _labels(causes, "spec.template.labels", meta["labels"])
        if meta.get("annotations"):
            _annotations(causes, "spec.template.annotations", meta["annotations"])
    template_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    restart = template_spec.get("restartPolicy")
    if restart != "Always":
        causes.append(not_supported("spec.template.spec.restartPolicy", restart or "", ("Always",)))
    if template_spec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                                f"activeDeadlineSeconds in {controller} is not Supported"))


_ROLLING_TYPES = {"DeploymentStrategy": "RollingUpdateDeployment",
                  "DaemonSetUpdateStrategy": "RollingUpdateDaemonSet",
                  "StatefulSetUpdateStrategy": "RollingUpdateStatefulSetStrategy"}


def _strategy_text(kind: str, strategy: dict) -> GoText:
    rolling_type = _ROLLING_TYPES[kind]
    rolling = strategy.get("rollingUpdate")
    rolling_text = f"(*apps.{rolling_type})(nil)" if rolling is None else go_value(rolling)
    return GoText(f"apps.{kind}{{Type:{go_value(strategy.get('type') or '')}, RollingUpdate:{rolling_text}}}")


def _deployment_strategy(causes: list[Cause], strategy: dict) -> None:
    strategy_type = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if strategy_type == "Recreate":
        if rolling is not None:
            causes.append(forbidden("spec.strategy.rollingUpdate",
                                    "may not be specified when strategy `type` is 'Recreate'"))
    elif strategy_type == "RollingUpdate":
        if rolling is None:
            causes.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
            return
        rolling = _map(causes, "spec.strategy.rollingUpdate", rolling)
        path = "spec.strategy.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        _positive_int_or_percent(causes, f"{path}.maxUnavailable", unavailable)
        _positive_int_or_percent(causes, f"{path}.maxSurge", surge)
        if _int_or_percent_value(unavailable) == 0 and _int_or_percent_value(surge) == 0:
            causes.append(invalid(f"{path}.maxUnavailable", _int_or_percent_text(unavailable),
                                  "may not be 0 when `maxSurge` is 0"))
        _not_more_than_100_percent(causes, f"{path}.maxUnavailable", unavailable)
    else:
        causes.append(not_supported("spec.strategy", _strategy_text("DeploymentStrategy", strategy),
                                    ("Recreate", "RollingUpdate")))


@_guarded
def deployment(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    _nonnegative(causes, "spec.replicas", spec.get("replicas"))
    selector = _workload_selector(causes, spec, "deployment")
    _template_for_selector(causes, spec, selector, "ReplicaSet")
    _deployment_strategy(causes, _map(causes, "spec.strategy", spec.get("strategy")))
    min_ready = _int(causes, "spec.minReadySeconds", spec.get("minReadySeconds")) or 0
    if min_ready < 0:
        causes.append(invalid("spec.minReadySeconds", min_ready, IS_NEGATIVE_MSG))
    _nonnegative(causes, "spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = _int(causes, "spec.progressDeadlineSeconds", spec.get("progressDeadlineSeconds"))
    if deadline is not None:
        if deadline < 0:
            causes.append(invalid("spec.progressDeadlineSeconds", deadline, IS_NEGATIVE_MSG))
        if deadline <= min_ready:
            causes.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return causes


@_guarded
def replicaset(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    _nonnegative(causes, "spec.replicas", spec.get("replicas"))
    _nonnegative(causes, "spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = _workload_selector(causes, spec, "deployment")  # upstream reuses the Deployment wording
    _template_for_selector(causes, spec, selector, "ReplicaSet")
    return causes


def _daemonset_strategy(causes: list[Cause], strategy: dict) -> None:
    strategy_type = strategy.get("type")
    if strategy_type == "OnDelete":
        return
    if strategy_type != "RollingUpdate":
        causes.append(not_supported("spec.updateStrategy", _strategy_text("DaemonSetUpdateStrategy", strategy),
                                    ("RollingUpdate", "OnDelete")))
        return
    if strategy.get("rollingUpdate") is None:
        causes.append(required("spec.updateStrategy.rollingUpdate"))
        return
    path = "spec.updateStrategy.rollingUpdate"
    rolling = _map(causes, path, strategy["rollingUpdate"])
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    _positive_int_or_percent(causes, f"{path}.maxUnavailable", unavailable)
    _positive_int_or_percent(causes, f"{path}.maxSurge", surge)
    _not_more_than_100_percent(causes, f"{path}.maxUnavailable", unavailable)
    _not_more_than_100_percent(causes, f"{path}.maxSurge", surge)
    has_unavailable, has_surge = _int_or_percent_value(unavailable) != 0, _int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        causes.append(invalid(f"{path}.maxSurge", _int_or_percent_text(surge),
                              "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        causes.append(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))


@_guarded
def daemonset(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    selector = _workload_selector(causes, spec, "daemonset")
    _template_for_selector(causes, spec, selector, "DaemonSet", unusable_selector=None)
    _nonnegative(causes, "spec.minReadySeconds", spec.get("minReadySeconds"))
    _daemonset_strategy(causes, _map(causes, "spec.updateStrategy", spec.get("updateStrategy")))
    _nonnegative(causes, "spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    return causes


_STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                        "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
STATEFULSET_UPDATE_MSG = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                          "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                          "forbidden")
_RETENTION_POLICIES = ("Retain", "Delete")


def _statefulset_policies(causes: list[Cause], spec: dict) -> None:
    policy = spec.get("podManagementPolicy")
    if not policy:
        causes.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        causes.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _map(causes, "spec.updateStrategy", spec.get("updateStrategy"))
    strategy_type, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if not strategy_type:
        causes.append(required("spec.updateStrategy"))
    elif strategy_type == "OnDelete":
        if rolling is not None:
            causes.append(invalid("spec.updateStrategy.rollingUpdate", rolling,
                                  "only allowed for updateStrategy 'RollingUpdate'"))
    elif strategy_type == "RollingUpdate":
        if rolling is not None:
            rolling = _map(causes, "spec.updateStrategy.rollingUpdate", rolling)
            _nonnegative(causes, "spec.updateStrategy.rollingUpdate.partition", rolling.get("partition"))
    else:
        causes.append(invalid("spec.updateStrategy", _strategy_text("StatefulSetUpdateStrategy", strategy),
                              "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        retention = _map(causes, "spec.persistentVolumeClaimRetentionPolicy", retention)
        for key in ("whenDeleted", "whenScaled"):
            value = retention.get(key)
            if value not in _RETENTION_POLICIES:
                causes.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value or "",
                                            _RETENTION_POLICIES))


@_guarded
def statefulset(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    _statefulset_policies(causes, spec)
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        _nonnegative(causes, "spec.ordinals.start", ordinals.get("start"))
    _nonnegative(causes, "spec.replicas", spec.get("replicas"))
    _nonnegative(causes, "spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = _workload_selector(causes, spec, "statefulset")
    _template_for_selector(causes, spec, selector, "StatefulSet", unusable_selector="", pod_spec=False)
    for claim_path, claim in _dict_items(causes, "spec.volumeClaimTemplates", spec.get("volumeClaimTemplates")):
        _pvc_spec(causes, f"{claim_path}.spec", _map(causes, f"{claim_path}.spec", claim.get("spec")))
    old_spec = old.get("spec") if old is not None else None
    if isinstance(old_spec, dict):
        frozen_new = {k: v for k, v in spec.items() if k not in _STATEFULSET_MUTABLE and v is not None}
        frozen_old = {k: v for k, v in old_spec.items() if k not in _STATEFULSET_MUTABLE and v is not None}
        if frozen_new != frozen_old:
            causes.append(forbidden("spec", STATEFULSET_UPDATE_MSG))
    return causes


# --- batch/v1 ---------------------------------------------------------------------------------------

_JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
_JOB_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
_COMPLETION_MODES = ("NonIndexed", "Indexed")
_MAX_INDEXED_PARALLELISM = 100000
_CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
_POD_REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")


def _job_spec(causes: list[Cause], path: str, spec: dict) -> dict:
    """Checks shared by Jobs and CronJob job templates; returns the pod template."""
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        _nonnegative(causes, f"{path}.{key}", spec.get(key))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in _COMPLETION_MODES:
            causes.append(not_supported(f"{path}.completionMode", mode, _COMPLETION_MODES))
        elif mode == "Indexed":
            if spec.get("completions") is None:
                causes.append(required(f"{path}.completions", "when completion mode is Indexed"))
            parallelism = spec.get("parallelism")
            if isinstance(parallelism, int) and parallelism > _MAX_INDEXED_PARALLELISM:
                causes.append(invalid(f"{path}.parallelism", parallelism,
                                      f"must be less than or equal to {_MAX_INDEXED_PARALLELISM} when completion "
                                      "mode is Indexed"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        allowed = ("Failed",) if spec.get("podFailurePolicy") is not None else _POD_REPLACEMENT_POLICIES
        if replacement not in allowed:
            causes.append(not_supported(f"{path}.podReplacementPolicy", replacement, allowed))
    template = _pod_template(causes, f"{path}.template", spec.get("template"))
    template_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    restart = template_spec.get("restartPolicy")
    restart_path = f"{path}.template.spec.restartPolicy"
    if restart in (None, "", "Always"):
        causes.append(required(restart_path, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        causes.append(not_supported(restart_path, restart, ("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        causes.append(invalid(restart_path, restart, 'only "Never" is supported when podFailurePolicy is specified'))
    return template


def _has_label(causes: list[Cause], labels: dict, key: str, expected: str) -> None:
    path = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        causes.append(required(path, f"must be '{expected}'"))
    elif labels[key] != expected:
        causes.append(invalid(path, labels, f"must be '{expected}'"))


def _generated_selector(causes: list[Cause], obj: dict, spec: dict) -> None:
    """A Job without manualSelector must carry the selector and labels the server generated from its uid
    (``defaults.job_selector``): its pods get the uid and name labels, and the selector selects them."""
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return  # a missing selector is reported with the spec
    uid = _meta(obj, "uid") if isinstance(_meta(obj, "uid"), str) else ""
    name = _meta(obj, "name") if isinstance(_meta(obj, "name"), str) else ""
    if not uid:
        causes.append(required("metadata.uid"))
    labels = _template_labels(spec.get("template") if isinstance(spec.get("template"), dict) else {})
    labels = labels if isinstance(labels, dict) else {}
    expected: dict[str, str] = {}
    for uid_key, name_key in zip(_JOB_UID_LABELS, _JOB_NAME_LABELS, strict=True):
        _has_label(causes, labels, uid_key, uid)
        _has_label(causes, labels, name_key, name)
        expected[uid_key], expected[name_key] = uid, name
    if selector_matches(spec["selector"], expected) is False:
        causes.append(invalid("spec.selector", _selector_text(_map([], "", spec["selector"])),
                              "`selector` not auto-generated"))


@_guarded
def job(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    _generated_selector(causes, obj, spec)
    template = _job_spec(causes, "spec", spec)
    selector = spec.get("selector")
    if selector is None:
        causes.append(required("spec.selector"))
    else:
        _label_selector(causes, "spec.selector", _map(causes, "spec.selector", selector))
    labels = _template_labels(template)
    if selector_matches(selector, labels) is False:
        causes.append(invalid("spec.template.metadata.labels", _labels_text(labels),
                              "`selector` does not match template `labels`"))
    completions = spec.get("completions")
    name = _meta(obj, "name") or ""
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        hostname = f"{name}-{completions - 1}"
        if is_dns1123_label(hostname):
            causes.append(invalid("metadata.name", name,
                                  f"will not able to create pod with invalid DNS label: {hostname}"))
    return causes


_CRON_BOUNDS = (  # (min, max, names) for minute, hour, day of month, month, day of week
    (0, 59, None), (0, 23, None), (1, 31, None),
    (1, 12, {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                               "oct", "nov", "dec"))}),
    (0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
_CRON_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_CRON_INT_RE = re.compile(r"[+-]?\d+")
_DURATION_RE = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+|0")


def _cron_int(text: str) -> int:
    if not _CRON_INT_RE.fullmatch(text):
        raise ValueError(f'failed to parse int from {text}: strconv.Atoi: parsing {go_quote(text)}: invalid syntax')
    number = int(text)
    if number < 0:
        raise ValueError(f"negative number ({number}) not allowed: {text}")
    return number


def _cron_range(expr: str, low: int, high: int, names: dict[str, int] | None) -> None:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")

    def value(text: str) -> int:
        if names and text.lower() in names:
            return names[text.lower()]
        return _cron_int(text)

    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = value(low_and_high[0])
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = value(low_and_high[1])
        else:
            raise ValueError(f"too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _cron_int(range_and_step[1])
        if len(low_and_high) == 1:
            end = high
    elif len(range_and_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    if start < low:
        raise ValueError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise ValueError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")


def cron_schedule_error(schedule: str) -> str | None:
    """Why a standard 5-field cron schedule (or @macro) does not parse, in robfig/cron v3's words."""
    spec = schedule.strip()
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        spec = spec.partition(" ")[2].strip()
    if spec.startswith("@"):
        if spec in _CRON_DESCRIPTORS:
            return None
        if spec.startswith("@every "):
            duration = spec[len("@every "):]
            if _DURATION_RE.fullmatch(duration):
                return None
            return f'failed to parse duration {spec}: time: invalid duration {go_quote(duration)}'
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        for text, (low, high, names) in zip(fields, _CRON_BOUNDS, strict=True):
            for expr in (part for part in text.split(",") if part):
                _cron_range(expr, low, high, names)
    except ValueError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=256)
def _time_zone_error(name: str) -> str | None:
    """Why ``name`` is no IANA time zone, as Go's time.LoadLocation says it (result cached)."""
    if name.lower() == "local":
        return "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
    if any(part in (".", "..") or part.startswith("-") for part in name.split("/")):
        return f"unknown time zone {name}"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name}"
    return None


@_guarded
def cronjob(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    name = _meta(obj, "name")
    if isinstance(name, str) and len(name) > DNS1035_LABEL_MAX - 11:
        causes.append(invalid("metadata.name", name, _max_len(DNS1035_LABEL_MAX - 11)))
    spec = _map(causes, "spec", obj.get("spec"))
    schedule = _str(causes, "spec.schedule", spec.get("schedule"))
    if not schedule:
        causes.append(required("spec.schedule"))
    else:
        error = cron_schedule_error(schedule)
        if error:
            causes.append(invalid("spec.schedule", schedule, error))
        old_schedule = ((old or {}).get("spec") or {}).get("schedule") or ""
        if "TZ" in schedule and "TZ" not in old_schedule:
            causes.append(invalid("spec.schedule", schedule,
                                  "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
        elif "TZ" in schedule and spec.get("timeZone") is not None:
            causes.append(invalid("spec.schedule", schedule,
                                  "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
    _nonnegative(causes, "spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
    time_zone = spec.get("timeZone")
    if time_zone is not None:
        if not isinstance(time_zone, str) or not time_zone:
            causes.append(invalid("spec.timeZone", time_zone, "timeZone must be nil or non-empty string"))
        elif (error := _time_zone_error(time_zone)) is not None:
            causes.append(invalid("spec.timeZone", time_zone, error))
    _enum(causes, "spec.concurrencyPolicy", spec.get("concurrencyPolicy"), _CONCURRENCY_POLICIES)
    job_template = _map(causes, "spec.jobTemplate", spec.get("jobTemplate"))
    job_spec = _map(causes, "spec.jobTemplate.spec", job_template.get("spec"))
    _job_spec(causes, "spec.jobTemplate.spec", job_spec)
    if job_spec.get("selector") is not None:
        causes.append(invalid("spec.jobTemplate.spec.selector", _selector_text(_map([], "", job_spec["selector"])),
                              "`selector` will be auto-generated"))
    if job_spec.get("manualSelector") is True:
        causes.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false")))
    _nonnegative(causes, "spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit"))
    _nonnegative(causes, "spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit"))
    return causes


# --- coordination.k8s.io/v1, discovery.k8s.io/v1 -----------------------------------------------------


@_guarded
def lease(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = _map(causes, "spec", obj.get("spec"))
    duration = _int(causes, "spec.leaseDurationSeconds", spec.get("leaseDurationSeconds"))
    if duration is not None and duration <= 0:
        causes.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = _int(causes, "spec.leaseTransitions", spec.get("leaseTransitions"))
    if transitions is not None and transitions < 0:
        causes.append(invalid("spec.leaseTransitions", transitions, IS_NEGATIVE_MSG))
    _str(causes, "spec.holderIdentity", spec.get("holderIdentity"))
    return causes


_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_SLICE_ENDPOINTS = 1000
MAX_ENDPOINT_ADDRESSES = 100
MAX_SLICE_PORTS = 20000


def _slice_address(causes: list[Cause], path: str, address: Any, address_type: Any) -> None:
    if address_type == "FQDN":
        if not isinstance(address, str) or not address:
            causes.append(required(path))
            return
        name = address.removesuffix(".")
        errors = is_dns1123_subdomain(name)
        if errors:
            causes.append(invalid(path, name, ",".join(errors)))
        elif "." not in name:
            causes.append(invalid(path, name, "should be a domain with at least two segments separated by dots"))
        return
    ip = parse_ip(address)
    wanted = 4 if address_type == "IPv4" else 6
    if ip is None or ip.version != wanted:
        causes.append(invalid(path, address, f"must be a valid IPv{wanted} address"))


@_guarded
def endpointslice(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    address_type = obj.get("addressType")
    _enum(causes, "addressType", address_type, _ADDRESS_TYPES)
    endpoints_list = list(_dict_items(causes, "endpoints", obj.get("endpoints")))
    if len(endpoints_list) > MAX_SLICE_ENDPOINTS:
        causes.append(too_many("endpoints", len(endpoints_list), MAX_SLICE_ENDPOINTS))
    for endpoint_path, endpoint in endpoints_list:
        addresses = _list(causes, f"{endpoint_path}.addresses", endpoint.get("addresses"))
        if not addresses:
            causes.append(required(f"{endpoint_path}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ENDPOINT_ADDRESSES:
            causes.append(too_many(f"{endpoint_path}.addresses", len(addresses), MAX_ENDPOINT_ADDRESSES))
        for i, address in enumerate(addresses):
            _slice_address(causes, f"{endpoint_path}.addresses[{i}]", address, address_type)
        _optional_name(causes, f"{endpoint_path}.hostname", endpoint.get("hostname"), is_dns1123_label)
        _optional_name(causes, f"{endpoint_path}.nodeName", endpoint.get("nodeName"), is_dns1123_subdomain)
    ports = list(_dict_items(causes, "ports", obj.get("ports")))
    if len(ports) > MAX_SLICE_PORTS:
        causes.append(too_many("ports", len(ports), MAX_SLICE_PORTS))
    names: set[str] = set()
    for port_path, port in ports:
        name = _str(causes, f"{port_path}.name", port.get("name"))
        if name:
            _names(causes, f"{port_path}.name", name, is_dns1123_label)
        if name in names:
            causes.append(duplicate(f"{port_path}.name", name))
        names.add(name)
        _enum(causes, f"{port_path}.protocol", port.get("protocol"), _PROTOCOLS)
        number = _int(causes, f"{port_path}.port", port.get("port"))
        if number is not None:
            for msg in is_valid_port_num(number):
                causes.append(invalid(f"{port_path}.port", number, msg))
        app_protocol = port.get("appProtocol")
        if isinstance(app_protocol, str):
            _names(causes, f"{port_path}.appProtocol", app_protocol, is_qualified_name)
    return causes
