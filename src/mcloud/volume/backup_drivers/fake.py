"""Backup objects in memory (tests): the same chunked driver, nothing on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcloud.volume.backup_drivers.base import BackupError


class Store:
    def __init__(self, options: dict[str, Any], data_dir: Path):
        self.objects: dict[str, bytes] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def put(self, name: str, data: bytes) -> None:
        self.objects[name] = bytes(data)

    async def get(self, name: str) -> bytes:
        try:
            return self.objects[name]
        except KeyError:
            raise BackupError(f"Backup data is missing: object {name} is not there.") from None

    async def delete_prefix(self, prefix: str) -> int:
        gone = [n for n in self.objects if n.startswith(prefix)]
        for name in gone:
            del self.objects[name]
        return len(gone)

    async def names(self) -> set[str]:
        return set(self.objects)
