"""LIST: selectors, pagination with continue tokens, and resourceVersion semantics.

Selectors filter after the storage read (the watch cache makes the read a memory scan), and a page
is filled until ``limit`` matching items are found, so ``limit`` keeps its meaning under selectors.
A continue token carries the revision of the first page and the last key served, so every page of
one list is read at the same revision; once that revision is compacted the token answers 410.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver import errors
from apiserver.registry import ResourceType
from apiserver.store import ObjectStore
from machinery import meta
from machinery.selectors import FieldSelector, LabelSelector, SelectorError

#: storage page size while filtering by selectors
SCAN_CHUNK = 1000


@dataclass(frozen=True)
class Selectors:
    labels: LabelSelector | None = None
    fields: FieldSelector | None = None

    @property
    def empty(self) -> bool:
        return self.labels is None and self.fields is None

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.labels is not None and not self.labels.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        if self.fields is not None:
            values = {name: meta.field_value(obj, name) for name in self.fields.fields()}
            if not self.fields.matches(values):
                return False
        return True


def parse_selectors(rt: ResourceType, query) -> Selectors:
    """``labelSelector`` and ``fieldSelector`` of a request; unsupported fields are a 400."""
    labels = fields = None
    try:
        if query.get("labelSelector"):
            labels = LabelSelector.parse(query["labelSelector"])
        if query.get("fieldSelector"):
            fields = FieldSelector.parse(query["fieldSelector"])
    except SelectorError as exc:
        raise errors.bad_request(f"unable to parse requirement: {exc}") from None
    if fields is not None:
        allowed = rt.selectable_fields
        for name in sorted(fields.fields()):
            if name not in allowed:
                raise errors.bad_request(f'"{name}" is not a known field selector: only '
                                         f'"{", ".join(allowed)}"')
    return Selectors(labels, fields)


def encode_continue(revision: int, key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)") from None


def _int_param(query, name: str) -> int:
    value = query.get(name)
    if value in (None, ""):
        return 0
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{value}"') from None
    if number < 0:
        raise errors.bad_request(f"{name} must not be negative")
    return number


def _list_revision(query) -> int | None:
    """The revision to read at: None for the newest (``""``, ``"0"``, NotOlderThan)."""
    rv = query.get("resourceVersion", "")
    match = query.get("resourceVersionMatch", "")
    if match and match not in ("Exact", "NotOlderThan"):
        raise errors.bad_request(f'unsupported resourceVersionMatch "{match}"')
    if match and not rv:
        raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if not rv or rv == "0":
        return None
    try:
        revision = int(rv)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"') from None
    return revision if match == "Exact" else None


@dataclass
class Page:
    items: list[dict[str, Any]]
    revision: int
    continue_token: str | None = None


@dataclass(frozen=True)
class PageRequest:
    """What a LIST asks for: how many, from where, at which revision."""

    limit: int = 0
    revision: int | None = None
    start_after: str | None = None


def page_request(query) -> PageRequest:
    """``limit``, ``continue`` and ``resourceVersion``/``resourceVersionMatch`` of a request."""
    limit = _int_param(query, "limit")
    if query.get("continue"):
        revision, start_after = decode_continue(query["continue"])
        return PageRequest(limit, revision, start_after)
    return PageRequest(limit, _list_revision(query))


async def list_objects(store: ObjectStore, rt: ResourceType, namespace: str | None, selectors: Selectors,
                       request: PageRequest = PageRequest()) -> Page:
    """One page of matching objects (everything at the newest revision by default)."""
    limit, revision, start_after = request.limit, request.revision, request.start_after
    name = selectors.fields.exact("metadata.name") if selectors.fields is not None else None
    if name is not None and start_after is None:
        return await _by_name(store, rt, namespace, name, selectors, revision)
    chunk = limit if selectors.empty else max(limit, SCAN_CHUNK) if limit else 0
    items: list[dict[str, Any]] = []
    while True:
        page = await store.list_page(rt, namespace, limit=chunk, start_after=start_after, revision=revision)
        revision = page.revision
        for index, obj in enumerate(page.items):
            if not selectors.matches(obj):
                continue
            items.append(obj)
            if limit and len(items) == limit:
                more = index + 1 < len(page.items) or page.continue_key is not None
                token = encode_continue(revision, _key(rt, obj)) if more else None
                return Page(items, revision, token)
        if page.continue_key is None:
            return Page(items, revision)
        start_after = page.continue_key


async def _by_name(store: ObjectStore, rt: ResourceType, namespace: str | None, name: str,
                   selectors: Selectors, revision: int | None) -> Page:
    """``fieldSelector=metadata.name=x`` (kubectl wait, rollout status, delete --wait): one GET."""
    if revision is None and (namespace is not None or not rt.namespaced):
        current = await store.current_revision()
        try:
            obj = await store.get(rt, namespace, name)
        except errors.ApiError as exc:
            if exc.code != 404:
                raise
            return Page([], current)
        revision = max(current, int(obj["metadata"]["resourceVersion"]))
        return Page([obj] if selectors.matches(obj) else [], revision)
    page = await store.list_page(rt, namespace, revision=revision)
    return Page([o for o in page.items if o["metadata"]["name"] == name and selectors.matches(o)],
                page.revision)


def _key(rt: ResourceType, obj: dict[str, Any]) -> str:
    md = obj["metadata"]
    return rt.key(md.get("namespace"), md["name"])


def list_body(rt: ResourceType, page: Page) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(page.revision)}
    if page.continue_token:
        metadata["continue"] = page.continue_token
    return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": metadata, "items": page.items}
