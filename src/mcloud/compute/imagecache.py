"""A host's image cache: each image an instance is made from is downloaded once from the image
service, verified against its checksum (``os_hash_algo``/``os_hash_value``, else the md5
``checksum``), and shared read-only by every instance made from it (their disks are overlays on
it). Images that live in Ceph are not downloaded: the driver clones them (``ImageSpec.rbd``).

Where the bytes come from is the transport's business (``Transport.image_chunks``: the image
service in-process for the local host, the image API over HTTP for an agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from mcloud.compute.drivers.base import DriverError, ImageSpec

log = logging.getLogger("mcloud.compute.imagecache")

Chunks = Callable[[str], AsyncIterator[bytes]]


class ImageCacheError(DriverError):
    """The image could not be brought to this host (or its data does not match its checksum)."""


class ImageCache:
    def __init__(self, directory: Path, chunks: Chunks, ceph_conf: str | None = None):
        self.directory = Path(directory)
        self.chunks = chunks
        self.ceph_conf = ceph_conf
        self._locks: dict[str, asyncio.Lock] = {}
        self.downloads = 0  # how many times data was fetched (tests: once per image)

    def path_of(self, image_id: str) -> Path:
        return self.directory / image_id

    async def fetch(self, image: Mapping[str, Any]) -> ImageSpec:
        """The image as the driver takes it, downloading it first when this host lacks it.
        ``image``: id, disk_format, properties, min_disk, size, checksum, os_hash_algo,
        os_hash_value, rbd (``pool/image@snap`` when it lives in Ceph), and for direct kernel
        boot ``kernel``/``ramdisk``: those images the same way (always downloaded, wherever they
        live), or ``{"id", "missing": true}`` when the image service no longer has them (the
        copy cached here is used then, if there is one)."""
        spec: dict[str, Any] = dict(
            id=image["id"], disk_format=image.get("disk_format") or "raw",
            properties=dict(image.get("properties") or {}), min_disk=int(image.get("min_disk") or 0),
            size=int(image.get("size") or 0))
        for part in ("kernel", "ramdisk"):
            if boot_file := image.get(part):
                spec[f"{part}_id"] = boot_file["id"]
                spec[part] = await self._local(boot_file)
        if image.get("rbd"):
            return ImageSpec(**spec, rbd=image["rbd"], ceph_conf=self.ceph_conf)
        return ImageSpec(**spec, path=await self._local(image))

    async def _local(self, image: Mapping[str, Any]) -> Path | None:
        """The cached copy of ``image``, downloaded once; None for a missing image not cached."""
        path = self.path_of(image["id"])
        if image.get("missing"):
            return path if path.exists() else None
        lock = self._locks.setdefault(image["id"], asyncio.Lock())
        async with lock:
            if not path.exists():
                await self._download(image, path)
        return path

    async def _download(self, image: Mapping[str, Any], path: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        algo = image.get("os_hash_algo")
        expected = image.get("os_hash_value")
        if not (algo and expected and algo in hashlib.algorithms_available):
            algo, expected = ("md5", image.get("checksum")) if image.get("checksum") else (None, None)
        digest = hashlib.new(algo) if algo else None
        tmp = path.with_name(f".{path.name}.part")
        size = 0
        try:
            with open(tmp, "wb") as out:
                async for chunk in self.chunks(image["id"]):
                    size += len(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            if digest is not None and digest.hexdigest() != expected:
                raise ImageCacheError(f"Image {image['id']} failed verification: its {algo} is "
                                      f"{digest.hexdigest()}, the image service says {expected}")
            if image.get("size") and size != int(image["size"]):
                raise ImageCacheError(f"Image {image['id']} has {size} bytes, the image service says "
                                      f"{image['size']}")
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
            self.downloads += 1
            log.info("image %s cached (%d bytes)", image["id"], size)
        except ImageCacheError:
            raise
        except DriverError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to fetch is the spawn's fault message
            raise ImageCacheError(f"Image {image['id']} could not be downloaded: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def remove_unused(self, in_use: set[str]) -> list[str]:
        """Remove cached images no instance uses; returns their ids."""
        gone = []
        if not self.directory.exists():
            return gone
        for entry in self.directory.iterdir():
            if entry.name.startswith(".") or entry.name in in_use:
                continue
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                gone.append(entry.name)
        return gone
