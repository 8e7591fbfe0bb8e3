"""Label and field selectors: the ``labelSelector``/``fieldSelector`` of LIST and WATCH, and the
``spec.selector`` of workloads and services.

The string syntax follows Kubernetes' ``labels.Parse`` and ``fields.ParseSelector``; the API form
(``matchLabels``/``matchExpressions``) follows ``metav1.LabelSelectorAsSelector``. Both compile
into a list of small predicates once, because a LIST runs ``matches`` against every stored object.
``str()`` gives the canonical text Kubernetes prints (sorted by key, set values sorted), e.g. the
Scale subresource's ``status.selector``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["FieldRequirement", "FieldSelector", "LabelSelector", "Requirement", "SelectorError"]


class SelectorError(ValueError):
    """A selector that cannot be parsed, or names an invalid label key or value."""


# --- label keys and values -------------------------------------------------------------------------

_NAME = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_INTEGER = re.compile(r"[-+]?[0-9]+")
_NAME_MAX = 63
_PREFIX_MAX = 253
_NAME_RULE = "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"


def validate_key(key: str) -> str:
    """``key`` if it is a valid label key (``[prefix/]name``), else SelectorError saying why."""
    if not isinstance(key, str):
        raise SelectorError(f"invalid label key {key!r}: must be a string")
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise SelectorError(f"invalid label key {key!r}: prefix before '/' must be non-empty")
        if "/" in prefix:
            raise SelectorError(f"invalid label key {key!r}: at most one '/' is allowed")
        if len(prefix) > _PREFIX_MAX or not _DNS_SUBDOMAIN.fullmatch(prefix):
            raise SelectorError(f"invalid label key {key!r}: prefix {prefix!r} must be a DNS subdomain "
                                f"(lower-case alphanumerics, '-' and '.', at most {_PREFIX_MAX} characters)")
    if not name:
        raise SelectorError(f"invalid label key {key!r}: name part must be non-empty")
    if len(name) > _NAME_MAX:
        raise SelectorError(f"invalid label key {key!r}: name part must be at most {_NAME_MAX} characters")
    if not _NAME.fullmatch(name):
        raise SelectorError(f"invalid label key {key!r}: name part {name!r} must be {_NAME_RULE}")
    return key


def validate_value(value: str, *, key: str) -> str:
    """``value`` if it is a valid label value (empty allowed), else SelectorError."""
    if not isinstance(value, str):
        raise SelectorError(f"invalid value {value!r} for label {key!r}: must be a string")
    if len(value) > _NAME_MAX:
        raise SelectorError(f"invalid value {value!r} for label {key!r}: at most {_NAME_MAX} characters")
    if value and not _NAME.fullmatch(value):
        raise SelectorError(f"invalid value {value!r} for label {key!r}: must be empty or {_NAME_RULE}")
    return value


# --- label requirements --------------------------------------------------------------------------

Labels = Mapping[str, str]
Predicate = Callable[[Labels], bool]


def _as_int(text: str | None) -> int | None:
    return int(text) if text is not None and _INTEGER.fullmatch(text) else None


def _greater(key: str, values: tuple[str, ...]) -> Predicate:
    bound = int(values[0])

    def check(labels: Labels) -> bool:
        number = _as_int(labels.get(key))
        return number is not None and number > bound

    return check


def _less(key: str, values: tuple[str, ...]) -> Predicate:
    bound = int(values[0])

    def check(labels: Labels) -> bool:
        number = _as_int(labels.get(key))
        return number is not None and number < bound

    return check


def _equal(key: str, values: tuple[str, ...]) -> Predicate:
    value = values[0]
    return lambda labels: labels.get(key) == value


def _not_equal(key: str, values: tuple[str, ...]) -> Predicate:
    value = values[0]
    return lambda labels: labels.get(key) != value


def _in(key: str, values: tuple[str, ...]) -> Predicate:
    allowed = frozenset(values)
    return lambda labels: labels.get(key) in allowed


def _not_in(key: str, values: tuple[str, ...]) -> Predicate:
    banned = frozenset(values)
    return lambda labels: labels.get(key) not in banned


def _exists(key: str, values: tuple[str, ...]) -> Predicate:
    return lambda labels: key in labels


def _absent(key: str, values: tuple[str, ...]) -> Predicate:
    return lambda labels: key not in labels


@dataclass(frozen=True)
class _Operator:
    """How one label operator is checked, printed and how many values it takes."""

    compile: Callable[[str, tuple[str, ...]], Predicate]
    #: format of str(); {k} is the key, {v} the value(s)
    text: str
    #: (fewest, most) values; most None for unbounded
    arity: tuple[int, int | None]
    #: whether values are a set (sorted and deduplicated)
    is_set: bool = False
    numeric: bool = False


#: string-syntax operator -> behaviour; "exists" and "!" are spelled by the key alone / "!key"
OPERATORS: dict[str, _Operator] = {
    "=": _Operator(_equal, "{k}={v}", (1, 1)),
    "==": _Operator(_equal, "{k}=={v}", (1, 1)),
    "!=": _Operator(_not_equal, "{k}!={v}", (1, 1)),
    "in": _Operator(_in, "{k} in ({v})", (1, None), is_set=True),
    "notin": _Operator(_not_in, "{k} notin ({v})", (1, None), is_set=True),
    "exists": _Operator(_exists, "{k}", (0, 0)),
    "!": _Operator(_absent, "!{k}", (0, 0)),
    ">": _Operator(_greater, "{k}>{v}", (1, 1), numeric=True),
    "<": _Operator(_less, "{k}<{v}", (1, 1), numeric=True),
}

#: matchExpressions operator -> string-syntax operator
API_OPERATORS: dict[str, str] = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}

_PINNING = frozenset({"=", "==", "in"})


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key; build with :meth:`make`, which validates."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def make(cls, key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
        spec = OPERATORS.get(operator)
        if spec is None:
            raise SelectorError(f"unknown selector operator {operator!r}")
        validate_key(key)
        values = tuple(values)
        fewest, most = spec.arity
        if len(values) < fewest or (most is not None and len(values) > most):
            if most == 0:
                raise SelectorError(f"label {key!r}: operator {operator!r} takes no values")
            if most is None:
                raise SelectorError(f"label {key!r}: values set for {operator!r} must be non-empty")
            raise SelectorError(f"label {key!r}: operator {operator!r} takes exactly one value")
        for value in values:
            if spec.numeric:
                if not _INTEGER.fullmatch(value):
                    raise SelectorError(f"label {key!r}: value {value!r} for {operator!r} must be an integer")
            else:
                validate_value(value, key=key)
        if spec.is_set:
            values = tuple(sorted(set(values)))
        return cls(key, operator, values)

    def predicate(self) -> Predicate:
        return OPERATORS[self.operator].compile(self.key, self.values)

    def __str__(self) -> str:
        return OPERATORS[self.operator].text.format(k=self.key, v=",".join(self.values))


# --- label selector string syntax ----------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<sym>!=|==|=|!|\(|\)|,|>|<)|(?P<id>[^\s=!(),<>]+))")
_END = ("end", "")


def _tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; kind is "id", the symbol itself, or "end"."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None:  # pragma: no cover - the two alternatives cover every character
            raise SelectorError(f"cannot parse selector {text!r} at position {pos}")
        sym = match.group("sym")
        tokens.append((sym, sym) if sym else ("id", match.group("id")))
        pos = match.end()
    tokens.append(_END)
    return tokens


class _Parser:
    """Recursive descent over the grammar of Kubernetes' ``labels.Parse``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        if token is not _END:
            self.pos += 1
        return token

    def fail(self, found: tuple[str, str], expected: str) -> SelectorError:
        shown = found[1] if found[0] != "end" else "end of string"
        return SelectorError(f"unable to parse selector {self.text!r}: found {shown!r}, expected {expected}")

    def selector(self) -> list[Requirement]:
        requirements = [self.requirement()]
        while True:
            token = self.take()
            if token[0] == "end":
                return requirements
            if token[0] != ",":
                raise self.fail(token, "',' or end of string")
            requirements.append(self.requirement())

    def requirement(self) -> Requirement:
        token = self.take()
        negated = token[0] == "!"
        if negated:
            token = self.take()
        if token[0] != "id":
            raise self.fail(token, "a label key")
        key = token[1]
        if self.peek()[0] in ("end", ","):
            return Requirement.make(key, "!" if negated else "exists")
        if negated:
            raise self.fail(self.peek(), f"',' or end of string after '!{key}'")
        operator = self.take()
        if operator[0] == "id" and operator[1] in ("in", "notin"):
            return Requirement.make(key, operator[1], self.value_set())
        if operator[0] in ("=", "==", "!=", ">", "<"):
            return Requirement.make(key, operator[0], [self.exact_value()])
        raise self.fail(operator, "one of 'in', 'notin', '=', '==', '!=', '>', '<'")

    def exact_value(self) -> str:
        if self.peek()[0] in ("end", ","):
            return ""
        token = self.take()
        if token[0] != "id":
            raise self.fail(token, "a value")
        return token[1]

    def value_set(self) -> list[str]:
        token = self.take()
        if token[0] != "(":
            raise self.fail(token, "'('")
        if self.peek()[0] == ")":
            self.take()
            return []
        values: list[str] = []
        current: str | None = None
        while True:
            token = self.take()
            if token[0] == "id" and current is None:
                current = token[1]
            elif token[0] in (",", ")"):
                values.append(current or "")
                current = None
                if token[0] == ")":
                    return values
            else:
                raise self.fail(token, "a value, ',' or ')'")


# --- label selector ------------------------------------------------------------------------------

_NO_LABELS: Mapping[str, str] = {}


class LabelSelector:
    """An AND of label requirements, or the selector that matches nothing (``from_dict(None)``)."""

    __slots__ = ("_match", "_nothing", "requirements")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing
        self._match = self._compile()

    def _compile(self) -> Predicate:
        if self._nothing:
            return lambda labels: False
        checks = tuple(r.predicate() for r in self.requirements)
        if not checks:
            return lambda labels: True
        if len(checks) == 1:
            return checks[0]

        def every(labels: Labels) -> bool:
            for check in checks:
                if not check(labels):
                    return False
            return True

        return every

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """The selector written in Kubernetes' string syntax (``""`` matches everything)."""
        if not isinstance(text, str):
            raise SelectorError(f"label selector must be a string, got {type(text).__name__}")
        if not text.strip():
            return cls()
        return cls(_Parser(text).selector())

    @classmethod
    def from_dict(cls, selector: Mapping | None) -> LabelSelector:
        """The API form; ``None`` matches nothing, ``{}`` matches everything."""
        if selector is None:
            return cls(nothing=True)
        if not isinstance(selector, Mapping):
            raise SelectorError(f"label selector must be an object, got {type(selector).__name__}")
        match_labels = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or []
        if not isinstance(match_labels, Mapping):
            raise SelectorError("matchLabels must be an object of label keys to values")
        if not isinstance(expressions, list):
            raise SelectorError("matchExpressions must be a list")
        requirements = [Requirement.make(key, "=", [value]) for key, value in match_labels.items()]
        requirements.extend(_expression(e) for e in expressions)
        return cls(requirements)

    def matches(self, labels: Labels | None) -> bool:
        return self._match(labels or _NO_LABELS)

    @property
    def empty(self) -> bool:
        """Whether the selector matches everything (so a LIST need not filter)."""
        return not self._nothing and not self.requirements

    @property
    def nothing(self) -> bool:
        return self._nothing

    def equality_requirements(self) -> dict[str, str]:
        """Label values the selector pins (``=``, ``==``, ``in`` one value): usable as an index."""
        pinned: dict[str, str] = {}
        for req in self.requirements:
            if req.operator in _PINNING and len(req.values) == 1:
                pinned.setdefault(req.key, req.values[0])
        return pinned

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self._nothing else f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return (self._nothing, self.requirements) == (other._nothing, other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


def _expression(expr: object) -> Requirement:
    if not isinstance(expr, Mapping):
        raise SelectorError(f"matchExpressions item must be an object, got {expr!r}")
    key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if not isinstance(key, str):
        raise SelectorError(f"matchExpressions item {dict(expr)!r} needs a string 'key'")
    if operator not in API_OPERATORS:
        raise SelectorError(f"{operator!r} is not a valid label selector operator "
                            f"(one of {', '.join(API_OPERATORS)})")
    if not isinstance(values, list):
        raise SelectorError(f"matchExpressions values of {key!r} must be a list")
    return Requirement.make(key, API_OPERATORS[operator], values)


# --- field selectors -----------------------------------------------------------------------------

_FIELD_OPERATORS = ("!=", "==", "=")
_ESCAPABLE = frozenset("\\,=")


def _split_terms(text: str) -> list[str]:
    """``text`` split at the commas that a backslash does not escape."""
    terms: list[str] = []
    start = 0
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape(value: str, *, term: str) -> str:
    if not any(c in _ESCAPABLE for c in value):
        return value
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in _ESCAPABLE:
                raise SelectorError(f"invalid field selector {term!r}: invalid escape sequence '\\{char}'")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector {term!r}: unescaped {char!r} in value")
        else:
            out.append(char)
    if escaped:
        raise SelectorError(f"invalid field selector {term!r}: value ends with a lone '\\'")
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


@dataclass(frozen=True)
class FieldRequirement:
    """``field`` compared with ``value``; ``equal`` False for ``!=``."""

    field: str
    value: str
    equal: bool = True

    def __str__(self) -> str:
        return f"{self.field}{'=' if self.equal else '!='}{_escape(self.value)}"


def _split_term(term: str) -> FieldRequirement:
    for i in range(len(term)):
        for operator in _FIELD_OPERATORS:
            if term.startswith(operator, i):
                name = term[:i].strip()
                if not name:
                    raise SelectorError(f"invalid field selector {term!r}: missing field name")
                value = _unescape(term[i + len(operator):], term=term)
                return FieldRequirement(name, value, operator != "!=")
    raise SelectorError(f"invalid field selector {term!r}: expected field=value, field==value "
                        "or field!=value")


class FieldSelector:
    """An AND of field requirements; fields the object lacks compare as ``""``."""

    __slots__ = ("_checks", "requirements")

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self.requirements: tuple[FieldRequirement, ...] = tuple(requirements)
        self._checks = tuple((r.field, r.value, r.equal) for r in self.requirements)

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        if not isinstance(text, str):
            raise SelectorError(f"field selector must be a string, got {type(text).__name__}")
        return cls(_split_term(term) for term in _split_terms(text) if term)

    def matches(self, fields: Mapping[str, str]) -> bool:
        for name, value, equal in self._checks:
            if (fields.get(name, "") == value) is not equal:
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.requirements

    def fields(self) -> set[str]:
        """The field names used; the server rejects those a resource does not support."""
        return {r.field for r in self.requirements}

    def exact(self, name: str) -> str | None:
        """The value ``name`` must equal (e.g. ``metadata.name``), letting a LIST skip a scan."""
        for req in self.requirements:
            if req.field == name and req.equal:
                return req.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)
