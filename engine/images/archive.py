"""Image tarballs: ``save`` and ``load`` in the docker-archive and OCI image-layout formats.

docker-archive is what ``docker save`` writes and ``docker load`` reads: ``manifest.json`` (per
image: Config file, RepoTags, Layers files), ``repositories``, the config JSON and one uncompressed
tar per layer (so the layer files hash to the config's diff_ids). oci-archive is a tar of an OCI
image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``) as ``skopeo copy ...
oci-archive:`` writes; blobs go in and out unchanged, so digests survive a round trip. ``load``
tells the two apart by their files.

Loading extracts the tar into the store's tmp dir (same filesystem, so blobs are moved in, not
copied), never creating links: symlinks inside the archive (docker's layer de-duplication) are
resolved by name and must stay inside it. Every blob is digest-checked and every layer checked
against its diff_id on unpack; a failed load removes what it added. Both calls are blocking (the
daemon runs them in a thread).
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from engine.images import manifest as mf
from engine.images import mediatypes as mt
from engine.images.digest import sha256_of
from engine.images.errors import ArchiveError, ImageError, InvalidReference, UnsafeArchive
from engine.images.reference import TAG_RE, parse_reference
from engine.images.snapshots import chain_ids
from engine.images.store import NAME_ANNOTATION, REF_NAME_ANNOTATION, Image, ImageStore
from engine.images.unpack import HashingReader, compression_of, open_uncompressed, split_member_name

DOCKER_ARCHIVE = "docker-archive"
OCI_ARCHIVE = "oci-archive"
FORMATS = (DOCKER_ARCHIVE, OCI_ARCHIVE)
_COPY = 1 << 20
_MAX_LINK_HOPS = 16


@dataclass(frozen=True)
class Loaded:
    """One image a ``load`` made visible: its id and the names (familiar form) it got."""

    id: str
    names: tuple[str, ...]

    def messages(self) -> list[str]:
        """What ``docker load`` prints for it."""
        return [f"Loaded image: {n}" for n in self.names] or [f"Loaded image ID: {self.id}"]


# ---------------------------------------------------------------------------------------- save


class _TarWriter:
    """Streams entries into a tar on any writable file object (a pipe is fine)."""

    def __init__(self, out: BinaryIO) -> None:
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.written: set[str] = set()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        return info

    def add_dir(self, name: str) -> None:
        if name not in self.written:
            info = self._info(name, 0)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            self.tf.addfile(info)
            self.written.add(name)

    def add_bytes(self, name: str, data: bytes) -> None:
        if name not in self.written:
            self.tf.addfile(self._info(name, len(data)), io.BytesIO(data))
            self.written.add(name)

    def add_stream(self, name: str, size: int, stream: BinaryIO) -> None:
        if name not in self.written:
            self.tf.addfile(self._info(name, size), stream)
            self.written.add(name)

    def close(self) -> None:
        self.tf.close()


def _save_names(store: ImageStore, names: Sequence[str]) -> list[tuple[Image, str | None]]:
    """(image, the reference to record or None for an id) for each requested name."""
    out = []
    for name in names:
        image = store.resolve(name)
        try:
            ref = parse_reference(name)
        except InvalidReference:
            ref = None
        key = ref.key() if ref is not None and ref.key() in image.references else None
        out.append((image, key))
    return out


def _layer_diff_size(store: ImageStore, layer: dict[str, Any], chain: str) -> int:
    if store.snapshots.exists(chain):
        return int(store.snapshots.meta(chain)["size"])
    with open(store.blob_path(layer["digest"]), "rb") as raw:
        reader = HashingReader(open_uncompressed(raw))
        reader.drain()
        return reader.size


def _save_docker(store: ImageStore, images: list[tuple[Image, str | None]], tw: _TarWriter) -> None:
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for image, key in images:
        entry = by_id.get(image.id)
        if entry is None:
            config_name = f"{image.id[7:]}.json"
            tw.add_bytes(config_name, store.read_blob(image.id))
            layer_names = []
            for layer, diff_id, chain in zip(image.layers, image.diff_ids, image.chain_ids, strict=True):
                name = f"{diff_id[7:]}.tar"
                if name not in tw.written:
                    size = _layer_diff_size(store, layer, chain)
                    with open(store.blob_path(layer["digest"]), "rb") as raw:
                        tw.add_stream(name, size, open_uncompressed(raw))
                layer_names.append(name)
            entry = {"Config": config_name, "RepoTags": [], "Layers": layer_names}
            by_id[image.id] = entry
            manifest.append(entry)
        if key is not None and "@" not in key:
            ref = parse_reference(key)
            entry["RepoTags"].append(ref.familiar())
            if layer_names := entry["Layers"]:
                repositories.setdefault(ref.familiar_repository, {})[ref.tag or "latest"] = layer_names[-1][:-4]
    for entry in manifest:
        entry["RepoTags"] = entry["RepoTags"] or None
    tw.add_bytes("manifest.json", orjson.dumps(manifest))
    if repositories:
        tw.add_bytes("repositories", orjson.dumps(repositories))


def _save_oci(store: ImageStore, images: list[tuple[Image, str | None]], tw: _TarWriter) -> None:
    tw.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    tw.add_dir("blobs")
    tw.add_dir("blobs/sha256")

    def blob(digest: str) -> None:
        name = f"blobs/sha256/{digest[7:]}"
        if name not in tw.written:
            with open(store.blob_path(digest), "rb") as f:
                tw.add_stream(name, os.fstat(f.fileno()).st_size, f)

    entries = []
    for image, key in images:
        target = image.target
        if target["digest"] != image.manifest_digest:
            index = store.document(target["digest"])
            if all(store.has_blob(e["digest"]) for e in index.get("manifests", [])):
                blob(target["digest"])
            else:
                target = {
                    "mediaType": image.manifest.get("mediaType") or mt.OCI_MANIFEST,
                    "digest": image.manifest_digest,
                    "size": store.blob_size(image.manifest_digest),
                }
        for digest in [image.manifest_digest, image.id, *(layer["digest"] for layer in image.layers)]:
            blob(digest)
        if target["digest"] != image.manifest_digest:
            # other platforms of a complete index travel with it
            for child in store.document(target["digest"]).get("manifests", []):
                doc = store.document(child["digest"])
                if mf.document_kind(doc, child.get("mediaType")) == "manifest":
                    for digest in [child["digest"], doc["config"]["digest"], *(lay["digest"] for lay in doc["layers"])]:
                        blob(digest)
        entry: dict[str, Any] = {k: target[k] for k in ("mediaType", "digest", "size")}
        if key is not None:
            ref = parse_reference(key)
            entry["annotations"] = {NAME_ANNOTATION: key}
            if ref.tag is not None:
                entry["annotations"][REF_NAME_ANNOTATION] = ref.tag
        entries.append(entry)
    index_doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    tw.add_bytes("index.json", orjson.dumps(index_doc))


def save(store: ImageStore, names: Sequence[str], out: BinaryIO, *, format: str = DOCKER_ARCHIVE) -> None:
    """Write the images ``names`` (references or ids) to ``out`` as a tar in ``format``."""
    if format not in FORMATS:
        raise ArchiveError(f"unknown archive format {format!r} (use {' or '.join(FORMATS)})")
    if not names:
        raise ArchiveError("nothing to save: no image names given")
    with store.lease() as lease:
        images = _save_names(store, names)
        for image, _ in images:
            lease.add(image.target["digest"], image.manifest_digest, image.id, *(x["digest"] for x in image.layers))
        tw = _TarWriter(out)
        try:
            (_save_docker if format == DOCKER_ARCHIVE else _save_oci)(store, images, tw)
        finally:
            tw.close()


def save_to_path(
    store: ImageStore, names: Sequence[str], path: str | os.PathLike[str], *, format: str = DOCKER_ARCHIVE
) -> None:
    """``save`` into a file, written under a temp name and renamed so a failure leaves no partial tar."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as out:
            save(store, names, out, format=format)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# ---------------------------------------------------------------------------------------- load


class _Extracted:
    """An archive unpacked as plain files and dirs; symlinks and hard links kept as a name map."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links: dict[str, str] = {}  # archive path -> archive path it stands for

    def extract(self, src: BinaryIO) -> None:
        try:
            with tarfile.open(fileobj=src, mode="r|*") as tf:  # type: ignore[call-overload]
                for member in tf:
                    self._member(tf, member)
        except tarfile.TarError as exc:
            raise ArchiveError(f"not a valid tar archive: {exc}") from None
        except (EOFError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise ArchiveError(f"archive is truncated or corrupt: {exc}") from None

    def _member(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        comps = split_member_name(member.name)
        if not comps:
            return
        rel = "/".join(comps)
        if member.issym() or member.islnk():
            base = posixpath.dirname(rel) if member.issym() else ""
            target = posixpath.normpath(posixpath.join(base, member.linkname))
            if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise UnsafeArchive(f"archive link {member.name!r} points outside the archive: {member.linkname!r}")
            self.links[rel] = target
            return
        parent = self.root
        for comp in comps[:-1]:
            parent = parent / comp
            try:
                st = os.lstat(parent)
            except FileNotFoundError:
                parent.mkdir()
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise ArchiveError(f"archive entry {member.name!r}: {comp!r} is not a directory")
        path = parent / comps[-1]
        if member.isdir():
            path.mkdir(exist_ok=True)
        elif member.isreg():
            src = tf.extractfile(member)
            with open(path, "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, _COPY)
            self.links.pop(rel, None)

    def resolve(self, name: str) -> Path:
        """The real file an archive path names, following the archive's own links."""
        rel = posixpath.normpath(name.lstrip("/"))
        for _ in range(_MAX_LINK_HOPS):
            if rel == ".." or rel.startswith("../"):
                raise UnsafeArchive(f"archive path {name!r} points outside the archive")
            if rel not in self.links:
                path = self.root / rel
                if not path.is_file() or path.is_symlink():
                    raise ArchiveError(f"archive is missing {name!r}")
                return path
            rel = self.links[rel]
        raise ArchiveError(f"archive path {name!r}: too many levels of links")

    def exists(self, name: str) -> bool:
        try:
            self.resolve(name)
        except ImageError:
            return False
        return True

    def read(self, name: str, *, limit: int = mf.MAX_DOCUMENT) -> bytes:
        path = self.resolve(name)
        if path.stat().st_size > limit:
            raise ArchiveError(f"archive file {name!r} is larger than {limit} bytes")
        return path.read_bytes()


class _Loader:
    def __init__(self, store: ImageStore, extracted: _Extracted, lease: Any, default_name: str | None) -> None:
        self.store = store
        self.x = extracted
        self.lease = lease
        self.default_name = default_name
        self.created: list[str] = []
        self.imported: dict[Path, str] = {}

    def _import(self, name: str, expected: str | None = None) -> str:
        """Move an archive file into the store as a blob (once per file); returns its digest."""
        if expected is not None:
            self.lease.add(expected)
            if self.store.has_blob(expected):
                return expected
        path = self.x.resolve(name)
        if path in self.imported:
            return self.imported[path]
        digest, added = self.store.put_blob_file(path, expected=expected, lease=self.lease)
        self.imported[path] = digest
        if added:
            self.created.append(digest)
        return digest

    def _import_bytes(self, data: bytes) -> str:
        digest = sha256_of(data)
        self.lease.add(digest)
        if not self.store.has_blob(digest):
            self.created.append(digest)
            self.store.put_blob(data)
        return digest

    def _commit(self, target: dict[str, Any], names: list[str]) -> Loaded:
        _, manifest = self.store.pick_manifest(target)
        config = self.store.document(manifest["config"]["digest"])
        mf.check_config(config, layers=len(manifest["layers"]))
        chains = chain_ids(config["rootfs"]["diff_ids"])
        self.lease.add(*chains)
        self.created.extend(c for c in chains if not self.store.snapshots.exists(c))
        self.store.ensure_snapshots(manifest, config)
        image = self.store.add_image(target, names)
        familiar = tuple(parse_reference(n).familiar() for n in names)
        return Loaded(image.id, familiar)

    def docker(self) -> list[Loaded]:
        try:
            entries = orjson.loads(self.x.read("manifest.json"))
        except orjson.JSONDecodeError:
            raise ArchiveError("manifest.json is not valid JSON") from None
        if not isinstance(entries, list):
            raise ArchiveError("manifest.json is not a list")
        loaded = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise ArchiveError("manifest.json entry without a Config")
            config_bytes = self.x.read(entry["Config"])
            config = mf.load_document(config_bytes, what=entry["Config"])
            layer_files = entry.get("Layers") or []
            mf.check_config(config, layers=len(layer_files))
            config_digest = self._import_bytes(config_bytes)
            layers = []
            for layer_file, diff_id in zip(layer_files, config["rootfs"]["diff_ids"], strict=True):
                path = self.x.resolve(layer_file)
                with open(path, "rb") as f:
                    compression = compression_of(f.read(8))
                digest = self._import(layer_file, expected=diff_id if compression == "" else None)
                media = mt.OCI_LAYER if compression == "" else mt.OCI_LAYER_GZIP
                layers.append({"mediaType": media, "digest": digest, "size": self.store.blob_size(digest)})
            manifest = {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": layers,
            }
            manifest_bytes = mf.dumps(manifest)
            manifest_digest = self._import_bytes(manifest_bytes)
            names = [parse_reference(t).key() for t in entry.get("RepoTags") or []]
            target = {"mediaType": mt.OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}
            loaded.append(self._commit(target, names))
        return loaded

    def _walk_oci(self, desc: dict[str, Any], depth: int = 0) -> None:
        """Import a descriptor's blob and everything it references that the archive holds."""
        mf.check_descriptor(desc, what="index.json entry")
        digest = desc["digest"]
        self._import(f"blobs/sha256/{digest[7:]}", expected=digest)
        media = desc.get("mediaType", "")
        if media in mt.CONFIG_TYPES or media in mt.LAYER_COMPRESSION:
            return
        doc = self.store.document(digest)
        kind = mf.document_kind(doc, media if media in mt.INDEX_TYPES | mt.MANIFEST_TYPES else None)
        if kind == "index":
            mf.check_index(doc)
            if depth > 3:
                raise ArchiveError("image index nests too deeply")
            picked = mf.pick_platform(doc, self.store.platform)
            for child in doc["manifests"]:
                if child is picked or self.x.exists(f"blobs/sha256/{child['digest'][7:]}"):
                    self._walk_oci(child, depth + 1)
            return
        mf.check_manifest(doc)
        self._import(f"blobs/sha256/{doc['config']['digest'][7:]}", expected=doc["config"]["digest"])
        for layer in doc["layers"]:
            self._import(f"blobs/sha256/{layer['digest'][7:]}", expected=layer["digest"])

    def _oci_names(self, desc: dict[str, Any]) -> list[str]:
        annotations = desc.get("annotations") or {}
        full = annotations.get(NAME_ANNOTATION)
        if full:
            return [parse_reference(full).key()]
        ref_name = annotations.get(REF_NAME_ANNOTATION)
        if not ref_name:
            return [parse_reference(self.default_name).key()] if self.default_name else []
        if TAG_RE.fullmatch(ref_name) and "/" not in ref_name:
            # a bare tag (the OCI convention): it needs a repository to live in
            if self.default_name is None:
                return []
            return [parse_reference(self.default_name, default_tag=False).with_tag(ref_name).key()]
        return [parse_reference(ref_name).key()]

    def oci(self) -> list[Loaded]:
        try:
            index = orjson.loads(self.x.read("index.json"))
        except orjson.JSONDecodeError:
            raise ArchiveError("index.json is not valid JSON") from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ArchiveError("index.json has no manifests list")
        loaded = []
        for desc in index["manifests"]:
            self._walk_oci(desc)
            target = {k: desc[k] for k in ("mediaType", "digest", "size") if k in desc}
            if not target.get("mediaType"):
                kind = mf.document_kind(self.store.document(desc["digest"]))
                target["mediaType"] = mt.OCI_INDEX if kind == "index" else mt.OCI_MANIFEST
            loaded.append(self._commit(target, self._oci_names(desc)))
        return loaded


def detect_format(extracted: _Extracted) -> str:
    if extracted.exists("oci-layout") and extracted.exists("index.json"):
        return OCI_ARCHIVE
    if extracted.exists("manifest.json"):
        return DOCKER_ARCHIVE
    raise ArchiveError("not an image archive: no manifest.json (docker-archive) nor oci-layout/index.json (OCI)")


def load(store: ImageStore, src: BinaryIO | str | os.PathLike[str], *, default_name: str | None = None) -> list[Loaded]:
    """``docker load``: import every image of a docker-archive or OCI-layout tar (gzip allowed).

    ``default_name`` names images an OCI archive gives only a bare tag (or nothing); without it they
    load as dangling images.
    """
    if default_name is not None:
        parse_reference(default_name)
    with store.scratch_dir() as work, store.lease() as lease:
        loader: _Loader | None = None
        try:
            extracted = _Extracted(work)
            if isinstance(src, (str, os.PathLike)):
                with open(src, "rb") as f:
                    extracted.extract(f)
            else:
                extracted.extract(src)
            loader = _Loader(store, extracted, lease, default_name)
            return loader.docker() if detect_format(extracted) == DOCKER_ARCHIVE else loader.oci()
        except BaseException:
            lease.release()
            if loader is not None and loader.created:
                store.gc(candidates=loader.created)
            raise


def loaded_names(results: Iterable[Loaded]) -> list[str]:
    return [m for r in results for m in r.messages()]
