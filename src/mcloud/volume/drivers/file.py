"""The ``file`` backend: volumes as qcow2 files in a directory, made with ``qemu-img``.

Every file is in one directory (``DATA_DIR/volumes/<backend>/`` or the ``path`` option), so a
backing file is named by its bare file name and renaming within the directory never breaks a
chain. Three kinds of files:

- ``volume-<id>``: a volume, always a leaf (nothing is ever backed by a live volume, which a
  guest may be writing);
- ``snapshot-<id>``: a snapshot, an empty qcow2 over a frozen file (a leaf too);
- ``.frozen-<uuid>`` and ``.image-<image id>-<checksum>``: read-only files other files are
  backed by: what a volume held when it was snapshotted or cloned, and cached images.

A **snapshot** of a volume no guest has open freezes the volume's file (renamed to
``.frozen-<uuid>``) and puts a new empty ``volume-<id>`` and the ``snapshot-<id>`` over it: no
data copied. While a guest has the file open (a forced snapshot of an in-use volume: qemu holds
its lock), the volume is read with qemu-img's force-share (``-U``) into a new frozen file (only
what differs from its own backing file; crash-consistent) and the snapshot put over that.
A **clone** of a volume does the same and the new volume goes over the frozen file; a volume
**from a snapshot** goes over the snapshot's frozen file; **from an image** it goes over a cached
copy of the image (``.image-<id>-<checksum>``, hard-linked from the image service's file store or
downloaded once) when the image is qcow2 or raw, else it is a full copy (``qemu-img convert``).
**Deleting** a volume or snapshot removes its leaf; then every frozen or cached file no file is
backed by is removed (so a snapshot or source that others depend on is never broken: its data
stays for as long as something needs it). **Revert** puts a new ``volume-<id>`` over the
snapshot's frozen file. **Extend** is ``qemu-img resize`` (not while a guest has the file open).

Options (``[volume.backends.NAME]``)::

    driver = "file"
    path = "/var/lib/mcloud/volumes/file"   # default DATA_DIR/volumes/<name>
    total_gb = 100                          # what to report instead of the file system's size
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcloud.core import qemu_img as disk_tools
from mcloud.core.qemu_img import QEMU_FORMATS
from mcloud.volume.drivers.base import BackendError, BackendNotFound, Capacity, ImageSource

log = logging.getLogger("mcloud.volume.drivers.file")

GIB = 1 << 30
FROZEN, IMAGE = ".frozen-", ".image-"
#: image formats a volume can be an overlay of (others are converted into a standalone volume)
OVERLAY_FORMATS = ("qcow2", "raw")
LOCKED = ("lock", "Is another process using the image")


async def qemu_img(*args: str, timeout: float = 3600) -> str:
    """``qemu-img ARGS...``: its stdout, or BackendError with its message."""
    return await disk_tools.qemu_img(*args, timeout=timeout, error=BackendError)


class Backend:
    driver = "file"

    def __init__(self, name: str, options: dict[str, Any], data_dir: Path):
        opts = dict(options)
        self.name = name
        self.backend_name = str(opts.pop("volume_backend_name", name))
        self.root = Path(opts.pop("path", None) or data_dir / "volumes" / name)
        total = opts.pop("total_gb", None)
        self.total_gb = float(total) if total is not None else None
        self.overlay = bool(opts.pop("image_overlay", True))
        if opts:
            raise ValueError(f"[volume.backends.{name}] has unknown keys: {', '.join(sorted(opts))}")
        # one chain change at a time (freezing, overlays, removing what nothing needs)
        self._lock = asyncio.Lock()
        self._backing: dict[tuple[str, int, int], str | None] = {}

    # -- files --------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.root / name

    def volume_path(self, volume_id: str) -> Path:
        return self.root / f"volume-{volume_id}"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.root / f"snapshot-{snapshot_id}"

    async def info(self, path: Path) -> dict[str, Any]:
        return await disk_tools.info(path, error=BackendError)

    async def backing(self, path: Path) -> str | None:
        """The file name ``path`` is backed by (None: standalone); remembered per file version."""
        stat = path.stat()
        key = (path.name, stat.st_ino, stat.st_mtime_ns)
        if key not in self._backing:
            name = (await self.info(path)).get("backing-filename")
            self._backing[key] = os.path.basename(name) if name else None
        return self._backing[key]

    async def in_use(self, path: Path) -> bool:
        """Whether a process (a guest's qemu) holds the file's write lock."""
        try:
            await qemu_img("info", "--output=json", str(path))
        except BackendError as exc:
            if any(word in str(exc) for word in LOCKED):
                return True
            raise
        return False

    async def _overlay(self, dest: Path, backing: str, backing_format: str, size_bytes: int | None) -> None:
        """An empty qcow2 at ``dest`` over ``backing`` (a file name in the directory), written
        under a temporary name and renamed: a half-made file is never seen."""
        tmp = dest.with_name(f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}")
        args = ["create", "-q", "-f", "qcow2", "-F", backing_format, "-b", backing, str(tmp)]
        if size_bytes is not None:
            args.append(str(size_bytes))
        try:
            await qemu_img(*args)
            if size_bytes is not None:
                virtual = int((await self.info(tmp))["virtual-size"])
                if virtual < size_bytes:
                    await qemu_img("resize", "-q", str(tmp), str(size_bytes))
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

    async def _format_of(self, name: str) -> str:
        return str((await self.info(self.path(name)))["format"])

    async def _freeze(self, volume_id: str) -> str:
        """The volume's data as it is now in a read-only file others may be backed by; the
        volume goes on as a new leaf over it when no guest holds it, else the data is copied
        (force-share read). Returns the frozen file's name."""
        vol = self.volume_path(volume_id)
        if not vol.exists():
            raise BackendNotFound(f"Volume {volume_id} does not exist on backend {self.name}.")
        frozen = f"{FROZEN}{uuid.uuid4()}"
        if await self.in_use(vol):
            tmp = self.root / f".tmp-{frozen}"
            parent = await self.backing(vol)
            try:
                args = ["convert", "-U", "-q", "-f", "qcow2", "-O", "qcow2"]
                if parent:  # only what differs from the (read-only) backing file
                    args += ["-B", parent, "-o", f"backing_fmt={await self._format_of(parent)}"]
                # run from the directory so the relative backing name resolves
                await qemu_img(*args, str(vol), str(tmp))
                tmp.replace(self.path(frozen))
            finally:
                tmp.unlink(missing_ok=True)
            return frozen
        size = int((await self.info(vol))["virtual-size"])
        os.replace(vol, self.path(frozen))
        try:
            await self._overlay(vol, frozen, "qcow2", size)
        except BaseException:
            os.replace(self.path(frozen), vol)
            raise
        return frozen

    async def _collect(self) -> None:
        """Remove frozen files and cached images no file is backed by (any more)."""
        while True:
            needed: set[str] = set()
            candidates: list[Path] = []
            for p in self.root.iterdir():
                if p.name.startswith(".tmp-"):
                    continue
                if p.name.startswith((FROZEN, IMAGE)):
                    candidates.append(p)
                with contextlib.suppress(BackendError, FileNotFoundError):
                    if (parent := await self.backing(p)) is not None:
                        needed.add(parent)
            unused = [p for p in candidates if p.name not in needed]
            if not unused:
                live = {p.name for p in self.root.iterdir()}
                self._backing = {k: v for k, v in self._backing.items() if k[0] in live}
                return
            for p in unused:
                log.debug("backend %s: removing %s (nothing is backed by it)", self.name, p.name)
                p.unlink(missing_ok=True)

    # -- the Protocol -------------------------------------------------------------------------

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if shutil.which("qemu-img") is None:
            raise BackendError("qemu-img is not installed (Debian: qemu-utils).")
        for p in self.root.glob(".tmp-*"):  # left by a process that died mid-write
            p.unlink(missing_ok=True)

    async def close(self) -> None:
        pass

    async def capacity(self) -> Capacity:
        st = os.statvfs(self.root)
        free = st.f_bavail * st.f_frsize / GIB
        total = st.f_blocks * st.f_frsize / GIB
        if self.total_gb is not None:
            used = sum(p.stat().st_blocks * 512 for p in self.root.iterdir() if p.is_file()) / GIB
            total, free = self.total_gb, max(0.0, min(free, self.total_gb - used))
        return Capacity(total_gb=round(total, 2), free_gb=round(free, 2))

    async def create(self, volume_id: str, size_gb: int) -> None:
        dest = self.volume_path(volume_id)
        if dest.exists():
            return
        tmp = self.root / f".tmp-{dest.name}"
        try:
            await qemu_img("create", "-q", "-f", "qcow2", str(tmp), str(size_gb * GIB))
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

    async def create_from_image(self, volume_id: str, size_gb: int, image: ImageSource) -> str:
        dest = self.volume_path(volume_id)
        fmt = QEMU_FORMATS.get(image.disk_format)
        if fmt is None:
            raise BackendError(f"Image {image.id} has disk format {image.disk_format}, which volumes cannot hold.")
        async with self._lock:
            cached = await self._cache_image(image, fmt)
            try:
                info = await self.info(self.path(cached))
                if info.get("backing-filename"):
                    raise BackendError(f"Image {image.id} has a backing file: it cannot be used.")
                if int(info["virtual-size"]) > size_gb * GIB:
                    raise BackendError(f"Image {image.id} ({int(info['virtual-size'])} bytes) does not fit in "
                                       f"a volume of {size_gb} GB.")
                if dest.exists():
                    return "overlay" if await self.backing(dest) == cached else "copy"
                if self.overlay and image.disk_format in OVERLAY_FORMATS:
                    await self._overlay(dest, cached, fmt, size_gb * GIB)
                    return "overlay"
                tmp = self.root / f".tmp-{dest.name}"
                try:
                    await qemu_img("convert", "-q", "-f", fmt, "-O", "qcow2", str(self.path(cached)), str(tmp))
                    await qemu_img("resize", "-q", str(tmp), str(size_gb * GIB))
                    tmp.replace(dest)
                finally:
                    tmp.unlink(missing_ok=True)
                return "copy"
            finally:
                await self._collect()

    async def _cache_image(self, image: ImageSource, fmt: str) -> str:
        """The image's data as ``.image-<id>-<checksum>`` in the directory: a hard link to the
        image service's file when it is on the same file system, else a copy or a download."""
        key = (image.checksum or "nosum")[:16]
        name = f"{IMAGE}{image.id}-{key}"
        dest = self.path(name)
        if dest.exists():
            return name
        tmp = self.root / f".tmp-{name}"
        try:
            if image.path and Path(image.path).exists():
                try:
                    os.link(image.path, tmp)
                except OSError:
                    await asyncio.to_thread(shutil.copyfile, image.path, tmp)
            elif image.open is not None:
                with tmp.open("wb") as out:
                    async for chunk in image.open():
                        await asyncio.to_thread(out.write, chunk)
            elif image.rbd:
                uri = f"rbd:{image.rbd}" + (f":conf={image.ceph_conf}" if image.ceph_conf else "")
                await qemu_img("convert", "-q", "-f", fmt, "-O", fmt, uri, str(tmp))
            else:
                raise BackendError(f"The data of image {image.id} cannot be read.")
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)
        return name

    async def _frozen_of_snapshot(self, snapshot_id: str) -> str:
        snap = self.snapshot_path(snapshot_id)
        if not snap.exists():
            raise BackendNotFound(f"Snapshot {snapshot_id} does not exist on backend {self.name}.")
        frozen = await self.backing(snap)
        if frozen is None:
            raise BackendError(f"Snapshot {snapshot_id} has lost its data.")
        return frozen

    async def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str,
                                   source_volume_id: str) -> None:
        dest = self.volume_path(volume_id)
        async with self._lock:
            if dest.exists():
                return
            frozen = await self._frozen_of_snapshot(snapshot_id)
            await self._overlay(dest, frozen, "qcow2", size_gb * GIB)

    async def clone(self, volume_id: str, size_gb: int, source_volume_id: str) -> None:
        dest = self.volume_path(volume_id)
        async with self._lock:
            if dest.exists():
                return
            frozen = await self._freeze(source_volume_id)
            await self._overlay(dest, frozen, "qcow2", size_gb * GIB)

    async def delete(self, volume_id: str) -> None:
        async with self._lock:
            self.volume_path(volume_id).unlink(missing_ok=True)
            await self._collect()

    async def extend(self, volume_id: str, size_gb: int) -> None:
        vol = self.volume_path(volume_id)
        if not vol.exists():
            raise BackendNotFound(f"Volume {volume_id} does not exist on backend {self.name}.")
        if int((await self.info(vol))["virtual-size"]) >= size_gb * GIB:
            return
        if await self.in_use(vol):
            raise BackendError(f"Volume {volume_id} is in use by a guest: the file backend cannot extend it now.")
        await qemu_img("resize", "-q", str(vol), str(size_gb * GIB))

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        snap = self.snapshot_path(snapshot_id)
        async with self._lock:
            if snap.exists():
                return
            frozen = await self._freeze(volume_id)
            await self._overlay(snap, frozen, "qcow2", None)

    async def delete_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        async with self._lock:
            self.snapshot_path(snapshot_id).unlink(missing_ok=True)
            await self._collect()

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        vol = self.volume_path(volume_id)
        async with self._lock:
            if not vol.exists():
                raise BackendNotFound(f"Volume {volume_id} does not exist on backend {self.name}.")
            if await self.in_use(vol):
                raise BackendError(f"Volume {volume_id} is in use by a guest: it cannot be reverted.")
            frozen = await self._frozen_of_snapshot(snapshot_id)
            size = int((await self.info(vol))["virtual-size"])
            await self._overlay(vol, frozen, "qcow2", size)  # replaces the volume's file at once
            await self._collect()

    async def connection_info(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        vol = self.volume_path(volume_id)
        if not vol.exists():
            raise BackendNotFound(f"Volume {volume_id} does not exist on backend {self.name}.")
        return {"driver_volume_type": "file",
                "data": {"name": vol.name, "path": str(vol.resolve()), "format": "qcow2", "volume_id": volume_id,
                         "access_mode": "rw", "discard": True}}

    async def read(self, volume_id: str, snapshot_id: str | None = None,
                   chunk_size: int = 4 << 20) -> AsyncIterator[bytes]:
        source = self.snapshot_path(snapshot_id) if snapshot_id else self.volume_path(volume_id)
        if not source.exists():
            raise BackendNotFound(f"{source.name} does not exist on backend {self.name}.")
        with tempfile.TemporaryDirectory(prefix=".tmp-read-", dir=self.root) as tmp:
            raw = Path(tmp) / "raw"
            await qemu_img("convert", "-U", "-q", "-f", "qcow2", "-O", "raw", str(source), str(raw))
            with raw.open("rb") as f:
                while chunk := await asyncio.to_thread(f.read, chunk_size):
                    yield chunk

    async def write(self, volume_id: str, chunks: AsyncIterator[bytes]) -> None:
        vol = self.volume_path(volume_id)
        if not vol.exists():
            raise BackendNotFound(f"Volume {volume_id} does not exist on backend {self.name}.")
        size = int((await self.info(vol))["virtual-size"])
        with tempfile.TemporaryDirectory(prefix=".tmp-write-", dir=self.root) as tmp:
            raw = Path(tmp) / "raw"
            written = 0
            with raw.open("wb") as out:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > size:
                        raise BackendError(f"The data is larger than volume {volume_id} ({size} bytes).")
                    if chunk.count(0) == len(chunk):
                        out.seek(len(chunk), os.SEEK_CUR)  # the scratch file stays sparse
                    else:
                        await asyncio.to_thread(out.write, chunk)
                out.truncate(written)
            new = Path(tmp) / "new"
            await qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(new))
            if written < size:
                await qemu_img("resize", "-q", str(new), str(size))
            async with self._lock:
                os.replace(new, vol)
                await self._collect()

    async def list_ids(self) -> set[str]:
        return {p.name for p in self.root.iterdir() if p.name.startswith(("volume-", "snapshot-"))}
