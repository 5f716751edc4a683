"""Disk files of the qemu driver: qcow2 overlays on cached images (``qemu-img``), standalone
copies for snapshots, growing a disk, and the config drive (an ISO 9660 image labelled
``config-2``, made with ``genisoimage`` as Nova makes it)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcloud.compute.drivers.base import DriverError, ImageSpec
from mcloud.core import qemu_img as qemu_img_tools

GIB = 1 << 30


async def run(*argv: str, timeout: float = 600) -> str:
    """Run a program; its stdout, or DriverError with its stderr."""
    return await qemu_img_tools.run(*argv, timeout=timeout, error=DriverError)


async def info(path: Path | str) -> dict[str, Any]:
    """``qemu-img info`` of a file (``-U``: also while a running guest holds it)."""
    return await qemu_img_tools.info(path, error=DriverError)


def backing_of(image: ImageSpec) -> tuple[str, str]:
    """What an instance's overlay is backed by: (file name or ``rbd:`` URI, its format)."""
    if image.path is not None:
        return str(Path(image.path).resolve()), image.disk_format if image.disk_format in ("qcow2", "raw") else "raw"
    if image.rbd:
        # qemu names a snapshot pool/image@snap; its data is in the image's own format
        uri = f"rbd:{image.rbd}"
        if image.ceph_conf:
            uri += f":conf={image.ceph_conf}"
        return uri, image.disk_format if image.disk_format in ("qcow2", "raw") else "raw"
    raise DriverError(f"image {image.id} is neither in this host's image cache nor in Ceph")


async def create_overlay(dest: Path, image: ImageSpec, root_gb: int) -> int:
    """A qcow2 at ``dest`` backed by ``image``, of the flavor's root disk size (or the image's
    own size when that is larger, or when the flavor says 0); returns its size in bytes."""
    backing, fmt = backing_of(image)
    try:
        virtual = int((await info(backing))["virtual-size"])
    except DriverError as exc:
        raise DriverError(f"image {image.id} cannot be read: {exc}") from exc
    size = max(virtual, root_gb * GIB)
    tmp = dest.with_name(f".{dest.name}.tmp")
    await run("qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", backing, str(tmp), str(size))
    tmp.replace(dest)
    return size


async def grow(path: Path, root_gb: int) -> None:
    """Make the disk ``root_gb`` GiB if that is larger than it is (a disk never shrinks: Nova
    refuses a smaller root disk)."""
    size = int((await info(path))["virtual-size"])
    if root_gb * GIB > size:
        await run("qemu-img", "resize", "-q", str(path), str(root_gb * GIB))


async def standalone_copy(source: Path | str, dest: Path, source_format: str | None = None) -> str:
    """A qcow2 at ``dest`` with everything ``source`` shows (its backing chain flattened);
    ``source`` may be a file or a qemu URI (``rbd:pool/image:conf=...``)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    fmt = ["-f", source_format] if source_format else []
    await run("qemu-img", "convert", "-U", "-q", *fmt, "-O", "qcow2", str(source), str(tmp))
    tmp.replace(dest)
    return "qcow2"


async def config_drive(dest: Path, files: Mapping[str, bytes]) -> None:
    """The config drive: ``files`` (path inside it -> content) in an ISO 9660 image labelled
    ``config-2``, with Rock Ridge and Joliet names (Nova's genisoimage options)."""
    with tempfile.TemporaryDirectory(prefix="mcloud-configdrive-") as tmp:
        root = Path(tmp)
        for name, content in files.items():
            path = (root / name).resolve()
            if root not in path.parents:
                raise DriverError(f"config drive file {name!r} is outside the drive")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        program = shutil.which("genisoimage") or shutil.which("mkisofs")
        if program is None:
            raise DriverError("genisoimage is not installed (Debian: genisoimage)")
        out = dest.with_name(f".{dest.name}.tmp")
        await run(program, "-o", str(out), "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
                  "-publisher", "mCloud", "-quiet", "-J", "-r", "-V", "config-2", str(root))
        out.replace(dest)
