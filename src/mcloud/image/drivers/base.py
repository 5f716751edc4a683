"""The Protocol every image store implements.

The image service streams data through a store: it counts, hashes and inspects the bytes on
their way in (the store only keeps them), and reads them back in chunks for downloads. A store
never holds a whole image in memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class Stored:
    """Where a store put an image's data: ``location`` is Glance's location URL
    (``file:///...``, ``rbd://<fsid>/<pool>/<image>/snap``), ``size`` the bytes written."""

    location: str
    size: int


class StoreError(Exception):
    """The store could not keep or give the data (full, unreachable, gone). The image API
    answers 503 unless a subclass says otherwise."""


class InUse(StoreError):
    """The data cannot be deleted: volumes or servers were cloned from it (or it is open).
    The image API answers 409 Conflict and keeps the image."""


class StoreFull(StoreError):
    """The store has no room for the data. The image API answers 413."""


class AlreadyExists(StoreError):
    """The store already holds data under this image id."""


class ImageStore(Protocol):
    #: the store's id, as in /v2/info/stores and ``os_glance_*_stores``
    id: str
    #: what /v2/info/stores shows of it (description, properties)
    description: str

    async def add(self, image_id: str, chunks: AsyncIterable[bytes]) -> Stored:
        """Write the chunks as ``image_id``'s data and return where they are. On any error
        (including one raised by the iterator, e.g. a rejected upload) nothing is left behind."""
        ...

    def read(self, location: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The data at ``location`` from ``offset``, ``length`` bytes (all when None), in chunks."""
        ...

    async def delete(self, location: str) -> None:
        """Remove the data; a location already gone is not an error."""
        ...

    async def close(self) -> None:
        ...
