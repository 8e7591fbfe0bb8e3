"""COPY/ADD sources: which files a source argument names, walked in a fixed order, and their digest.

A ``SourceTree`` is a directory seen from inside: the build context (with ``.dockerignore``
applied) or, for ``COPY --from``, a stage's or image's mounted root filesystem. ``resolve`` turns the
source arguments into ``Source`` items as Docker does (paths cleaned and kept inside the tree,
symlinks followed within it, Go ``filepath.Match`` wildcards matched against paths relative to the
tree root, a matching directory taken whole). ``entries`` walks one source; the copy and the cache
key both use that walk, so what is hashed is exactly what is copied. ``digest`` hashes names, types,
permission bits, symlink targets and file contents (not times or owners: COPY resets owners).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.build.dockerignore import IgnoreMatcher
from engine.build.errors import BuildError
from engine.runtime.rootpath import secure_join

_WILDCARD_RE = re.compile(r"[*?\[]")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    path: Path  # on the host, symlinks resolved
    rel: str  # as named, relative to the tree root ("" for the root itself): gives the copy's name
    real_rel: str  # where it really is in the tree (differs through symlinks): for ignore checks
    is_dir: bool

    @property
    def name(self) -> str:
        return posixpath.basename(self.rel) or "."


@dataclass(frozen=True)
class Entry:
    path: Path  # on the host
    rel: str  # relative to the source ("" for the source itself)
    st: os.stat_result


def _go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match: ``*``/``?`` never cross ``/``; fnmatch's ``[!..]`` also takes ``[^..]``."""
    if pattern.count("/") != name.count("/"):
        return False
    pattern = pattern.replace("[^", "[!")
    return all(fnmatch.fnmatchcase(n, p) for p, n in zip(pattern.split("/"), name.split("/"), strict=True))


class SourceTree:
    """A directory COPY/ADD reads from; ``matcher`` hides ignored files (context only)."""

    def __init__(self, root: str | os.PathLike[str], *, matcher: IgnoreMatcher | None = None, label: str) -> None:
        self.root = Path(root)
        self.matcher = matcher or IgnoreMatcher([])
        self.label = label  # "build context" or "stage builder", for messages

    def _hidden(self, rel: str) -> bool:
        return self.matcher.excluded(rel)

    def _source(self, rel: str) -> Source | None:
        path = secure_join(self.root, rel)  # follows symlinks, inside the tree
        try:
            st = os.lstat(path)
        except OSError:
            return None
        real_rel = os.path.relpath(path, self.root)
        real_rel = "" if real_rel == "." else real_rel
        if self._hidden(rel) or (real_rel != rel and self._hidden(real_rel)):
            return None
        return Source(path=path, rel=rel, real_rel=real_rel, is_dir=stat.S_ISDIR(st.st_mode))

    def _glob(self, pattern: str) -> list[Source]:
        found: list[Source] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir
            keep_dirs = []
            for name in sorted(dirnames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if self._hidden(rel):
                    if not self.matcher.prunable(rel):
                        keep_dirs.append(name)
                    continue
                if _go_match(pattern, rel):
                    found.append(Source(path=Path(dirpath, name), rel=rel, real_rel=rel, is_dir=True))
                else:
                    keep_dirs.append(name)
            dirnames[:] = keep_dirs
            for name in sorted(filenames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if _go_match(pattern, rel) and (source := self._source(rel)) is not None:
                    found.append(source)
        found.sort(key=lambda s: s.rel)
        return found

    def resolve(self, sources: list[str], *, keyword: str) -> list[Source]:
        """The ``Source`` items the COPY/ADD source arguments name; raises if one names nothing."""
        out: list[Source] = []
        for raw in sources:
            rel = posixpath.normpath("/" + raw).lstrip("/")
            rel = "" if rel == "." else rel
            if _WILDCARD_RE.search(rel):
                matched = self._glob(rel)
                if not matched:
                    raise BuildError(f"{keyword} failed: no source files were specified matching {raw!r}")
                out += matched
                continue
            source = self._source(rel)
            if source is None:
                raise BuildError(
                    f"{keyword} failed: file not found in {self.label} or excluded by .dockerignore: "
                    f"stat {raw}: file does not exist"
                )
            out.append(source)
        return out

    def entries(self, source: Source) -> Iterator[Entry]:
        """The source itself, then (for a directory) everything under it, in sorted order."""
        yield Entry(path=source.path, rel="", st=os.lstat(source.path))
        if not source.is_dir:
            return
        yield from self._walk(source.path, tree_rel=source.real_rel, rel="")

    def _walk(self, base: Path, *, tree_rel: str, rel: str) -> Iterator[Entry]:
        try:
            names = sorted(os.listdir(base / rel if rel else base))
        except OSError as exc:
            raise BuildError(f"cannot read {tree_rel}/{rel}: {exc.strerror}") from None
        for name in names:
            child = f"{rel}/{name}" if rel else name
            full_rel = f"{tree_rel}/{child}" if tree_rel else child
            path = base / child
            st = os.lstat(path)
            if self._hidden(full_rel):
                if stat.S_ISDIR(st.st_mode) and not self.matcher.prunable(full_rel):
                    yield from self._walk(base, tree_rel=tree_rel, rel=child)  # an exception may re-include below
                continue
            yield Entry(path=path, rel=child, st=st)
            if stat.S_ISDIR(st.st_mode):
                yield from self._walk(base, tree_rel=tree_rel, rel=child)

    def digest(self, sources: list[Source]) -> str:
        """A content digest of everything ``sources`` would copy."""
        h = hashlib.sha256()
        for source in sources:
            h.update(f"source {source.rel} {int(source.is_dir)}\n".encode())
            for entry in self.entries(source):
                h.update(_entry_line(entry))
                if stat.S_ISREG(entry.st.st_mode):
                    with open(entry.path, "rb") as f:
                        while chunk := f.read(_CHUNK):
                            h.update(chunk)
        return "sha256:" + h.hexdigest()


def _entry_line(entry: Entry) -> bytes:
    mode = entry.st.st_mode
    extra = os.readlink(entry.path) if stat.S_ISLNK(mode) else str(entry.st.st_size)
    return f"\n{entry.rel}\0{stat.S_IFMT(mode):o}\0{stat.S_IMODE(mode):o}\0{extra}\n".encode(errors="surrogateescape")
