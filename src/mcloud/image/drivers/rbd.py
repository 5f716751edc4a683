"""The ``rbd`` store: image data as Ceph RBD images, ready to be cloned copy-on-write.

As OpenStack Glance's rbd store does, each image is an RBD image (format 2, the layering
feature) named by the image id in one pool, with a protected snapshot ``snap``: the compute and
volume services clone that snapshot instead of copying the data, so a server or volume made from
an image is ready at once. The location is ``rbd://<fsid>/<pool>/<image>/snap``.

Data arrives in chunks of any size and unknown total: the store gathers it into blocks of
``chunk_size`` bytes (the RBD object size), grows the image to fit each block and writes it
asynchronously while the next ones are gathered, two blocks on their way at most (so memory stays
at a few blocks whatever the image's size). Blocks of zeros are not written (the image stays thin;
they read back as zeros). Only when all data is written are the snapshot made and protected, so a location
is only ever returned for a whole image; on any error (including one raised by the chunk
iterator, or the upload being cancelled) the image is removed again.

librados and librbd calls block, so each operation runs them on a thread of its own, in order
(an image handle is never used by two threads at once, and is closed only after its last call).
One cluster connection is opened on first use and shared by every operation of the store.

Options (``[image.rbd]`` in mcloud.toml)::

    pool = "images"                    # the pool holding the images
    conf = "/etc/ceph/ceph.conf"       # the cluster's configuration file
    user = "glance"                    # cephx user (client.glance); default "admin"
    chunk_size = 8388608               # bytes: object size and I/O block, a power of two
    connect_timeout = 30               # seconds to reach the cluster
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import errno
import functools
import logging
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from mcloud.core.ceph import CephBindingsMissing, bindings
from mcloud.image.drivers.base import AlreadyExists, InUse, Stored, StoreError, StoreFull

log = logging.getLogger(__name__)

SNAPSHOT = "snap"
DEFAULT_CHUNK = 8 << 20
#: blocks written at once by one upload (asynchronous writes: ~1.8x the speed of one at a time)
WRITES_IN_FLIGHT = 2
T = TypeVar("T")


def _settle(loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], result: int) -> None:
    """From librbd's thread: a write's result (a negative errno on failure) onto its future."""

    def resolve() -> None:
        if done.done():  # the add was given up meanwhile
            return
        if result >= 0:
            done.set_result(None)
        elif -result == errno.ENOSPC:
            done.set_exception(StoreFull(f"the Ceph pool is full ({os.strerror(-result)})"))
        else:
            done.set_exception(StoreError(f"writing to Ceph failed: {os.strerror(-result)}"))

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(resolve)


class _InFlight:
    """How many asynchronous writes are on their way (librbd calls back on its own threads)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0

    def started(self) -> None:
        with self._changed:
            self._count += 1

    def finished(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._count == 0)


class _Lane:
    """One thread running one operation's librbd calls in the order they were given; what is
    given after a cancellation still runs after what was given before it."""

    def __init__(self, name: str):
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.wrap_future(self._executor.submit(fn, *args))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    async def finish(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a last call (closing, cleaning up) to its end even if the caller is cancelled."""
        try:
            await asyncio.shield(self.submit(fn, *args))
        finally:
            self.close()

    def close(self) -> None:
        """No more calls: the thread ends once it has run those given."""
        self._executor.shutdown(wait=False)


class RbdStore:
    def __init__(self, store_id: str = "rbd", pool: str = "images", conf_path: str | Path = "/etc/ceph/ceph.conf",
                 user: str = "admin", chunk_size: int = DEFAULT_CHUNK, description: str = "",
                 connect_timeout: float = 30):
        if chunk_size < 4096 or chunk_size > (32 << 20) or chunk_size & (chunk_size - 1):
            raise ValueError(f"store {store_id}: chunk_size must be a power of two from 4096 to 33554432 bytes")
        try:
            self._rados, self._rbd = bindings()
        except CephBindingsMissing as exc:
            raise StoreError(f"store {store_id}: {exc}") from None
        self.id = store_id
        self.description = description or f"Ceph RBD pool {pool} ({store_id})"
        self.pool = pool
        self.conf_path = str(conf_path)
        self.user = user
        self.chunk_size = chunk_size
        self.connect_timeout = connect_timeout
        self._order = chunk_size.bit_length() - 1  # log2 of the object size
        self._zeros = bytes(chunk_size)
        self._cluster: Any = None
        self._fsid = ""
        self._connecting = asyncio.Lock()

    @property
    def properties(self) -> dict[str, Any]:
        return {"chunk_size": self.chunk_size, "pool": self.pool, "thin_provisioning": True}

    # -- the cluster --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Reach the cluster now (the store otherwise connects on first use); StoreError if it
        cannot."""
        await self._connected()

    async def _connected(self) -> None:
        """Make the store's one connection, on first use."""
        async with self._connecting:
            if self._cluster is None:
                self._cluster, self._fsid = await asyncio.to_thread(self._connect)

    async def _ioctx(self, pool: str) -> Any:
        await self._connected()
        try:
            return await asyncio.to_thread(self._cluster.open_ioctx, pool)
        except self._rados.ObjectNotFound:
            raise StoreError(f"store {self.id}: Ceph pool {pool} does not exist") from None

    def _connect(self) -> tuple[Any, str]:
        cluster = self._rados.Rados(conffile=self.conf_path, rados_id=self.user)
        try:
            timeout = str(int(self.connect_timeout))
            cluster.conf_set("client_mount_timeout", timeout)
            cluster.conf_set("rados_mon_op_timeout", timeout)
            cluster.connect(timeout=int(self.connect_timeout))
            return cluster, cluster.get_fsid()
        except self._rados.Error as exc:
            cluster.shutdown()
            raise StoreError(f"store {self.id}: cannot reach the Ceph cluster of {self.conf_path}: {exc}") from None

    # -- locations ----------------------------------------------------------------------------

    def location_of(self, image_name: str) -> str:
        return "rbd://" + "/".join(quote(part, safe="") for part in (self._fsid, self.pool, image_name, SNAPSHOT))

    async def _parse(self, location: str) -> tuple[str, str, str]:
        """(pool, image name, snapshot) of a location in this store's cluster. A location in
        another pool of the cluster (the store's pool was changed since) is still used."""
        if not location.startswith("rbd://"):
            raise StoreError(f"store {self.id} cannot use location {location!r}")
        parts = [unquote(p) for p in location[len("rbd://"):].split("/")]
        if len(parts) != 4 or not all(parts):
            raise StoreError(f"store {self.id}: malformed location {location!r} (rbd://<fsid>/<pool>/<image>/<snap>)")
        fsid, pool, image, snap = parts
        await self._connected()
        if fsid != self._fsid:
            raise StoreError(f"store {self.id}: location {location!r} is not in this store's cluster {self._fsid}")
        return pool, image, snap

    # -- the Protocol -------------------------------------------------------------------------

    async def add(self, image_id: str, chunks: AsyncIterable[bytes]) -> Stored:
        ioctx = await self._ioctx(self.pool)
        lane = _Lane(f"rbd-add-{image_id[:8]}")
        # what the lane's calls share: the open image handle, and whether this add created it
        state: dict[str, Any] = {"image": None, "created": False, "inflight": _InFlight()}
        try:
            await lane.run(self._create, ioctx, image_id, state)
            size = await self._write(lane, state, chunks)
            await lane.run(self._snapshot, state)
        except BaseException as exc:
            await lane.finish(self._discard, ioctx, image_id, state)
            if isinstance(exc, self._rbd.NoSpace):
                raise StoreFull(f"store {self.id}: Ceph pool {self.pool} is full") from None
            if isinstance(exc, (self._rbd.Error, self._rados.Error)):
                raise StoreError(f"store {self.id}: writing image {image_id} failed: {exc}") from None
            raise
        # no await from here on: a cancellation now would leave a whole image nobody knows of
        lane.close()
        ioctx.close()
        return Stored(location=self.location_of(image_id), size=size)

    def _create(self, ioctx: Any, name: str, state: dict[str, Any]) -> None:
        rbd = self._rbd
        try:
            rbd.RBD().create(ioctx, name, 0, order=self._order, old_format=False,
                             features=rbd.RBD_FEATURE_LAYERING)
        except rbd.ImageExists:
            raise AlreadyExists(f"store {self.id}: pool {self.pool} already holds image {name}") from None
        except rbd.Error as exc:
            raise StoreError(f"store {self.id}: cannot create image {name}: {exc}") from None
        state["created"] = True
        state["image"] = rbd.Image(ioctx, name)

    async def _write(self, lane: _Lane, state: dict[str, Any], chunks: AsyncIterable[bytes]) -> int:
        """Write the chunks in blocks of chunk_size while the next ones are gathered, with up to
        WRITES_IN_FLIGHT blocks on their way to the OSDs at once (asynchronous librbd writes)."""
        loop = asyncio.get_running_loop()
        block = bytearray()
        offset = 0
        writes: collections.deque[asyncio.Future[None]] = collections.deque()

        async def start(at: int, data: bytes) -> None:
            while len(writes) >= WRITES_IN_FLIGHT:
                await writes.popleft()
            done = loop.create_future()
            writes.append(done)
            await lane.run(self._start_write, state, at, data, functools.partial(_settle, loop, done))

        try:
            async for chunk in chunks:
                block += chunk
                while len(block) >= self.chunk_size:
                    with memoryview(block) as view:
                        data = bytes(view[:self.chunk_size])
                    del block[:self.chunk_size]
                    await start(offset, data)
                    offset += len(data)
            if block:
                await start(offset, bytes(block))
                offset += len(block)
            while writes:
                await writes.popleft()
        finally:
            for done in writes:
                done.cancel()  # the error to report is the one that ended the add
        return offset

    def _start_write(self, state: dict[str, Any], offset: int, data: bytes, settle: Callable[[int], None]) -> None:
        """Grow the image to hold the block and start writing it; ``settle`` gets the result."""
        image = state["image"]
        image.resize(offset + len(data))
        if self._zeros.startswith(data):  # a new image reads zeros where nothing was written
            settle(0)
            return
        inflight: _InFlight = state["inflight"]

        def written(completion: Any, data: bytes = data) -> None:  # holds the data until then
            inflight.finished()
            settle(completion.get_return_value())

        inflight.started()
        try:
            image.aio_write(data, offset, written)
        except BaseException:
            inflight.finished()
            raise

    def _snapshot(self, state: dict[str, Any]) -> None:
        image = state["image"]
        image.create_snap(SNAPSHOT)
        image.protect_snap(SNAPSHOT)
        state["image"] = None
        image.close()

    def _discard(self, ioctx: Any, name: str, state: dict[str, Any]) -> None:
        """Remove what a failed add wrote (the image, its snapshot if made)."""
        rbd = self._rbd
        try:
            state["inflight"].wait()  # writes still on their way end before the image is closed
            if state["image"] is not None:
                state["image"].close()
                state["image"] = None
            if state["created"]:
                self._remove(ioctx, name, SNAPSHOT)
        except Exception:  # noqa: BLE001 (the add's own error is the one to raise)
            log.exception("store %s: could not remove the partly written image %s", self.id, name)
        finally:
            with contextlib.suppress(rbd.Error):
                ioctx.close()

    def _remove(self, ioctx: Any, name: str, snap: str) -> None:
        """Unprotect and remove the snapshot, then remove the image; gone is not an error."""
        rbd = self._rbd
        try:
            with rbd.Image(ioctx, name) as image:
                snaps = {s["name"] for s in image.list_snaps()}
                if snap in snaps:
                    if children := self._children(image, snap):
                        raise InUse(f"image data {ioctx.name}/{name} is in use: cloned to {', '.join(children)}")
                    if image.is_protected_snap(snap):
                        image.unprotect_snap(snap)
                    image.remove_snap(snap)
            rbd.RBD().remove(ioctx, name)
        except rbd.ImageNotFound:
            return
        except rbd.ImageBusy as exc:
            raise InUse(f"image data {ioctx.name}/{name} is in use: {exc}") from None
        except rbd.ImageHasSnapshots:
            raise InUse(f"image data {ioctx.name}/{name} has other snapshots") from None

    @staticmethod
    def _children(image: Any, snap: str) -> list[str]:
        """The images cloned from ``snap`` (pool/image)."""
        image.set_snap(snap)
        try:
            return [f"{c['pool']}/{c['image']}" for c in image.list_children2()]
        finally:
            image.set_snap(None)

    async def read(self, location: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        pool, name, snap = await self._parse(location)
        ioctx = await self._ioctx(pool)
        lane = _Lane(f"rbd-read-{name[:8]}")
        try:
            image, size = await lane.run(self._open_snapshot, ioctx, name, snap)
        except BaseException:
            await lane.finish(ioctx.close)
            raise
        ahead: asyncio.Future[bytes] | None = None
        try:
            end = size if length is None else min(size, offset + length)
            pos = max(offset, 0)
            # one chunk is read ahead while the caller sends the last one on
            ahead = lane.submit(image.read, pos, min(self.chunk_size, end - pos)) if pos < end else None
            while ahead is not None:
                data = await ahead
                if not data:  # the image shrank under us: what is there has been sent
                    break
                pos += len(data)
                ahead = lane.submit(image.read, pos, min(self.chunk_size, end - pos)) if pos < end else None
                yield data
        except self._rbd.Error as exc:
            raise StoreError(f"store {self.id}: reading image {name} failed: {exc}") from None
        finally:
            if ahead is not None:
                ahead.cancel()
            await lane.finish(self._close_all, image, ioctx)

    def _open_snapshot(self, ioctx: Any, name: str, snap: str) -> tuple[Any, int]:
        rbd = self._rbd
        try:
            image = rbd.Image(ioctx, name, snapshot=snap, read_only=True)
        except rbd.ImageNotFound:
            raise StoreError(f"store {self.id}: image data {ioctx.name}/{name}@{snap} is gone") from None
        return image, image.size()

    @staticmethod
    def _close_all(image: Any, ioctx: Any) -> None:
        image.close()
        ioctx.close()

    async def delete(self, location: str) -> None:
        pool, name, snap = await self._parse(location)
        ioctx = await self._ioctx(pool)
        try:
            await asyncio.to_thread(self._remove, ioctx, name, snap)
        except (self._rbd.Error, self._rados.Error) as exc:
            raise StoreError(f"store {self.id}: deleting image {name} failed: {exc}") from None
        finally:
            ioctx.close()

    async def close(self) -> None:
        async with self._connecting:
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                await asyncio.to_thread(cluster.shutdown)


def create(store_id: str, options: dict[str, Any], data_dir: Path) -> RbdStore:
    opts = dict(options)
    store = RbdStore(store_id,
                     pool=str(opts.pop("pool", "images")),
                     conf_path=str(opts.pop("conf", "/etc/ceph/ceph.conf")),
                     user=str(opts.pop("user", "admin")),
                     chunk_size=int(opts.pop("chunk_size", DEFAULT_CHUNK)),
                     description=str(opts.pop("description", "")),
                     connect_timeout=float(opts.pop("connect_timeout", 30)))
    if opts:
        raise ValueError(f"[image.{store_id}] has unknown keys: {', '.join(sorted(opts))}")
    return store
