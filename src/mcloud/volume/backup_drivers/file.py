"""Backup objects as files under ``DATA_DIR/backups`` (option ``path``): each written to a
temporary name, flushed to disk and renamed into place, so an object is whole or absent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from mcloud.volume.backup_drivers.base import BackupError


class Store:
    def __init__(self, options: dict[str, Any], data_dir: Path):
        options = dict(options)
        self.root = Path(options.pop("path", None) or Path(data_dir) / "backups")
        if options:
            raise ValueError(f"[volume.backup] unknown options for the file driver: {', '.join(sorted(options))}")

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        pass

    def _path(self, name: str) -> Path:
        path = (self.root / name)
        if ".." in Path(name).parts or not str(path).startswith(str(self.root) + os.sep):
            raise BackupError(f"bad backup object name {name!r}")
        return path

    def _put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    async def put(self, name: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._put, name, data)
        except OSError as exc:
            raise BackupError(f"writing backup data failed: {exc.strerror or exc}") from None

    async def get(self, name: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(name).read_bytes)
        except FileNotFoundError:
            raise BackupError(f"Backup data is missing: object {name} is not there.") from None
        except OSError as exc:
            raise BackupError(f"reading backup data failed: {exc.strerror or exc}") from None

    def _delete_prefix(self, prefix: str) -> int:
        directory = self._path(prefix.rstrip("/"))
        if not directory.is_dir():
            return 0
        count = sum(1 for _ in directory.iterdir())
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # the container, when this was its last backup
        return count

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, prefix)

    def _names(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()}

    async def names(self) -> set[str]:
        return await asyncio.to_thread(self._names)

