"""A container's root filesystem: mounted at create (or at a restart after a reboot), gone at remove.

An overlay of the image's layer snapshots with the container's own ``upper`` dir on top. For a
user-namespaced container each layer is first bound through an idmapped mount (see
``engine.runtime.idmap``) and the upper dir is handed to the container's root, so the image's
root-owned files belong to container root and writes land owned by the unprivileged host uid.
Mounts live in the host's mount namespace, which is why containers survive an engine restart.
Blocking (mount syscalls); call from a thread.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from engine.containers.layout import ContainerPaths
from engine.images import rootfs as image_rootfs
from engine.images.store import Image, ImageStore
from engine.runtime import idmap

log = logging.getLogger(__name__)


def _idmapped_lowers(lowers: list[Path], paths: ContainerPaths, mapping: idmap.IdMapping) -> list[Path]:
    """Bind every layer through ``mapping``; on a kernel that refuses, the plain layers."""
    targets = [paths.lowers / str(i) for i in range(len(lowers))]
    try:
        ns_fd = idmap.userns_fd(mapping)
    except OSError as exc:
        log.warning("no user namespace for idmapped layers (%s); image files will look owned by nobody", exc)
        return lowers
    try:
        for source, target in zip(lowers, targets, strict=True):
            if not image_rootfs.is_mounted(target):
                idmap.idmapped_bind(source, target, ns_fd=ns_fd)
    except OSError as exc:
        log.warning("idmapped layers refused (%s); image files will look owned by nobody", exc)
        _unmount_lowers(paths)
        return lowers
    finally:
        os.close(ns_fd)
    return targets


def mount(store: ImageStore, image: Image | str, paths: ContainerPaths, *, mapping: idmap.IdMapping | None) -> None:
    """Mount the container's root filesystem; a rootfs already mounted is left as it is."""
    if image_rootfs.is_mounted(paths.rootfs):
        return
    lowers = image_rootfs.image_lowers(store, image)
    for d in (paths.rootfs, paths.upper, paths.work):
        d.mkdir(parents=True, exist_ok=True)
    if mapping is not None:
        idmap.chown_tree_root(paths.upper, mapping)
        lowers = _idmapped_lowers(lowers, paths, mapping)
    try:
        image_rootfs.mount_overlay(lowers, target=paths.rootfs, upper=paths.upper, work=paths.work)
    except BaseException:
        _unmount_lowers(paths)
        raise


def _unmount_lowers(paths: ContainerPaths) -> None:
    if not paths.lowers.is_dir():
        return
    for target in paths.lowers.iterdir():
        image_rootfs.unmount(target, lazy=True)


def unmount(paths: ContainerPaths) -> None:
    """Unmount the rootfs and any idmapped layers (detaching if busy); unmounted ones are fine."""
    image_rootfs.unmount(paths.rootfs, lazy=True)
    _unmount_lowers(paths)


def is_mounted(paths: ContainerPaths) -> bool:
    return image_rootfs.is_mounted(paths.rootfs)
