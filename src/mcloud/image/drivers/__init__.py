"""Image stores behind one Protocol (``base.ImageStore``): ``file`` (default), ``fake`` (in
memory, for tests) and ``rbd`` (Ceph).

A store is loaded by its config name. Each driver module ``mcloud.image.drivers.<name>``
provides ``create(store_id, options, data_dir) -> ImageStore``, where ``options`` is the
``[image.file]``, ``[image.fake]`` or ``[image.rbd]`` table of mcloud.toml, or for a store of any
other name its ``[image.backends.<name>]`` table, whose ``driver`` key names the module (so two
stores of one kind can sit side by side). Modules are imported only when a store of theirs is
enabled, so ``rbd`` (and Ceph's bindings) load only where an operator asks for it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mcloud.image.drivers.base import AlreadyExists, ImageStore, InUse, Stored, StoreError, StoreFull

__all__ = ["AlreadyExists", "ImageStore", "InUse", "Stored", "StoreError", "StoreFull", "load_store"]

KNOWN = ("file", "fake", "rbd")


def load_store(name: str, options: dict[str, Any] | None, data_dir: Path) -> ImageStore:
    """The store configured as ``name`` (``[image] stores``), built from its options."""
    opts = dict(options or {})
    driver = str(opts.pop("driver", name))
    if driver not in KNOWN:
        raise ValueError(f"[image] store {name!r}: unknown driver {driver!r} (known: {', '.join(KNOWN)})")
    module = importlib.import_module(f"mcloud.image.drivers.{driver}")
    create = getattr(module, "create", None)
    if create is None:
        raise ValueError(f"mcloud.image.drivers.{driver} has no create(store_id, options, data_dir)")
    return create(name, opts, data_dir)
