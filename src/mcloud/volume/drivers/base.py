"""The Protocol every volume backend implements (Cinder's volume driver, made small).

A backend stores volumes and snapshots by id under Cinder's names (``volume-<id>``,
``snapshot-<id>``) and tells compute how to open one (:meth:`VolumeBackend.connection_info`).
The volume service's manager (``volume/manager.py``) calls it from durable tasks, so every call
must be idempotent: creating what already exists with the same size, deleting what is gone, are
not errors (a task resumed after a restart calls again). A call that fails raises
:class:`BackendError` with a message a user may read (it becomes the volume's user message).

Sizes are GiB as Cinder counts them; data streams are raw bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol


class BackendError(RuntimeError):
    """A backend operation failed; the message is shown to users."""


class BackendNotFound(BackendError):
    """The backend has no such volume or snapshot."""


@dataclasses.dataclass(frozen=True)
class Capacity:
    """What a backend reports to the scheduler (Cinder's pool stats)."""

    total_gb: float
    free_gb: float
    thin_provisioning: bool = True


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """An image a volume is made from, as the image service holds it."""

    id: str
    disk_format: str  # "qcow2", "raw", ...
    size: int  # bytes stored
    virtual_size: int | None = None
    checksum: str | None = None  # os_hash_value (sha512) or md5 checksum, to key caches
    #: "pool/image@snap" when the image service keeps the image in Ceph (the rbd store's
    #: protected snapshot), with its Ceph configuration file: an rbd backend clones it
    rbd: str | None = None
    ceph_conf: str | None = None
    #: a local file holding the image's data when the image service stores files (the file
    #: store): a file backend may copy or cache from it without a stream; never written
    path: str | None = None
    #: streams the image's data from the image service (any store)
    open: Callable[[], AsyncIterator[bytes]] | None = None


class VolumeBackend(Protocol):
    #: the backend's name (the [volume.backends.NAME] table) and its volume_backend_name
    name: str
    backend_name: str
    #: "file", "rbd" or "fake"
    driver: str

    async def start(self) -> None:
        """Prepare the store (directories, pool connection). Called once before use."""

    async def close(self) -> None: ...

    async def capacity(self) -> Capacity: ...

    async def create(self, volume_id: str, size_gb: int) -> None:
        """A blank volume of ``size_gb`` GiB (thin)."""

    async def create_from_image(self, volume_id: str, size_gb: int, image: ImageSource) -> str:
        """A volume holding the image's data (converted to the backend's format), grown to
        ``size_gb``. Returns how it was made: "clone" (rbd clone of the image's snapshot),
        "overlay" (qcow2 over a cached copy), or "copy"."""

    async def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str,
                                   source_volume_id: str) -> None: ...

    async def clone(self, volume_id: str, size_gb: int, source_volume_id: str) -> None:
        """A copy of another volume of this backend (copy-on-write where the store can)."""

    async def delete(self, volume_id: str) -> None:
        """Remove the volume; snapshots of it are deleted first by the manager. A volume others
        depend on (clones, overlays) is flattened out of them or kept until they go: never
        breaks another volume."""

    async def extend(self, volume_id: str, size_gb: int) -> None: ...

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        """A point-in-time copy of the volume. Must work while a guest has the volume open (a
        forced snapshot of an in-use volume: crash-consistent)."""

    async def delete_snapshot(self, snapshot_id: str, volume_id: str) -> None: ...

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """The volume's data becomes the snapshot's (Cinder 3.40; volume available)."""

    async def connection_info(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        """How a host opens the volume, as Cinder's ``initialize_connection`` answers:
        ``{"driver_volume_type": "file", "data": {"name", "path", "format": "qcow2"}}`` or
        ``{"driver_volume_type": "rbd", "data": {"name": "pool/volume-<id>", "ceph_conf",
        "auth_username", "hosts", "ports", "format": "raw"}}``; plus ``volume_id``, ``access_mode``
        and ``discard`` in data as Cinder adds them."""

    async def read(self, volume_id: str, snapshot_id: str | None = None,
                   chunk_size: int = 4 << 20) -> AsyncIterator[bytes]:
        """The volume's (or its snapshot's) raw data, in chunks of ``chunk_size`` (the last may
        be shorter): for upload to image and backups."""
        ...

    async def write(self, volume_id: str, chunks: AsyncIterator[bytes]) -> None:
        """Overwrite an existing volume's data from raw chunks (restore, image download)."""

    async def list_ids(self) -> set[str]:
        """The names of every volume and snapshot the store holds (``volume-<id>``,
        ``snapshot-<id>``): for orphan checks after a crash."""
        ...
