"""The ``fake`` store: image data in this process's memory, for fast tests.

It keeps the same promises as a real store: ``add`` keeps nothing when the chunks fail, reads
honour offset and length, and deleting a missing location is not an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

from mcloud.image.drivers.base import Stored, StoreError


class FakeStore:
    def __init__(self, store_id: str = "fake", description: str = "", capacity: int | None = None):
        self.id = store_id
        self.description = description or "Image data in memory (tests only)"
        self.capacity = capacity
        self.blobs: dict[str, bytes] = {}

    @property
    def properties(self) -> dict[str, Any]:
        return {}

    async def add(self, image_id: str, chunks: AsyncIterable[bytes]) -> Stored:
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if self.capacity is not None and self.used + size > self.capacity:
                raise StoreError(f"store {self.id} is full")
            parts.append(bytes(chunk))
        location = f"fake://{self.id}/{image_id}"
        self.blobs[location] = b"".join(parts)
        return Stored(location=location, size=size)

    @property
    def used(self) -> int:
        return sum(len(b) for b in self.blobs.values())

    async def read(self, location: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        try:
            data = self.blobs[location]
        except KeyError:
            raise StoreError(f"image data is missing from store {self.id}") from None
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, 65536):
            yield data[start:min(end, start + 65536)]

    async def delete(self, location: str) -> None:
        self.blobs.pop(location, None)

    async def close(self) -> None:
        pass


def create(store_id: str, options: dict[str, Any], data_dir: Path) -> FakeStore:
    opts = dict(options)
    capacity = opts.pop("capacity", None)
    description = str(opts.pop("description", ""))
    if opts:
        raise ValueError(f"[image.{store_id}] has unknown keys: {', '.join(sorted(opts))}")
    return FakeStore(store_id, description, int(capacity) if capacity is not None else None)
