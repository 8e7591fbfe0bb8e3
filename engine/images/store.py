"""The engine's content-addressable image store, in the OCI image-layout shape.

Under ``root`` (the daemon passes /var/lib/pinnace/engine): ``blobs/sha256/<hex>`` holds every
manifest, index, config and layer blob; ``index.json`` is the reference table, an OCI index whose
entries point at a manifest or index and carry the normalised name in ``io.containerd.image.name``
(``docker.io/library/busybox:latest`` or ``...@sha256:...``; an entry without a name is a dangling
image); ``snapshots/`` holds the unpacked layers (see ``snapshots``). An image's id is its config
digest, as in Docker. Of an index only the manifest for our platform is fetched and kept.

Safety: blobs are written crash-safe (see ``content``); ``index.json`` is replaced atomically
(fsync'd) and only after everything it names is present, so a crash or failure mid-pull leaves at
most unreferenced blobs, never a half image. Anything that writes blobs or snapshots holds a
``lease`` on them, which garbage collection respects.

All methods are blocking but the reference-table ones (resolve, images, tag, untag, history)
are fast metadata work; blob writes, ``remove`` (it collects garbage), ``ensure_snapshots``,
``write_image``, ``gc`` and ``check`` do real I/O and belong in a thread. The object is
thread-safe, and an advisory lock on ``root/lock`` serialises writers across processes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.images import manifest as mf
from engine.images import mediatypes as mt
from engine.images.content import ContentStore
from engine.images.digest import HEX_RE, check_digest, sha256_of, short_id
from engine.images.errors import (
    DigestMismatch,
    ImageConflict,
    ImageNotFound,
    InvalidReference,
    StoreError,
)
from engine.images.reference import Reference, parse_reference
from engine.images.snapshots import SnapshotStore, chain_ids

NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_SHORT_ID_RE = re.compile(r"(?:sha256:)?([a-f0-9]{1,64})")
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def parse_created(value: str | None) -> int:
    """Unix seconds of an RFC 3339 ``created`` timestamp (nanoseconds allowed); 0 if absent or bad."""
    if not value:
        return 0
    try:
        return int(dt.datetime.fromisoformat(_FRACTION_RE.sub(r"\1", value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


@dataclass(frozen=True)
class Image:
    """One image as users see it: id (config digest), its names, manifest and config."""

    id: str
    target: dict[str, Any]  # the descriptor a reference points at (manifest or index)
    manifest_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    references: tuple[str, ...]  # normalised names pointing here (tags and digest refs)
    size: int  # uncompressed bytes of all layers

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def layers(self) -> list[dict[str, Any]]:
        return self.manifest["layers"]

    @property
    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def repo_tags(self) -> list[str]:
        return [parse_reference(r).familiar() for r in self.references if "@" not in r]

    @property
    def repo_digests(self) -> list[str]:
        return [parse_reference(r).familiar() for r in self.references if "@" in r]

    @property
    def created(self) -> str:
        return self.config.get("created") or ""


@dataclass
class GcReport:
    blobs: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    bytes_freed: int = 0


class ImageStore(ContentStore):
    """Blobs, references and snapshots under one root directory."""

    def __init__(self, root: str | os.PathLike[str], *, platform: str = mf.DEFAULT_PLATFORM) -> None:
        super().__init__(root)
        self.platform = platform
        self.snapshots = SnapshotStore(self.root / "snapshots")
        self._index_path = self.root / "index.json"
        self._index_cache: tuple[tuple[int, int, int], list[dict[str, Any]]] | None = None
        layout = self.root / "oci-layout"
        if not layout.exists():
            self._atomic_write(layout, b'{"imageLayoutVersion":"1.0.0"}')
        if not self._index_path.exists():
            self._save_entries([])
        # blob downloads in flight (digest -> pull._Download), shared by every registry client
        self.inflight: dict[str, Any] = {}
        # set by the daemon: image id -> who uses it (a container id) or None; rmi refuses in-use images
        self.in_use: Callable[[str], str | None] | None = None

    # ---------------------------------------------------------------- reference table

    def _entries(self) -> list[dict[str, Any]]:
        st = self._index_path.stat()
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._index_cache
        if cached is not None and cached[0] == key:
            return [dict(e) for e in cached[1]]
        try:
            doc = orjson.loads(self._index_path.read_bytes())
        except orjson.JSONDecodeError:
            raise StoreError(f"{self._index_path} is corrupted") from None
        entries = doc.get("manifests", [])
        self._index_cache = (key, entries)
        return [dict(e) for e in entries]

    def _save_entries(self, entries: list[dict[str, Any]]) -> None:
        doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
        self._atomic_write(self._index_path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        self._index_cache = None

    @staticmethod
    def _name(entry: dict[str, Any]) -> str | None:
        return (entry.get("annotations") or {}).get(NAME_ANNOTATION)

    def pick_manifest(self, target: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The manifest (digest, document) a reference target stands for, picking our platform."""
        digest = target["digest"]
        media = target.get("mediaType")
        for _ in range(4):  # an index may nest an index; never more than a few levels
            doc = self.document(digest)
            if mf.document_kind(doc, media) == "manifest":
                return digest, doc
            chosen = mf.pick_platform(doc, self.platform)
            digest, media = chosen["digest"], chosen.get("mediaType")
        raise StoreError(f"image index {target['digest']} nests too deeply")

    def _image_id(self, entry: dict[str, Any]) -> str:
        return self.pick_manifest(entry)[1]["config"]["digest"]

    def _build(self, image_id: str, entry: dict[str, Any], entries: Iterable[dict[str, Any]]) -> Image:
        manifest_digest, manifest = self.pick_manifest(entry)
        config = self.document(image_id)
        names = tuple(n for e in entries if (n := self._name(e)) is not None)
        size = 0
        for layer, chain in zip(manifest["layers"], chain_ids(config["rootfs"]["diff_ids"]), strict=False):
            try:
                size += int(self.snapshots.meta(chain)["size"])
            except StoreError:
                size += int(layer.get("size", 0))
        target = {k: entry[k] for k in ("mediaType", "digest", "size") if k in entry}
        return Image(image_id, target, manifest_digest, manifest, config, names, size)

    def _grouped(self, entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            try:
                image_id = self._image_id(entry)
            except (StoreError, DigestMismatch):
                continue  # a damaged entry hides that image; ``check`` reports it
            groups.setdefault(image_id, []).append(entry)
        return groups

    def images(self) -> list[Image]:
        """Every image with at least one reference (tag, digest or dangling), newest first."""
        groups = self._grouped(self._entries())
        out = []
        for image_id, group in groups.items():
            named = [e for e in group if self._name(e) and "@" not in self._name(e)]  # type: ignore[operator]
            out.append(self._build(image_id, (named or group)[0], group))
        out.sort(key=lambda i: (parse_created(i.created), i.id), reverse=True)
        return out

    def _find(self, text: str, entries: list[dict[str, Any]]) -> tuple[str, dict[str, Any], bool]:
        """(image id, the entry it was found through, whether ``text`` named that entry exactly)."""
        text = text.strip()
        if text.startswith("sha256:") or HEX_RE.fullmatch(text):
            digest = text if text.startswith("sha256:") else f"sha256:{text}"
            if len(digest) == 71:
                check_digest(digest)
                for e in entries:
                    if self._safe_id(e) == digest:
                        return digest, e, False
                for e in entries:
                    if e.get("digest") == digest:
                        return self._image_id(e), e, False
                raise ImageNotFound(f"No such image: {text}")
        parse_error: InvalidReference | None = None
        try:
            ref = parse_reference(text)
        except InvalidReference as exc:
            parse_error, ref = exc, None
        if ref is not None:
            key = ref.key()
            for e in entries:
                if self._name(e) == key:
                    return self._image_id(e), e, True
            if ref.digest is not None:
                for e in entries:
                    name = self._name(e)
                    if e.get("digest") == ref.digest and name and parse_reference(name).repository == ref.repository:
                        return self._image_id(e), e, False
        short = _SHORT_ID_RE.fullmatch(text)
        if short is not None:
            prefix = "sha256:" + short.group(1)
            ids = {i for e in entries if (i := self._safe_id(e)) and i.startswith(prefix)}
            if len(ids) == 1:
                image_id = ids.pop()
                return image_id, next(e for e in entries if self._safe_id(e) == image_id), False
            if len(ids) > 1:
                raise InvalidReference(f"short image id {text!r} is ambiguous")
        if parse_error is not None:
            raise parse_error
        raise ImageNotFound(f"No such image: {text}")

    def _safe_id(self, entry: dict[str, Any]) -> str | None:
        try:
            return self._image_id(entry)
        except (StoreError, DigestMismatch):
            return None

    def resolve(self, text: str) -> Image:
        """The image ``text`` names: a reference (``busybox``, ``x@sha256:..``), a full or short id."""
        entries = self._entries()
        image_id, entry, _ = self._find(text, entries)
        group = [e for e in entries if self._safe_id(e) == image_id]
        return self._build(image_id, entry, group)

    def exists(self, text: str) -> bool:
        try:
            self.resolve(text)
        except ImageNotFound:
            return False
        return True

    def _put_ref(self, entries: list[dict[str, Any]], name: str | None, target: dict[str, Any]) -> None:
        """Point ``name`` (None: a dangling entry) at ``target`` in ``entries``, as Docker tags do.

        An image that loses its last reference this way stays as a dangling image, like Docker's
        ``<none>:<none>``, instead of silently becoming garbage.
        """
        descriptor = {k: target[k] for k in ("mediaType", "digest", "size") if k in target}
        new_id = self._image_id(descriptor)
        if name is None:
            if any(self._safe_id(e) == new_id for e in entries):
                return
            entries.append(descriptor)
            return
        annotations = {NAME_ANNOTATION: name}
        if "@" not in name:
            annotations[REF_NAME_ANNOTATION] = name.rsplit(":", 1)[1]
        old = next((e for e in entries if self._name(e) == name), None)
        if old is not None:
            entries.remove(old)
            old_id = self._safe_id(old)
            if old_id and old_id != new_id and not any(self._safe_id(e) == old_id for e in entries):
                entries.append({k: old[k] for k in ("mediaType", "digest", "size") if k in old})
        # a named image is no longer dangling
        entries[:] = [e for e in entries if self._name(e) is not None or self._safe_id(e) != new_id]
        entries.append({**descriptor, "annotations": annotations})

    def _check_complete(self, target: dict[str, Any]) -> None:
        """Refuse to reference an image whose blobs or snapshots are not all here."""
        _, manifest = self.pick_manifest(target)
        config = self.document(manifest["config"]["digest"])
        mf.check_config(config, layers=len(manifest["layers"]))
        for layer in manifest["layers"]:
            if not self.has_blob(layer["digest"]):
                raise StoreError(f"layer blob {layer['digest']} is missing from the store")
        for chain in chain_ids(config["rootfs"]["diff_ids"]):
            if not self.snapshots.exists(chain):
                raise StoreError(f"snapshot {chain} is missing from the store")

    def add_image(self, target: dict[str, Any], names: Iterable[str | Reference] = ()) -> Image:
        """Make a fully stored image visible under ``names`` (none: as a dangling image).

        The last step of every pull, load and build: until it runs the image does not exist.
        """
        mf.check_descriptor(target, what="image target")
        keys = [n.key() if isinstance(n, Reference) else parse_reference(n).key() for n in names]
        with self._locked():
            self._check_complete(target)
            entries = self._entries()
            for key in keys or [None]:
                self._put_ref(entries, key, target)
            self._save_entries(entries)
        if keys:
            return self.resolve(keys[0])
        # the same image may already be stored under another manifest: find it by its id
        return self.resolve(self._image_id({k: target[k] for k in ("mediaType", "digest", "size") if k in target}))

    def tag(self, source: str, target: str) -> Image:
        """``docker tag``: point the tag ``target`` at the image ``source`` names."""
        ref = parse_reference(target)
        if ref.digest is not None:
            raise InvalidReference(f"refusing to create a tag with a digest reference: {target}")
        with self._locked():
            image = self.resolve(source)
            entries = self._entries()
            self._put_ref(entries, ref.key(), image.target)
            self._save_entries(entries)
        return self.resolve(ref.key())

    def untag(self, text: str) -> None:
        """Drop one reference, keeping the image (dangling if it was the last)."""
        key = parse_reference(text).key()
        with self._locked():
            entries = self._entries()
            entry = next((e for e in entries if self._name(e) == key), None)
            if entry is None:
                raise ImageNotFound(f"No such image: {text}")
            entries.remove(entry)
            image_id = self._safe_id(entry)
            if image_id and not any(self._safe_id(e) == image_id for e in entries):
                entries.append({k: entry[k] for k in ("mediaType", "digest", "size") if k in entry})
            self._save_entries(entries)

    def remove(self, text: str, *, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """``docker rmi``: untag, and delete the image once no tag is left; returns Docker's report.

        By name, only that reference goes unless it was the image's last tag. By id, every
        reference goes, but an image tagged in several repositories needs ``force`` (as Docker).
        An image a container uses (``in_use``) is refused unless forced.
        """
        report: list[dict[str, str]] = []
        deleted = False
        with self._locked():
            entries = self._entries()
            image_id, entry, by_name = self._find(text, entries)
            group = [e for e in entries if self._safe_id(e) == image_id]
            if by_name:
                remaining = [e for e in group if e is not entry]
                doomed = [entry] if any(self._is_tag(e) for e in remaining) else group
            else:
                repos = {parse_reference(n).repository for e in group if (n := self._name(e)) and self._is_tag(e)}
                if len(repos) > 1 and not force:
                    raise ImageConflict(
                        f"conflict: unable to delete {short_id(image_id)} (must be forced) - "
                        "image is referenced in multiple repositories"
                    )
                doomed = group
            if len(doomed) == len(group):
                user = self.in_use(image_id) if self.in_use is not None else None
                if user is not None and not force:
                    raise ImageConflict(
                        f"conflict: unable to delete {short_id(image_id)} (must be forced) - "
                        f"image is being used by container {user[:12]}"
                    )
                deleted = True
            for e in doomed:
                entries.remove(e)
                if (name := self._name(e)) is not None:
                    report.append({"Untagged": parse_reference(name).familiar()})
            self._save_entries(entries)
        if deleted:
            report.append({"Deleted": image_id})
            if prune:
                gc = self.gc()
                report.extend({"Deleted": chain} for chain in gc.snapshots)
        return report

    @staticmethod
    def _is_tag(entry: dict[str, Any]) -> bool:
        name = ImageStore._name(entry)
        return name is not None and "@" not in name

    def prune_dangling(self) -> list[str]:
        """``docker image prune``: drop images with no name at all; returns their ids."""
        with self._locked():
            entries = self._entries()
            dangling = [e for e in entries if self._name(e) is None]
            ids = [i for e in dangling if (i := self._safe_id(e)) and not (self.in_use and self.in_use(i))]
            entries = [e for e in entries if self._name(e) is not None or self._safe_id(e) not in ids]
            self._save_entries(entries)
        return ids

    def history(self, text: str) -> list[dict[str, Any]]:
        """``docker history`` rows (Docker API shape), newest first, from the image config."""
        image = self.resolve(text)
        rows = []
        layer_sizes = []
        for chain in image.chain_ids:
            try:
                layer_sizes.append(int(self.snapshots.meta(chain)["size"]))
            except StoreError:
                layer_sizes.append(0)
        history = image.config.get("history") or [{} for _ in image.diff_ids]
        layer_index = 0
        for item in history:
            size = 0
            if not item.get("empty_layer"):
                size = layer_sizes[layer_index] if layer_index < len(layer_sizes) else 0
                layer_index += 1
            rows.append(
                {
                    "Id": "<missing>",
                    "Created": parse_created(item.get("created")),
                    "CreatedBy": item.get("created_by", ""),
                    "Tags": None,
                    "Size": size,
                    "Comment": item.get("comment", ""),
                }
            )
        rows.reverse()
        if rows:
            rows[0]["Id"] = image.id
            rows[0]["Tags"] = image.repo_tags or None
        return rows

    # ---------------------------------------------------------------- layers and snapshots

    def ensure_snapshots(self, manifest: dict[str, Any], config: dict[str, Any]) -> list[str]:
        """Unpack every layer of an image that is not yet a snapshot; returns the chain ids."""
        diff_ids = config["rootfs"]["diff_ids"]
        chains = chain_ids(diff_ids)
        for i, (layer, chain) in enumerate(zip(manifest["layers"], chains, strict=True)):
            if not self.snapshots.exists(chain):
                self.snapshots.unpack(
                    chain_id=chain,
                    diff_id=diff_ids[i],
                    parent=chains[i - 1] if i else None,
                    blob=self.blob_path(layer["digest"]),
                )
        return chains

    def layer_dirs(self, text: str | Image) -> list[Path]:
        """The snapshot dirs of an image, bottom layer first (reverse them for overlay lowerdir)."""
        image = text if isinstance(text, Image) else self.resolve(text)
        dirs = []
        for chain in image.chain_ids:
            if not self.snapshots.exists(chain):
                raise StoreError(f"snapshot {chain} of image {image.short_id} is missing")
            dirs.append(self.snapshots.fs(chain))
        return dirs

    def write_image(
        self,
        *,
        config: dict[str, Any],
        layers: Sequence[dict[str, Any]],
        names: Iterable[str] = (),
        flavour: str = "docker",
    ) -> Image:
        """Commit a built image: ``layers`` are descriptors of blobs already in the store.

        Writes the config and a manifest (Docker v2 schema 2 by default, as ``docker build``
        pushes; ``flavour="oci"`` for OCI), unpacks missing snapshots and references the result.
        """
        types = mt.FLAVOURS[flavour]
        mf.check_config(config, layers=len(layers))
        with self.lease() as lease:
            config_bytes = orjson.dumps(config)
            config_digest = sha256_of(config_bytes)
            lease.add(config_digest, *(layer["digest"] for layer in layers))
            self.put_blob(config_bytes)
            manifest = {
                "schemaVersion": 2,
                "mediaType": types["manifest"],
                "config": {"mediaType": types["config"], "digest": config_digest, "size": len(config_bytes)},
                "layers": [
                    {
                        "mediaType": _layer_type(layer.get("mediaType", mt.OCI_LAYER_GZIP), flavour),
                        "digest": layer["digest"],
                        "size": layer["size"],
                    }
                    for layer in layers
                ],
            }
            manifest_bytes = mf.dumps(manifest)
            lease.add(sha256_of(manifest_bytes), *chain_ids(config["rootfs"]["diff_ids"]))
            manifest_digest = self.put_blob(manifest_bytes)
            self.ensure_snapshots(manifest, config)
            target = {"mediaType": types["manifest"], "digest": manifest_digest, "size": len(manifest_bytes)}
            return self.add_image(target, names)

    # ---------------------------------------------------------------- garbage collection and checks

    def _reachable(self, entries: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        blobs: set[str] = set()
        chains: set[str] = set()

        def walk(digest: str, media: str | None) -> None:
            if digest in blobs or not self.has_blob(digest):
                return
            blobs.add(digest)
            try:
                doc = self.document(digest)
                kind = mf.document_kind(doc, media)
            except Exception:
                return  # damaged: keep the blob itself, ``check`` reports it
            if kind == "index":
                for child in doc.get("manifests", []):
                    walk(child["digest"], child.get("mediaType"))
                return
            blobs.add(doc["config"]["digest"])
            blobs.update(layer["digest"] for layer in doc["layers"])
            with contextlib.suppress(Exception):
                chains.update(chain_ids(self.document(doc["config"]["digest"])["rootfs"]["diff_ids"]))

        for entry in entries:
            walk(entry["digest"], entry.get("mediaType"))
        return blobs, chains

    def gc(self, *, keep_chains: Iterable[str] = (), candidates: Iterable[str] | None = None) -> GcReport:
        """Delete blobs and snapshots no reference, lease or ``keep_chains`` (containers) needs.

        With ``candidates`` only those digests/chain ids are considered: the cleanup after a failed
        pull, which must not touch anything else.
        """
        report = GcReport()
        with self._locked():
            blobs, chains = self._reachable(self._entries())
            chains.update(keep_chains)
            with self._lease_lock:
                leased = {d for d, n in self._leased.items() if n > 0}
                active_tmp = set(self._active_tmp)
                keep = blobs | chains | leased
                if candidates is None:
                    blob_candidates = ["sha256:" + p.name for p in self.blobs_dir.iterdir() if HEX_RE.fullmatch(p.name)]
                    chain_candidates = self.snapshots.list()
                else:
                    wanted = set(candidates)
                    blob_candidates = [d for d in wanted if self.has_blob(d)]
                    chain_candidates = [c for c in wanted if self.snapshots.exists(c)]
                for digest in blob_candidates:
                    if digest in keep:
                        continue
                    path = self.blob_path(digest)
                    with contextlib.suppress(FileNotFoundError):
                        size = path.stat().st_size
                        path.unlink()
                        report.blobs.append(digest)
                        report.bytes_freed += size
                        self._docs.pop(digest, None)
                for chain in chain_candidates:
                    if chain not in keep:
                        with contextlib.suppress(StoreError):
                            report.bytes_freed += int(self.snapshots.meta(chain).get("size", 0))
                        if self.snapshots.detach(chain):
                            report.snapshots.append(chain)
            if candidates is None:
                for p in self.tmp_dir.iterdir():
                    if p.name not in active_tmp:
                        if p.is_dir() and not p.is_symlink():
                            shutil.rmtree(p, ignore_errors=True)
                        else:
                            with contextlib.suppress(FileNotFoundError):
                                p.unlink()
        self.snapshots.purge()
        return report

    def check(self, *, deep: bool = False) -> list[str]:
        """Problems in the store (empty when consistent): every reference must resolve to a complete
        image. ``deep`` also re-hashes every blob. Tests use it to prove a failure left no mess."""
        problems: list[str] = []
        for entry in self._entries():
            label = self._name(entry) or entry.get("digest", "?")
            try:
                self._check_complete(entry)
            except Exception as exc:
                problems.append(f"{label}: {exc}")
        if deep:
            for p in self.blobs_dir.iterdir():
                with open(p, "rb") as f:
                    actual = hashlib.file_digest(f, "sha256").hexdigest()
                if actual != p.name:
                    problems.append(f"blob {p.name}: content hashes to {actual}")
        return problems


def _layer_type(media: str, flavour: str) -> str:
    """Translate a layer media type to the manifest flavour (compression kept)."""
    compression = mt.LAYER_COMPRESSION.get(media)
    if compression is None:
        return media
    types = mt.FLAVOURS[flavour]
    if compression == "gzip":
        return types["layer+gzip"]
    if compression == "":
        return types["layer"]
    return media
