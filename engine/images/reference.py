"""Image references parsed and normalised the way Docker's ``distribution/reference`` does.

``busybox`` means ``docker.io/library/busybox:latest``; ``localhost:5000/x:1`` keeps its registry;
``name@sha256:...`` pins a digest. The store keys its reference table by the normalised string, and
shows users the "familiar" short form (``busybox:latest``), as ``docker images`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.images.digest import check_digest
from engine.images.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
TAG_RE = re.compile(_TAG)
_ANY_HEX64 = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    """A normalised reference: registry domain, repository path, and a tag and/or digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path``: the repository the reference lives in."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def familiar_repository(self) -> str:
        """The repository as users type it: ``busybox``, ``user/app``, ``localhost:5000/x``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        official = self.path.removeprefix(OFFICIAL_PREFIX)
        return official if "/" not in official else self.path

    def familiar(self) -> str:
        """Short form for display (``busybox:latest``, ``busybox@sha256:...``)."""
        out = self.familiar_repository
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def remote_object(self) -> str:
        """What the registry's ``/manifests/<x>`` path takes: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> Reference:
        if not TAG_RE.fullmatch(tag):
            raise InvalidReference(f"invalid tag format: {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, check_digest(digest))

    def key(self) -> str:
        """The string the store keys the reference table by: ``repo@digest`` wins over ``repo:tag``."""
        if self.digest is not None:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    is_domain = sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first)
    if not is_domain:
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text``; with ``default_tag`` a reference without tag or digest gets ``latest``."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("invalid reference format: empty name")
    if _ANY_HEX64.fullmatch(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        lowered = text.lower()
        if lowered != text and _REFERENCE_RE.fullmatch(lowered):
            raise InvalidReference(f"invalid reference format: repository name ({text}) must be lowercase")
        raise InvalidReference(f"invalid reference format: {text!r}")
    name, tag, digest = match.group("name", "tag", "digest")
    if len(name) > NAME_MAX:
        raise InvalidReference(f"invalid reference format: repository name must not be more than {NAME_MAX} characters")
    if digest is not None:
        check_digest(digest)
    domain, path = _split_domain(name)
    if path.lower() != path:
        raise InvalidReference(f"invalid reference format: repository name ({text}) must be lowercase")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def parse_repository(text: str) -> Reference:
    """Parse a bare repository name (no tag, no digest), as ``docker push/pull --all-tags`` take."""
    ref = parse_reference(text, default_tag=False)
    if ref.tag is not None or ref.digest is not None:
        raise InvalidReference(f"invalid repository name: {text!r} has a tag or digest")
    return ref
