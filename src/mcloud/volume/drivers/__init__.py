"""Volume backends: ``load_backend(name, options, data_dir)`` builds the one a
``[volume.backends.NAME]`` table names (module ``mcloud.volume.drivers.<driver>``, class
``Backend``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mcloud.volume.drivers.base import VolumeBackend

DRIVERS = ("file", "rbd", "fake")


def load_backend(name: str, options: dict[str, Any], data_dir: Path) -> VolumeBackend:
    options = dict(options)
    driver = options.pop("driver", "file")
    if driver not in DRIVERS:
        raise ValueError(f"[volume.backends.{name}] driver must be one of {', '.join(DRIVERS)}, not {driver!r}")
    module = importlib.import_module(f"mcloud.volume.drivers.{driver}")
    return module.Backend(name, options, data_dir)
