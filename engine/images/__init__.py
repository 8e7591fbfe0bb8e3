"""The image half of the container engine: store, snapshots, registry client, tarballs.

Modules and their main calls ("sync" = blocking, run it in a thread from the daemon's loop;
"fast" = metadata only, fine to call on the loop; "async" = coroutine):

- ``errors``: ``ImageError`` (one-line ``str``, HTTP ``status``) and its subclasses
  ``InvalidReference``, ``ImageNotFound`` (``PlatformNotFound``), ``ImageConflict``,
  ``DigestMismatch``, ``UnsafeArchive``, ``ArchiveError``, ``UnsupportedImage``, ``StoreError``,
  ``MountError``, ``ConfigError``, ``RegistryError`` (``RegistryNotFound``, ``AuthError``,
  ``RegistryTimeout``, ``RegistryUnavailable``).
- ``reference``: ``parse_reference(text) -> Reference`` (Docker normalisation; ``.key()``,
  ``.familiar()``, ``.repository``, ``.tag``, ``.digest``).
- ``content``: ``ContentStore`` (base of ``ImageStore``), sync: ``put_blob``, ``put_blob_file``,
  ``ingest`` (a ``BlobWriter``: write/commit), ``read_blob``, ``document``, ``blob_path``; fast:
  ``lease()`` (a ``Lease``: ``add(*digests)``; gc keeps what is leased).
- ``store``: ``ImageStore(root)``. Fast: ``resolve(name_or_id) -> Image``, ``images()``,
  ``exists``, ``tag(src, dst)``, ``untag``, ``history`` (Docker API rows), ``layer_dirs``,
  ``prune_dangling()``. Sync: ``remove(name_or_id, force=, prune=)`` (Docker's rmi report),
  ``gc(keep_chains=)``, ``check(deep=)``, ``ensure_snapshots``, ``add_image(target, names)``,
  ``write_image(config=, layers=, names=, flavour=)`` (the builder's commit). ``Image`` has ``id``
  (config digest), ``repo_tags``, ``repo_digests``, ``size``, ``created``, ``config``,
  ``manifest``, ``layers``, ``diff_ids``, ``chain_ids``. ``store.in_use`` is a hook the daemon sets
  (image id -> container id or None) so rmi refuses images in use.
- ``snapshots``: ``SnapshotStore`` (``store.snapshots``), sync: ``unpack``, ``adopt`` (move a build
  step's upper dir in as a layer), ``exists``, ``fs(chain_id)``, ``meta``; ``chain_ids(diff_ids)``.
- ``unpack`` / ``pack``: sync ``unpack_layer(stream, dest)`` (safe, whiteouts to overlay form) and
  ``pack_dir(src, out, compress=) -> PackedLayer`` (overlay whiteouts to OCI ``.wh.`` entries).
- ``rootfs``: sync ``mount(store, image, target=, upper=, work=)``, ``unmount(target)``,
  ``mounted(...)`` (context manager), ``mount_overlay(lowers, ...)``, ``is_mounted``.
- ``registry``: ``RegistryClient(store, credentials=, insecure=, timeout=, chunk_size=)``, async:
  ``pull(ref, progress=) -> Image``, ``push(source, dest=, progress=) -> digest``,
  ``inspect(ref)``, ``close()``. ``auth.Credentials(user, password)``; docker ``config.json`` is
  read by default. Progress callbacks get ``pull.Progress(id, status, current, total)``.
- ``archive``: sync ``save(store, names, out, format="docker-archive"|"oci-archive")``,
  ``save_to_path``, ``load(store, src, default_name=) -> list[Loaded]`` (format autodetected).
"""
