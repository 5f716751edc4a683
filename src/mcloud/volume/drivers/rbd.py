"""The ``rbd`` backend: volumes as RBD images in a Ceph pool, as Cinder's RBD driver keeps them.

A volume is the image ``volume-<id>`` (format 2, layering); a snapshot is the RBD snapshot
``snapshot-<id>`` of its volume, protected so that volumes can be cloned from it. A volume
**from a snapshot** is an RBD clone of it; a **clone** of a volume is a clone of a protected
snapshot ``volume-<new id>.clone_snap`` made on the source for it (Cinder's names); a volume
**from an image** the image service keeps in this cluster as raw data is a clone of the image's
protected snapshot (``ImageSource.rbd``: nothing copied, ready at once), else the image's data is
converted into it with ``qemu-img convert`` (qemu's rbd driver). Clones are flattened when their
chain grows deeper than ``max_clone_depth`` (Cinder's ``rbd_max_clone_depth``, 5).

**Deleting** never breaks another image: the clones of a snapshot or volume that goes are
flattened first (they get their own copy of the data), then its snapshots are removed, then the
image; a ``.clone_snap`` left without clones on a source is removed with the clone that needed
it. An image a client has open (a guest's qemu) cannot be removed: BackendError. A forced
snapshot of an in-use volume is an ordinary RBD snapshot (crash-consistent).

The librados/librbd calls block: each operation runs in a thread, on one cluster connection
made at start.

Options (``[volume.backends.NAME]``)::

    driver = "rbd"
    pool = "volumes"
    ceph_conf = "/etc/ceph/ceph.conf"
    user = "admin"             # cephx user (client.<user>); default admin
    max_clone_depth = 5
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mcloud.core.ceph import CephBindingsMissing, bindings
from mcloud.volume.drivers.base import BackendError, BackendNotFound, Capacity, ImageSource
from mcloud.core import qemu_img as disk_tools
from mcloud.core.qemu_img import QEMU_FORMATS

log = logging.getLogger("mcloud.volume.drivers.rbd")

GIB = 1 << 30
CLONE_SNAP = ".clone_snap"
#: an image still open for a moment (a flatten by another process, a client closing) is
#: removed again after these pauses (Cinder retries a busy volume's delete likewise)
BUSY_RETRIES = (0.5, 1.0, 2.0, 4.0)
T = TypeVar("T")


class Backend:
    driver = "rbd"

    def __init__(self, name: str, options: dict[str, Any], data_dir: Path):
        opts = dict(options)
        self.name = name
        self.backend_name = str(opts.pop("volume_backend_name", name))
        self.pool = str(opts.pop("pool", "volumes"))
        self.conf = str(opts.pop("ceph_conf", opts.pop("conf", "/etc/ceph/ceph.conf")))
        self.user = opts.pop("user", None)
        self.max_clone_depth = int(opts.pop("max_clone_depth", 5))
        self.connect_timeout = int(opts.pop("connect_timeout", 30))
        opts.pop("image_overlay", None)
        if opts:
            raise ValueError(f"[volume.backends.{name}] has unknown keys: {', '.join(sorted(opts))}")
        self.scratch = data_dir / "volumes" / name
        self._rados: Any = None
        self._rbd: Any = None
        self._cluster: Any = None
        # one change of a clone chain at a time in this process: a delete flattening the clones
        # of its volume must not open a clone that another delete is removing
        self._chain = asyncio.Lock()

    # -- plumbing -----------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(ioctx, *args)`` in a thread, librbd's errors as BackendErrors."""
        rbd, rados = self._rbd, self._rados

        def call() -> T:
            ioctx = self._cluster.open_ioctx(self.pool)
            try:
                return fn(ioctx, *args)
            finally:
                ioctx.close()

        try:
            return await asyncio.to_thread(call)
        except BackendError:
            raise
        except rbd.ImageNotFound as exc:
            raise BackendNotFound(f"Ceph pool {self.pool}: {exc}") from None
        except rbd.ImageBusy as exc:
            raise BackendError(f"The RBD image is in use (a client has it open): {exc}") from None
        except rbd.NoSpace:
            raise BackendError(f"Ceph pool {self.pool} is full.") from None
        except (rbd.Error, rados.Error) as exc:
            raise BackendError(f"Ceph pool {self.pool}: {exc}") from None

    @contextlib.contextmanager
    def _image(self, ioctx: Any, name: str, snapshot: str | None = None, read_only: bool = False) -> Iterator[Any]:
        image = self._rbd.Image(ioctx, name, snapshot=snapshot, read_only=read_only)
        try:
            yield image
        finally:
            image.close()

    def _create(self, ioctx: Any, name: str, size: int) -> None:
        try:
            self._rbd.RBD().create(ioctx, name, size, old_format=False, features=self._rbd.RBD_FEATURE_LAYERING)
        except self._rbd.ImageExists:
            with self._image(ioctx, name) as image:
                if image.size() < size:
                    image.resize(size)

    def _grow(self, ioctx: Any, name: str, size: int) -> None:
        with self._image(ioctx, name) as image:
            if image.size() < size:
                image.resize(size)

    def _depth(self, ioctx: Any, name: str) -> int:
        """How many parents the image has (a clone of a clone: 2)."""
        depth = 0
        pool_ctx, current = ioctx, name
        opened: list[Any] = []
        try:
            while depth <= self.max_clone_depth:
                with self._image(pool_ctx, current, read_only=True) as image:
                    try:
                        parent = image.parent_info()  # (pool, image, snap)
                    except self._rbd.ImageNotFound:
                        return depth
                depth += 1
                if parent[0] != pool_ctx.name:
                    pool_ctx = self._cluster.open_ioctx(parent[0])
                    opened.append(pool_ctx)
                current = parent[1]
            return depth
        finally:
            for ctx in opened:
                ctx.close()

    def _clone(self, ioctx: Any, parent_ctx: Any, parent: str, snap: str, name: str, size: int) -> None:
        """``name`` as a clone of ``parent@snap`` grown to ``size``; flattened when too deep."""
        try:
            self._rbd.RBD().clone(parent_ctx, parent, snap, ioctx, name, features=self._rbd.RBD_FEATURE_LAYERING)
        except self._rbd.ImageExists:
            pass
        self._grow(ioctx, name, size)
        if self._depth(ioctx, name) > self.max_clone_depth:
            with self._image(ioctx, name) as image:
                image.flatten()

    def _flatten_children(self, image: Any, snap: str) -> None:
        """Give every clone of ``snap`` its own copy of the data (before the snapshot goes)."""
        image.set_snap(snap)
        try:
            children = list(image.list_children2())
        finally:
            image.set_snap(None)
        for child in children:
            if child.get("trash"):
                continue
            ctx = self._cluster.open_ioctx(child["pool"])
            try:
                with self._image(ctx, child["image"]) as clone:
                    log.info("flattening %s/%s before %s@%s goes", child["pool"], child["image"], image.get_name(), snap)
                    clone.flatten()
            except self._rbd.ImageNotFound:
                pass  # removed meanwhile: nothing to keep
            finally:
                ctx.close()

    def _remove_snap(self, image: Any, snap: str) -> None:
        self._flatten_children(image, snap)
        if image.is_protected_snap(snap):
            image.unprotect_snap(snap)
        image.remove_snap(snap)

    # -- the Protocol -------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._rados, self._rbd = bindings()
        except CephBindingsMissing as exc:
            raise BackendError(str(exc)) from None

        def connect() -> Any:
            cluster = (self._rados.Rados(conffile=self.conf, rados_id=self.user) if self.user
                       else self._rados.Rados(conffile=self.conf))
            cluster.conf_set("client_mount_timeout", str(self.connect_timeout))
            cluster.conf_set("rados_mon_op_timeout", str(self.connect_timeout))
            try:
                cluster.connect(timeout=self.connect_timeout)
                if not cluster.pool_exists(self.pool):
                    raise BackendError(f"Ceph pool {self.pool} does not exist.")
            except BaseException:
                cluster.shutdown()
                raise
            return cluster

        try:
            self._cluster = await asyncio.to_thread(connect)
        except self._rados.Error as exc:
            raise BackendError(f"Cannot reach the Ceph cluster of {self.conf}: {exc}") from None

    async def close(self) -> None:
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            await asyncio.to_thread(cluster.shutdown)

    async def capacity(self) -> Capacity:
        def stats() -> Capacity:
            ret, out, _ = self._cluster.mon_command(json.dumps({"prefix": "df", "format": "json"}), b"")
            if ret == 0:
                for pool in json.loads(out).get("pools", []):
                    if pool.get("name") == self.pool:
                        used = float(pool["stats"].get("bytes_used", 0))
                        avail = float(pool["stats"].get("max_avail", 0))
                        return Capacity(total_gb=round((used + avail) / GIB, 2), free_gb=round(avail / GIB, 2))
            s = self._cluster.get_cluster_stats()
            return Capacity(total_gb=round(s["kb"] / (1 << 20), 2), free_gb=round(s["kb_avail"] / (1 << 20), 2))

        return await asyncio.to_thread(stats)

    async def create(self, volume_id: str, size_gb: int) -> None:
        await self._run(self._create, f"volume-{volume_id}", size_gb * GIB)

    async def create_from_image(self, volume_id: str, size_gb: int, image: ImageSource) -> str:
        name = f"volume-{volume_id}"
        if image.rbd and image.disk_format == "raw":
            parent_name, _, snap = image.rbd.partition("@")
            parent_pool, _, parent = parent_name.partition("/")

            def clone(ioctx: Any) -> bool:
                if not self._cluster.pool_exists(parent_pool):
                    return False  # the image is in another cluster
                parent_ctx = self._cluster.open_ioctx(parent_pool)
                try:
                    with self._image(parent_ctx, parent, snapshot=snap, read_only=True) as img:
                        if img.size() > size_gb * GIB:
                            raise BackendError(f"Image {image.id} does not fit in a volume of {size_gb} GB.")
                    self._clone(ioctx, parent_ctx, parent, snap, name, size_gb * GIB)
                    return True
                except self._rbd.ImageNotFound:
                    return False
                finally:
                    parent_ctx.close()

            if await self._run(clone):
                return "clone"
        fmt = QEMU_FORMATS.get(image.disk_format)
        if fmt is None:
            raise BackendError(f"Image {image.id} has disk format {image.disk_format}, which volumes cannot hold.")
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-image-", dir=self.scratch) as tmp:
            source = Path(image.path) if image.path else Path(tmp) / "image"
            if not image.path:
                if image.open is None:
                    raise BackendError(f"The data of image {image.id} cannot be read.")
                with source.open("wb") as out:
                    async for chunk in image.open():
                        await asyncio.to_thread(out.write, chunk)
            virtual = int((await disk_tools.info(source, fmt=fmt, error=BackendError))["virtual-size"])
            if virtual > size_gb * GIB:
                raise BackendError(f"Image {image.id} ({virtual} bytes) does not fit in a volume of {size_gb} GB.")
            await self._run(self._create, name, size_gb * GIB)
            await disk_tools.qemu_img("convert", "-q", "-n", "-f", fmt, "-O", "raw", str(source), self.uri(name),
                                      error=BackendError)
        return "copy"

    def uri(self, name: str) -> str:
        """The image as qemu names it."""
        return f"rbd:{self.pool}/{name}:conf={self.conf}" + (f":id={self.user}" if self.user else "")

    async def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str,
                                   source_volume_id: str) -> None:
        def clone(ioctx: Any) -> None:
            source, snap = f"volume-{source_volume_id}", f"snapshot-{snapshot_id}"
            with self._image(ioctx, source, read_only=True) as img:
                if snap not in {s["name"] for s in img.list_snaps()}:
                    raise BackendNotFound(f"Snapshot {snapshot_id} does not exist on backend {self.name}.")
            self._clone(ioctx, ioctx, source, snap, f"volume-{volume_id}", size_gb * GIB)

        async with self._chain:
            await self._run(clone)

    async def clone(self, volume_id: str, size_gb: int, source_volume_id: str) -> None:
        def clone(ioctx: Any) -> None:
            source, snap = f"volume-{source_volume_id}", f"volume-{volume_id}{CLONE_SNAP}"
            with self._image(ioctx, source) as img:
                if snap not in {s["name"] for s in img.list_snaps()}:
                    img.create_snap(snap)
                if not img.is_protected_snap(snap):
                    img.protect_snap(snap)
            self._clone(ioctx, ioctx, source, snap, f"volume-{volume_id}", size_gb * GIB)

        async with self._chain:
            await self._run(clone)

    async def delete(self, volume_id: str) -> None:
        def delete(ioctx: Any) -> None:
            name = f"volume-{volume_id}"
            try:
                with self._image(ioctx, name) as image:
                    for snap in [s["name"] for s in image.list_snaps()]:
                        self._remove_snap(image, snap)
                    try:
                        parent = image.parent_info()
                    except self._rbd.ImageNotFound:
                        parent = None
            except self._rbd.ImageNotFound:
                return
            for pause in (*BUSY_RETRIES, None):
                try:
                    self._rbd.RBD().remove(ioctx, name)
                    break
                except self._rbd.ImageNotFound:
                    break
                except self._rbd.ImageBusy:
                    if pause is None:
                        raise
                    time.sleep(pause)
            # the clone snapshot made on the source for this volume goes with it
            if parent is not None and parent[2].endswith(CLONE_SNAP) and parent[0] == self.pool:
                with contextlib.suppress(self._rbd.ImageNotFound):
                    with self._image(ioctx, parent[1]) as source:
                        source.set_snap(parent[2])
                        try:
                            left = list(source.list_children2())
                        finally:
                            source.set_snap(None)
                        if not left:
                            self._remove_snap(source, parent[2])

        async with self._chain:
            await self._run(delete)

    async def extend(self, volume_id: str, size_gb: int) -> None:
        await self._run(self._grow, f"volume-{volume_id}", size_gb * GIB)

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        def snapshot(ioctx: Any) -> None:
            snap = f"snapshot-{snapshot_id}"
            with self._image(ioctx, f"volume-{volume_id}") as image:
                if snap not in {s["name"] for s in image.list_snaps()}:
                    image.create_snap(snap)
                if not image.is_protected_snap(snap):
                    image.protect_snap(snap)

        await self._run(snapshot)

    async def delete_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        def delete(ioctx: Any) -> None:
            snap = f"snapshot-{snapshot_id}"
            try:
                with self._image(ioctx, f"volume-{volume_id}") as image:
                    if snap in {s["name"] for s in image.list_snaps()}:
                        self._remove_snap(image, snap)
            except self._rbd.ImageNotFound:
                return

        async with self._chain:
            await self._run(delete)

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        def revert(ioctx: Any) -> None:
            with self._image(ioctx, f"volume-{volume_id}") as image:
                image.rollback_to_snap(f"snapshot-{snapshot_id}")

        await self._run(revert)

    async def connection_info(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        name = f"volume-{volume_id}"

        def check(ioctx: Any) -> list[str]:
            with self._image(ioctx, name, read_only=True):
                pass
            return str(self._cluster.conf_get("mon_host") or "").replace(",", " ").split()

        mons = await self._run(check)
        hosts, ports = [], []
        for mon in mons:
            addr = mon.strip("[]").split("/")[0].removeprefix("v2:").removeprefix("v1:")
            host, _, port = addr.rpartition(":")
            hosts.append(host or addr)
            ports.append(port or "6789")
        return {"driver_volume_type": "rbd",
                "data": {"name": f"{self.pool}/{name}", "ceph_conf": self.conf, "auth_username": self.user,
                         "auth_enabled": bool(self.user), "cluster_name": "ceph", "hosts": hosts, "ports": ports,
                         "secret_type": "ceph", "format": "raw", "volume_id": volume_id, "access_mode": "rw",
                         "discard": True}}

    async def read(self, volume_id: str, snapshot_id: str | None = None,
                   chunk_size: int = 4 << 20) -> AsyncIterator[bytes]:
        name = f"volume-{volume_id}"
        snap = f"snapshot-{snapshot_id}" if snapshot_id else None
        size = await self._run(lambda ioctx: self._size(ioctx, name, snap))
        for at in range(0, size, chunk_size):
            yield await self._run(lambda ioctx, at=at: self._read(ioctx, name, snap, at, min(chunk_size, size - at)))

    def _size(self, ioctx: Any, name: str, snap: str | None) -> int:
        with self._image(ioctx, name, snapshot=snap, read_only=True) as image:
            return int(image.size())

    def _read(self, ioctx: Any, name: str, snap: str | None, at: int, length: int) -> bytes:
        with self._image(ioctx, name, snapshot=snap, read_only=True) as image:
            return bytes(image.read(at, length))

    async def write(self, volume_id: str, chunks: AsyncIterator[bytes]) -> None:
        name = f"volume-{volume_id}"
        size = await self._run(lambda ioctx: self._size(ioctx, name, None))
        at = 0
        async for chunk in chunks:
            if at + len(chunk) > size:
                raise BackendError(f"The data is larger than volume {volume_id} ({size} bytes).")
            await self._run(self._put, name, at, chunk)
            at += len(chunk)
        if at < size:  # what follows the data reads zeros
            await self._run(self._zero, name, at, size - at)

    def _put(self, ioctx: Any, name: str, at: int, chunk: bytes) -> None:
        with self._image(ioctx, name) as image:
            if chunk.count(0) == len(chunk):
                image.write_zeroes(at, len(chunk))  # thin where whole objects are zeros
            else:
                image.write(chunk, at)

    def _zero(self, ioctx: Any, name: str, at: int, length: int) -> None:
        with self._image(ioctx, name) as image:
            image.write_zeroes(at, length)

    async def list_ids(self) -> set[str]:
        def names(ioctx: Any) -> set[str]:
            found: set[str] = set()
            for name in self._rbd.RBD().list(ioctx):
                if not name.startswith("volume-"):
                    continue
                found.add(name)
                with contextlib.suppress(self._rbd.ImageNotFound):
                    with self._image(ioctx, name, read_only=True) as image:
                        found |= {s["name"] for s in image.list_snaps() if s["name"].startswith("snapshot-")}
            return found

        return await self._run(names)
