"""Where backups keep their data: ``load_backup_driver(options, data_dir)`` builds the driver
``[volume.backup]`` names (``file``: chunk files under ``DATA_DIR/backups``; ``rbd``: chunk
objects in a Ceph pool; ``fake``: chunks in memory, for tests). All three are one chunked
driver (``chunked.py``, Cinder's chunked backup driver made small) over a different store."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mcloud.volume.backup_drivers.base import BackupDriver, BackupError
from mcloud.volume.backup_drivers.chunked import ChunkedBackupDriver

DRIVERS = ("file", "rbd", "fake")

__all__ = ["DRIVERS", "BackupDriver", "BackupError", "ChunkedBackupDriver", "load_backup_driver"]


def load_backup_driver(options: dict[str, Any], data_dir: Path) -> BackupDriver:
    options = dict(options)
    driver = options.pop("driver", "file")
    if driver not in DRIVERS:
        raise ValueError(f"[volume.backup] driver must be one of {', '.join(DRIVERS)}, not {driver!r}")
    chunk_size = int(options.pop("chunk_size", 4 << 20))
    module = importlib.import_module(f"mcloud.volume.backup_drivers.{driver}")
    store = module.Store(options, data_dir)
    return ChunkedBackupDriver(driver, store, chunk_size=chunk_size)
