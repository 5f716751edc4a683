"""Root disks in Ceph for the qemu driver: an instance made from an image that lives in Ceph (the
image service's rbd store: ``ImageSpec.rbd`` = ``pool/image@snap``, a protected snapshot) gets a
copy-on-write clone of that snapshot as its root disk, as Nova's RBD image backend makes one:
``<pool>/<instance uuid>_disk``, grown to the flavor's root disk, opened by qemu through its rbd
block driver (Debian: qemu-block-extra). Nothing is downloaded and the disk is ready at once.

Only raw images are cloned (Nova's ``is_cloneable``: a clone of qcow2 data would be qcow2 data
that qemu reads as a raw disk); an image in Ceph in another format is the backing file of a local
qcow2 overlay instead (``qemu_disk.backing_of``).

The instance's directory records where its disk is (``disk.rbd``, JSON of :class:`RbdDisk`). A
resize keeps the disk as it was in a snapshot ``resize`` (rolled back by a revert, removed by a
confirm). The librados/librbd calls block: callers run these functions in a thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcloud.compute.drivers.base import DriverError
from mcloud.core.ceph import CephBindingsMissing, bindings

#: the snapshot that keeps a disk as it was before a resize
RESIZE_SNAPSHOT = "resize"
CONNECT_TIMEOUT = 30


def missing() -> str | None:
    """What keeps qemu from opening disks in Ceph here (a sentence), or None."""
    try:
        out = subprocess.run(["qemu-img", "--help"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return "qemu-img is not installed (Debian: qemu-utils)"
    formats = re.search(r"Supported formats:(.*)", out)
    if formats is None or "rbd" not in formats.group(1).split():
        return "qemu has no rbd block driver (Debian: qemu-block-extra)"
    try:
        bindings()
    except CephBindingsMissing as exc:
        return str(exc)
    return None


@dataclasses.dataclass(frozen=True)
class RbdDisk:
    pool: str
    image: str
    conf: str
    user: str | None = None

    @property
    def name(self) -> str:
        return f"{self.pool}/{self.image}"

    def uri(self) -> str:
        """The disk as qemu-img names it (``rbd:pool/image:conf=...``)."""
        uri = f"rbd:{self.pool}/{self.image}:conf={self.conf}"
        return uri + (f":id={self.user}" if self.user else "")

    def blockdev(self, node: str) -> dict[str, Any]:
        """qemu's ``-blockdev`` of the disk (raw data through the rbd protocol driver)."""
        file: dict[str, Any] = {"driver": "rbd", "pool": self.pool, "image": self.image, "conf": self.conf}
        if self.user:
            file["user"] = self.user
        return {"driver": "raw", "node-name": node, "read-only": False, "file": file}

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RbdDisk | None:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise DriverError(f"{path} does not say where the disk is in Ceph: {exc}") from exc


def parse_parent(spec: str) -> tuple[str, str, str]:
    """``pool/image@snap`` -> (pool, image, snap)."""
    name, _, snap = spec.partition("@")
    pool, _, image = name.partition("/")
    if not (pool and image and snap) or "/" in image:
        raise DriverError(f"{spec!r} is not an RBD snapshot (pool/image@snap)")
    return pool, image, snap


@contextlib.contextmanager
def _cluster(conf: str, user: str | None) -> Iterator[tuple[Any, Any, Any]]:
    """(rados module, rbd module, a connected cluster handle)."""
    try:
        rados, rbd = bindings()
    except CephBindingsMissing as exc:
        raise DriverError(f"cannot reach Ceph: {exc}") from exc
    cluster = rados.Rados(conffile=conf, rados_id=user) if user else rados.Rados(conffile=conf)
    try:
        cluster.connect(timeout=CONNECT_TIMEOUT)
    except rados.Error as exc:
        raise DriverError(f"cannot reach the Ceph cluster of {conf}: {exc}") from exc
    try:
        yield rados, rbd, cluster
    finally:
        cluster.shutdown()


@contextlib.contextmanager
def _image(disk: RbdDisk) -> Iterator[tuple[Any, Any]]:
    """(rbd module, the open image)."""
    with _cluster(disk.conf, disk.user) as (rados, rbd, cluster):
        try:
            with cluster.open_ioctx(disk.pool) as ioctx, rbd.Image(ioctx, disk.image) as image:
                yield rbd, image
        except rbd.ImageNotFound as exc:
            raise DriverError(f"the disk {disk.name} is not in Ceph") from exc
        except (rados.Error, rbd.Error) as exc:
            raise DriverError(f"Ceph refused an operation on {disk.name}: {exc}") from exc


def clone(parent: str, disk: RbdDisk, size: int) -> int:
    """Clone the protected snapshot ``parent`` (pool/image@snap) to ``disk``, grown to ``size``
    bytes when the image is smaller; returns the disk's size."""
    p_pool, p_image, p_snap = parse_parent(parent)
    with _cluster(disk.conf, disk.user) as (rados, rbd, cluster):
        try:
            with cluster.open_ioctx(p_pool) as p_ioctx, cluster.open_ioctx(disk.pool) as c_ioctx:
                rbd.RBD().clone(p_ioctx, p_image, p_snap, c_ioctx, disk.image)
                try:
                    with rbd.Image(c_ioctx, disk.image) as image:
                        if image.size() < size:
                            image.resize(size)
                        return int(image.size())
                except BaseException:
                    with contextlib.suppress(rbd.Error):
                        rbd.RBD().remove(c_ioctx, disk.image)
                    raise
        except rbd.ImageNotFound as exc:
            raise DriverError(f"image {parent} is not in Ceph: {exc}") from exc
        except rbd.ImageExists as exc:
            raise DriverError(f"the disk {disk.name} is already in Ceph") from exc
        except (rados.Error, rbd.Error) as exc:
            raise DriverError(f"cloning {parent} to {disk.name} failed: {exc}") from exc


def remove(disk: RbdDisk, timeout: float = 40) -> None:
    """Remove the disk and its snapshots; a disk that is gone is not an error. A client that
    still watches it (a qemu that was killed: its watch lapses after 30 s) is waited for."""
    deadline = time.monotonic() + timeout
    with _cluster(disk.conf, disk.user) as (rados, rbd, cluster):
        try:
            with cluster.open_ioctx(disk.pool) as ioctx:
                try:
                    with rbd.Image(ioctx, disk.image) as image:
                        for snap in list(image.list_snaps()):
                            if image.is_protected_snap(snap["name"]):
                                image.unprotect_snap(snap["name"])
                            image.remove_snap(snap["name"])
                except rbd.ImageNotFound:
                    return
                while True:
                    try:
                        rbd.RBD().remove(ioctx, disk.image)
                        return
                    except rbd.ImageNotFound:
                        return
                    except rbd.ImageBusy:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
        except (rados.Error, rbd.Error) as exc:
            raise DriverError(f"removing the disk {disk.name} from Ceph failed: {exc}") from exc


def exists(disk: RbdDisk) -> bool:
    with _cluster(disk.conf, disk.user) as (rados, rbd, cluster):
        try:
            with cluster.open_ioctx(disk.pool) as ioctx:
                return disk.image in rbd.RBD().list(ioctx)
        except (rados.Error, rbd.Error) as exc:
            raise DriverError(f"cannot list the pool {disk.pool}: {exc}") from exc


def size(disk: RbdDisk) -> int:
    with _image(disk) as (_, image):
        return int(image.size())


def grow(disk: RbdDisk, new_size: int, keep_snapshot: bool) -> None:
    """Grow the disk to ``new_size`` bytes (never shrink); with ``keep_snapshot`` first keep it
    as it is in the ``resize`` snapshot (unless one is there from a resize not yet confirmed)."""
    with _image(disk) as (_, image):
        if keep_snapshot and not any(s["name"] == RESIZE_SNAPSHOT for s in image.list_snaps()):
            image.create_snap(RESIZE_SNAPSHOT)
        if image.size() < new_size:
            image.resize(new_size)


def revert(disk: RbdDisk) -> None:
    """Put the disk back as the ``resize`` snapshot kept it (its size too), and drop the snapshot."""
    with _image(disk) as (_, image):
        if any(s["name"] == RESIZE_SNAPSHOT for s in image.list_snaps()):
            image.rollback_to_snap(RESIZE_SNAPSHOT)
            image.remove_snap(RESIZE_SNAPSHOT)


def confirm(disk: RbdDisk) -> None:
    with _image(disk) as (_, image):
        if any(s["name"] == RESIZE_SNAPSHOT for s in image.list_snaps()):
            image.remove_snap(RESIZE_SNAPSHOT)
