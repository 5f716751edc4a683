"""The chunked backup driver (Cinder's ``ChunkedBackupDriver``, made small), over a store of
named objects: files (``file``), RADOS objects in a Ceph pool (``rbd``) or memory (``fake``).

A backup cuts the volume's raw data into chunks of ``chunk_size`` bytes and keeps, per chunk,
its sha256 and the name of the object holding it. A chunk of zeros is not stored at all (a thin
volume's backup stays small). An incremental backup compares each chunk's sha256 with its
parent's and stores only the chunks that changed; the others name the parent's objects (a
parent cannot be deleted while incrementals depend on it, so those objects stay). A restore
reads the chunks in order and checks each one against its sha256, so a damaged backup fails
instead of writing wrong data.

Objects are named ``<container>/<backup id>/<chunk index>``, and each backup also writes its
metadata as ``<container>/<backup id>/metadata`` (last, so a backup that has one is whole). A
delete removes every object under its own prefix, which also cleans up after a backup that was
cut short.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import quote

from mcloud.volume.backup_drivers.base import BackupError, Progress

ZERO = "zero"  # the sha256 slot of a chunk that was all zeros (no object)
VERSION = 1


class ObjectStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, name: str, data: bytes) -> None:
        """Write the whole object (replacing one of that name): all or nothing."""

    async def get(self, name: str) -> bytes:
        """The object's data; BackupError if it is not there."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose name starts with ``prefix``; how many went."""
        ...

    async def names(self) -> set[str]: ...


def prefix_of(container: str, backup_id: str) -> str:
    """A container is any string up to 255 characters: quoted, so it is one path component."""
    safe = quote(container, safe="") or "%00"
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    return f"{safe}/{backup_id}/"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def rechunk(data: AsyncIterator[bytes], size: int, chunk_size: int, pad: bool = True) -> AsyncIterator[bytes]:
    """At most ``size`` bytes of ``data`` in chunks of ``chunk_size`` (the last may be shorter).
    A stream that ends early is padded with zeros up to ``size`` (a volume reads as zeros past
    its data); with ``pad=False`` only up to the end of its last chunk."""
    buffer = bytearray()
    sent = 0
    async for piece in data:
        buffer += piece
        while len(buffer) >= chunk_size and sent < size:
            take = min(chunk_size, size - sent)
            yield bytes(buffer[:take])
            del buffer[:take]
            sent += take
        if sent >= size:
            return
    while sent < size and (pad or buffer):
        take = min(chunk_size, size - sent)
        out = bytes(buffer[:take])
        del buffer[:take]
        if len(out) < take:
            out += bytes(take - len(out))
        yield out
        sent += take


class ChunkedBackupDriver:
    def __init__(self, name: str, store: ObjectStore, chunk_size: int = 4 << 20):
        if chunk_size < 4096 or chunk_size > (64 << 20):
            raise ValueError("[volume.backup] chunk_size must be from 4096 bytes to 64 MiB")
        self.name = name
        self.store = store
        self.chunk_size = chunk_size
        self._zeros = bytes(chunk_size)

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    async def backup(self, backup_id: str, container: str, data: AsyncIterator[bytes], size: int,
                     parent: dict[str, Any] | None = None, progress: Progress | None = None) -> dict[str, Any]:
        prefix = prefix_of(container, backup_id)
        chunk_size = self.chunk_size
        parent_chunks: list[list[Any]] = []
        if parent is not None:
            if parent.get("chunk_size") != chunk_size:
                # the store's chunk size changed since the parent: compare nothing, store all
                parent_chunks = []
            else:
                parent_chunks = list(parent.get("chunks") or [])
        chunks: list[list[Any]] = []
        written = 0
        done = 0
        pending: asyncio.Task[None] | None = None  # one write on its way while the next is hashed
        try:
            async for chunk in rechunk(data, size, chunk_size, pad=False):
                index = len(chunks)
                zero = chunk == self._zeros[:len(chunk)]
                if zero:
                    chunks.append([ZERO, None])
                else:
                    digest = await asyncio.to_thread(_digest, chunk)
                    before = parent_chunks[index] if index < len(parent_chunks) else None
                    if before is not None and before[0] == digest and before[1] is not None:
                        chunks.append([digest, before[1]])
                    else:
                        name = f"{prefix}{index:08d}"
                        if pending is not None:
                            await pending
                        pending = asyncio.ensure_future(self.store.put(name, chunk))
                        chunks.append([digest, name])
                        written += 1
                done += len(chunk)
                if progress is not None:
                    await progress(done, size)
            if pending is not None:
                await pending
                pending = None
            # the stream ended before the volume did: the rest reads as zeros
            total = -(-size // chunk_size)
            chunks.extend([ZERO, None] for _ in range(total - len(chunks)))
            if progress is not None and done < size:
                await progress(size, size)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
        metadata = {"version": VERSION, "chunk_size": chunk_size, "size": size, "chunks": chunks,
                    "object_count": written, "prefix": prefix,
                    "parent_prefix": (parent or {}).get("prefix")}
        await self.store.put(f"{prefix}metadata", json.dumps(metadata).encode())
        return metadata

    async def restore(self, metadata: dict[str, Any], progress: Progress | None = None) -> AsyncIterator[bytes]:
        """The data from the start up to its last chunk that is not zeros (a volume written with
        it reads zeros past what it was given: see the backends' ``write``)."""
        size = int(metadata["size"])
        chunk_size = int(metadata["chunk_size"])
        entries = list(metadata["chunks"])
        while entries and entries[-1][0] == ZERO:
            entries.pop()
        end = min(size, len(entries) * chunk_size)
        done = 0
        for index, (digest, name) in enumerate(entries):
            length = min(chunk_size, size - index * chunk_size)
            if digest == ZERO:
                chunk = bytes(length)
            else:
                chunk = await self.store.get(name)
                if len(chunk) != length or await asyncio.to_thread(_digest, chunk) != digest:
                    raise BackupError(f"Backup data is damaged: chunk {index} ({name}) does not match "
                                      f"its sha256 checksum.")
            done += length
            yield chunk
            if progress is not None:
                await progress(done, end)

    async def delete(self, backup_id: str, container: str) -> None:
        await self.store.delete_prefix(prefix_of(container, backup_id))

    async def object_names(self) -> set[str]:
        return await self.store.names()
