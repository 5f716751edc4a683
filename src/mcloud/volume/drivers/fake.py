"""The ``fake`` backend: volumes and snapshots as state only, for fast API tests.

It keeps what a real backend would (each volume's size, its snapshots, what it was made from, the
bytes written to it) in memory, and in ``DATA_DIR/volumes/<name>/fake.json`` so that a restarted
process (a crash test) finds the same store. Data is sparse: :meth:`Backend.read` returns the
bytes written (and what a snapshot or source held), not a whole volume of zeros.

Options (``[volume.backends.NAME]``)::

    driver = "fake"
    total_gb = 1000          # the capacity it reports
    fail = ["create"]        # operations that fail (BackendError), for fault tests
    delay = 0.0              # seconds each operation takes (to catch tasks in flight)

Tests may also call :meth:`Backend.fail_next` to make the next calls of one operation fail.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcloud.volume.drivers.base import BackendError, BackendNotFound, Capacity, ImageSource

OPERATIONS = ("create", "create_from_image", "create_from_snapshot", "clone", "delete", "extend",
              "create_snapshot", "delete_snapshot", "revert_to_snapshot", "read", "write")


class Backend:
    driver = "fake"

    def __init__(self, name: str, options: dict[str, Any], data_dir: Path):
        opts = dict(options)
        self.name = name
        self.backend_name = str(opts.pop("volume_backend_name", name))
        self.total_gb = float(opts.pop("total_gb", 1000))
        self.delay = float(opts.pop("delay", 0.0))
        self._fail: dict[str, int] = {op: -1 for op in opts.pop("fail", [])}  # -1: always
        for op in self._fail:
            if op not in OPERATIONS:
                raise ValueError(f"[volume.backends.{name}] fail: unknown operation {op!r}")
        opts.pop("availability_zone", None)
        if opts:
            raise ValueError(f"[volume.backends.{name}] has unknown keys: {', '.join(sorted(opts))}")
        self.path = data_dir / "volumes" / name / "fake.json"
        # name ("volume-<id>" / "snapshot-<id>") -> {"size": GiB, "data": base64, "of": volume id,
        # "from": how it was made}
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    # -- test hooks ---------------------------------------------------------------------------

    def fail_next(self, operation: str, times: int = 1) -> None:
        """The next ``times`` calls of ``operation`` raise BackendError (-1: all of them)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        self._fail[operation] = times

    async def _op(self, operation: str, target: str) -> None:
        self.calls.append((operation, target))
        if self.delay:
            await asyncio.sleep(self.delay)
        left = self._fail.get(operation, 0)
        if left:
            if left > 0:
                self._fail[operation] = left - 1
            raise BackendError(f"The fake backend {self.name} was told to fail {operation} ({target}).")

    # -- store --------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            self.objects = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.objects = {}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(".fake.json.tmp")
        tmp.write_text(json.dumps(self.objects))
        tmp.replace(self.path)

    def _get(self, name: str) -> dict[str, Any]:
        obj = self.objects.get(name)
        if obj is None:
            raise BackendNotFound(f"{name} does not exist on backend {self.name}.")
        return obj

    def _put(self, name: str, size_gb: int, data: str = "", made: str = "blank", of: str | None = None) -> None:
        existing = self.objects.get(name)
        if existing is not None and existing["size"] != size_gb:
            raise BackendError(f"{name} already exists on backend {self.name} with another size.")
        self.objects[name] = {"size": size_gb, "data": data, "from": made, **({"of": of} if of else {})}
        self._save()

    # -- the Protocol -------------------------------------------------------------------------

    async def start(self) -> None:
        self._load()

    async def close(self) -> None:
        pass

    async def capacity(self) -> Capacity:
        used = sum(o["size"] for o in self.objects.values() if "of" not in o)
        return Capacity(total_gb=self.total_gb, free_gb=max(0.0, self.total_gb - used))

    async def create(self, volume_id: str, size_gb: int) -> None:
        await self._op("create", volume_id)
        self._put(f"volume-{volume_id}", size_gb)

    async def create_from_image(self, volume_id: str, size_gb: int, image: ImageSource) -> str:
        await self._op("create_from_image", volume_id)
        data = bytearray()
        if image.open is not None and image.size <= (16 << 20):
            async for chunk in image.open():
                data += chunk
        self._put(f"volume-{volume_id}", size_gb, base64.b64encode(bytes(data)).decode(), made=f"image:{image.id}")
        return "copy"

    async def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str,
                                   source_volume_id: str) -> None:
        await self._op("create_from_snapshot", volume_id)
        snap = self._get(f"snapshot-{snapshot_id}")
        self._put(f"volume-{volume_id}", size_gb, snap["data"], made=f"snapshot:{snapshot_id}")

    async def clone(self, volume_id: str, size_gb: int, source_volume_id: str) -> None:
        await self._op("clone", volume_id)
        source = self._get(f"volume-{source_volume_id}")
        self._put(f"volume-{volume_id}", size_gb, source["data"], made=f"volume:{source_volume_id}")

    async def delete(self, volume_id: str) -> None:
        await self._op("delete", volume_id)
        if self.objects.pop(f"volume-{volume_id}", None) is not None:
            self._save()

    async def extend(self, volume_id: str, size_gb: int) -> None:
        await self._op("extend", volume_id)
        obj = self._get(f"volume-{volume_id}")
        obj["size"] = max(obj["size"], size_gb)
        self._save()

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        await self._op("create_snapshot", snapshot_id)
        if f"snapshot-{snapshot_id}" in self.objects:
            return
        vol = self._get(f"volume-{volume_id}")
        self._put(f"snapshot-{snapshot_id}", vol["size"], vol["data"], made=f"volume:{volume_id}", of=volume_id)

    async def delete_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        await self._op("delete_snapshot", snapshot_id)
        if self.objects.pop(f"snapshot-{snapshot_id}", None) is not None:
            self._save()

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        await self._op("revert_to_snapshot", volume_id)
        snap = self._get(f"snapshot-{snapshot_id}")
        self._get(f"volume-{volume_id}")["data"] = snap["data"]
        self._save()

    async def connection_info(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        self._get(f"volume-{volume_id}")
        return {"driver_volume_type": "fake",
                "data": {"name": f"volume-{volume_id}", "volume_id": volume_id, "access_mode": "rw",
                         "discard": True, "format": "raw"}}

    async def read(self, volume_id: str, snapshot_id: str | None = None,
                   chunk_size: int = 4 << 20) -> AsyncIterator[bytes]:
        await self._op("read", volume_id)
        obj = self._get(f"snapshot-{snapshot_id}" if snapshot_id else f"volume-{volume_id}")
        data = base64.b64decode(obj["data"])
        for at in range(0, len(data), chunk_size):
            yield data[at:at + chunk_size]

    async def write(self, volume_id: str, chunks: AsyncIterator[bytes]) -> None:
        await self._op("write", volume_id)
        obj = self._get(f"volume-{volume_id}")
        data = bytearray()
        at = 0  # zero chunks only move on: a thin 1 GB stream of zeros takes no memory
        async for chunk in chunks:
            at += len(chunk)
            if at > obj["size"] << 30:
                raise BackendError(f"The data is larger than volume {volume_id} ({obj['size']} GB).")
            if chunk.count(0) != len(chunk):
                data += bytes(at - len(chunk) - len(data))
                data += chunk
        obj["data"] = base64.b64encode(bytes(data.rstrip(b"\0"))).decode()  # zeros past the data
        self._save()

    async def list_ids(self) -> set[str]:
        return set(self.objects)

    def size_of(self, volume_id: str) -> int | None:
        """A volume's size in GiB, or None (for tests)."""
        obj = self.objects.get(f"volume-{volume_id}")
        return None if obj is None else int(obj["size"])
