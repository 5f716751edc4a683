"""The ``file`` store: image data as files under ``DATA_DIR/images`` (or ``[image.file] directory``).

Data is written to a hidden temporary file in the same directory and renamed into place only
once it is whole, so a failed or rejected upload leaves nothing behind, and a crash leaves only
a ``.tmp-*`` file that the next start removes. Reads and writes run in worker threads, a chunk
at a time, so memory stays constant whatever the image's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mcloud.image.drivers.base import Stored, StoreError

READ_CHUNK = 1 << 20


class FileStore:
    def __init__(self, store_id: str, directory: Path, description: str = "", fsync: bool = False):
        self.id = store_id
        self.description = description or f"Image files on the local disk ({store_id})"
        self.directory = Path(directory)
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(".tmp-*"):  # left by a crash mid-write
            with contextlib.suppress(OSError):
                stale.unlink()

    @property
    def properties(self) -> dict[str, Any]:
        return {"datadir_path": str(self.directory), "chunk_size": READ_CHUNK, "thin_provisioning": False}

    def path_of(self, location: str) -> Path:
        parsed = urlparse(location)
        if parsed.scheme != "file":
            raise StoreError(f"store {self.id} cannot read {parsed.scheme or 'a relative'} location")
        path = Path(unquote(parsed.path)).resolve()
        if path.parent != self.directory.resolve():
            raise StoreError(f"location is outside store {self.id}")
        return path

    async def add(self, image_id: str, chunks: AsyncIterable[bytes]) -> Stored:
        final = self.directory / image_id
        tmp = self.directory / f".tmp-{image_id}-{uuid.uuid4().hex[:8]}"
        loop = asyncio.get_running_loop()
        fd = await loop.run_in_executor(None, lambda: os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        size = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                await loop.run_in_executor(None, _write_all, fd, chunk)
                size += len(chunk)
            if self.fsync:
                await loop.run_in_executor(None, os.fsync, fd)
            os.close(fd)
            fd = -1
            await loop.run_in_executor(None, os.replace, tmp, final)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return Stored(location=final.resolve().as_uri(), size=size)

    async def read(self, location: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_of(location)
        loop = asyncio.get_running_loop()
        try:
            fd = await loop.run_in_executor(None, os.open, path, os.O_RDONLY)
        except FileNotFoundError:
            raise StoreError(f"image data is missing from store {self.id}") from None
        try:
            remaining = length
            pos = offset
            while remaining is None or remaining > 0:
                want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                data = await loop.run_in_executor(None, os.pread, fd, want, pos)
                if not data:
                    break
                pos += len(data)
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            os.close(fd)

    async def delete(self, location: str) -> None:
        path = self.path_of(location)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.get_running_loop().run_in_executor(None, path.unlink)

    async def close(self) -> None:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def create(store_id: str, options: dict[str, Any], data_dir: Path) -> FileStore:
    opts = dict(options)
    directory = Path(opts.pop("directory", data_dir / "images" / ("" if store_id == "file" else store_id)))
    description = str(opts.pop("description", ""))
    fsync = bool(opts.pop("fsync", False))
    if opts:
        raise ValueError(f"[image.{store_id}] has unknown keys: {', '.join(sorted(opts))}")
    return FileStore(store_id, directory, description, fsync)
