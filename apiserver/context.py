"""Who is asking and how: the per-request options every write path needs, in one record."""

from __future__ import annotations

from dataclasses import dataclass, field

from apiserver import errors

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


@dataclass
class RequestContext:
    user: User
    #: fieldManager of the request, else derived from the User-Agent as Kubernetes does
    manager: str = "unknown"
    dry_run: bool = False
    field_validation: str = "Warn"
    #: ``Warning`` headers to send back (unknown fields under fieldValidation=Warn, ...)
    warnings: list[str] = field(default_factory=list)
    #: a server-side apply: managedFields are already recorded as an Apply operation
    apply: bool = False


def manager_from_user_agent(user_agent: str | None) -> str:
    """``kubectl/v1.32.4 (linux/amd64) ...`` -> ``kubectl``."""
    if not user_agent:
        return "unknown"
    return user_agent.split("/", 1)[0].strip() or "unknown"


def from_query(query, *, user: User, user_agent: str | None) -> RequestContext:
    """Build the context from a request's query (``dryRun``, ``fieldManager``, ``fieldValidation``)."""
    dry_run_values = query.getall("dryRun", [])
    for value in dry_run_values:
        if value != "All":
            raise errors.bad_request(f'unsupported dryRun value "{value}": supported values: "All"')
    validation = query.get("fieldValidation") or "Warn"
    if validation not in FIELD_VALIDATION:
        raise errors.bad_request(f'fieldValidation "{validation}" is not a valid value: '
                                 f'supported values: "Ignore", "Strict", "Warn"')
    manager = query.get("fieldManager") or manager_from_user_agent(user_agent)
    if len(manager) > 128:
        raise errors.bad_request("fieldManager must not be longer than 128 characters")
    return RequestContext(user=user, manager=manager, dry_run=bool(dry_run_values),
                          field_validation=validation)
