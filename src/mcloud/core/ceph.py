"""Ceph's Python bindings (librados and librbd) for the drivers that speak to a Ceph cluster.

The bindings are not on PyPI: they are Debian's ``python3-rados`` and ``python3-rbd``, two
extension modules built for the system's Python 3.11 in ``/usr/lib/python3/dist-packages``.
mCloud's virtualenv does not see that directory, and putting all of it on ``sys.path`` would
let every other Debian Python package shadow the virtualenv's own. So ``bindings()`` loads just
those two files, once, the first time a driver asks for them; a Python that can import them
already (Debian's own ``python3``) uses its own.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType

#: where Debian puts them; ``MCLOUD_CEPH_BINDINGS_DIR`` points elsewhere (another distribution)
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")

_lock = threading.Lock()


class CephBindingsMissing(ImportError):
    """python3-rados / python3-rbd are not installed (or not for this Python)."""


def _load_from(directory: Path, name: str) -> ModuleType:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = directory / f"{name}{suffix}"
        if path.exists():
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # rbd imports rados by name
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
    raise CephBindingsMissing(
        f"Ceph's Python binding '{name}' for Python {sys.version_info.major}.{sys.version_info.minor} "
        f"is not in {directory}: install Debian's python3-rados and python3-rbd")


def bindings() -> tuple[ModuleType, ModuleType]:
    """The ``rados`` and ``rbd`` modules. Raises ``CephBindingsMissing`` when they are not there."""
    with _lock:
        try:
            return importlib.import_module("rados"), importlib.import_module("rbd")
        except ImportError:
            pass
        directory = Path(os.environ.get("MCLOUD_CEPH_BINDINGS_DIR") or DEBIAN_DIST_PACKAGES)
        rados = sys.modules.get("rados") or _load_from(directory, "rados")
        rbd = _load_from(directory, "rbd")
        return rados, rbd
