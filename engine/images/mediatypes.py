"""Media types of the OCI image spec and Docker's v2 schema 2, in tables the rest of the code reads.

Registries and archives label every document and blob with one of these; the engine treats the
OCI and Docker flavours alike, so the tables map each type to what it *is* (index, manifest,
config, layer) and, for layers, how it is compressed.
"""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})

# layer media type -> compression ("" = plain tar); unpacking sniffs the bytes anyway
LAYER_COMPRESSION: dict[str, str] = {
    OCI_LAYER: "",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_ND: "",
    OCI_LAYER_ND_GZIP: "gzip",
    DOCKER_LAYER: "",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN: "gzip",
}

# what the registry client asks for when it fetches a manifest
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

# the media types a manifest of each flavour uses for its config and (gzip) layers
FLAVOURS: dict[str, dict[str, str]] = {
    "oci": {"manifest": OCI_MANIFEST, "config": OCI_CONFIG, "layer": OCI_LAYER, "layer+gzip": OCI_LAYER_GZIP},
    "docker": {
        "manifest": DOCKER_MANIFEST,
        "config": DOCKER_CONFIG,
        "layer": DOCKER_LAYER,
        "layer+gzip": DOCKER_LAYER_GZIP,
    },
}
