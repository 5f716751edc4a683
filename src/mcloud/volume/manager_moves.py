"""The manager's tasks that move a volume's data: retype (to another backend when the new type
asks for one: Cinder's migration with ``migration_policy=on-demand``) and upload to an image.

**Retype**: if the volume's backend passes the new type's filters, only the type changes (as
Cinder's retype on the same host). Else with policy ``never`` the volume stays as it was (Cinder:
"Retype requires migration but is not allowed."); with ``on-demand`` a pool is claimed on
another backend (``backends.move``), the volume is made there under its own name and its raw
data copied (``read`` → ``write``), then one transaction moves ``host``, type and claim, and
only then is the old copy deleted. The task notes the pool it moves from (its progress message)
before switching, so a task resumed after the switch deletes the old copy and ends: nothing
is left on either backend.

**Upload to image**: the volume's raw data (a forced upload of an in-use volume reads it as a
crash-consistent copy) is streamed into the image service's ``upload`` of the queued image; a
``disk_format`` other than raw is converted with ``qemu-img convert`` through a scratch file.
Failure: the image is deleted (when still queued), the volume back to its status, a user message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcloud.core import qemu_img as disk_tools
from mcloud.core.qemu_img import QEMU_FORMATS
from mcloud.core.tasks import Task, TaskContext
from mcloud.volume import states as st
from mcloud.volume.backends import NoValidBackend, backend_of
from mcloud.volume.drivers.base import BackendError

log = logging.getLogger("mcloud.volume.manager")

MOVED_FROM = "moved-from:"
#: the disk formats an upload converts into (raw goes as it is read)
CONVERTED = {k: v for k, v in QEMU_FORMATS.items() if v != "raw"}


class Moves:
    def __init__(self, manager: Any):
        self.manager = manager
        self.volume = manager.volume

    # ------------------------------------------------------------------ retype

    async def run_retype(self, ctx: TaskContext) -> dict[str, Any]:
        from mcloud.volume.manager import now

        m = self.manager
        volume_id, type_id = ctx.payload["volume_id"], ctx.payload["type_id"]
        policy = ctx.payload.get("policy") or "never"
        previous = ctx.payload.get("previous_status") or st.AVAILABLE
        moved_from = await self._moved_from(ctx.id)
        async with self.volume.db.write() as session:
            row = await m._volume(session, volume_id, lock=True)
            if row is None or row.deleted:
                return {"skipped": "gone"}
            if moved_from and row.host != moved_from:
                # resumed after the switch: only the old copy is left to delete
                host, size = row.host, int(row.size)
                finish_only = True
            else:
                if row.status != st.RETYPING:
                    return {"skipped": row.status}
                host, size = row.host, int(row.size)
                finish_only = False
                specs = await m._type_specs(session, type_id)
                current = backend_of(host)
                here = current is not None and current in await self.volume.backends.candidates(
                    session, 0, specs, None, backend=current)
                if here or not host:
                    row.volume_type_id = type_id
                    row.status = previous
                    row.updated_at = now()
                    return {"moved": False}
                if policy != "on-demand":
                    row.status = previous
                    row.updated_at = now()
                    return {"error": "Retype requires migration but is not allowed."}
                targets = [b for b in await self.volume.backends.candidates(session, size, specs, None)
                           if b != current]
                target_pool = None
                for name in targets:
                    try:
                        pool = self.volume.backends.pool_of(name)
                        await self.volume.backends.move(session, volume_id, size, pool)
                        target_pool = pool
                        break
                    except NoValidBackend:
                        continue
                if target_pool is None:
                    row.status = previous
                    row.updated_at = now()
                    await m.message(session, row.project_id, volume_id, "001", "003")
                    return {"error": "No valid backend was found."}
                row.migration_status = "migrating"
                row.updated_at = now()
        if finish_only:
            await self._drop_old(moved_from, volume_id)
            return {"moved": True, "host": host}
        source = self.volume.backends.for_host(host)
        target = self.volume.backends.for_host(target_pool)
        try:
            if source is None or target is None:
                raise BackendError("The volume's backend is not configured.")
            await target.create(volume_id, size)
            await target.write(volume_id, source.read(volume_id))
        except Exception as exc:  # noqa: BLE001
            log.warning("volume %s: moving to %s failed: %s", volume_id, target_pool, exc)
            if target is not None:
                with contextlib.suppress(Exception):
                    await target.delete(volume_id)
            async with self.volume.db.write() as session:
                await self.volume.backends.settle_move(session, volume_id, done=False)
                row = await m._volume(session, volume_id, lock=True)
                if row is not None and row.status == st.RETYPING:
                    row.status = previous
                    row.migration_status = "error"
                    row.updated_at = now()
            return {"error": str(exc)}
        await ctx.progress(90, MOVED_FROM + host)
        async with self.volume.db.write() as session:
            row = await m._volume(session, volume_id, lock=True)
            await self.volume.backends.settle_move(session, volume_id, done=True)
            if row is not None:
                row.host = target_pool
                row.volume_type_id = type_id
                row.migration_status = "success"
                if row.status == st.RETYPING:
                    row.status = previous
                row.updated_at = now()
        await self._drop_old(host, volume_id)
        return {"moved": True, "host": target_pool}

    async def _moved_from(self, task_id: str) -> str | None:
        async with self.volume.db.read() as session:
            task = await session.get(Task, task_id)
            message = task.message if task is not None else None
        return message[len(MOVED_FROM):] if message and message.startswith(MOVED_FROM) else None

    async def _drop_old(self, host: str, volume_id: str) -> None:
        old = self.volume.backends.for_host(host)
        if old is not None:
            try:
                await old.delete(volume_id)
            except Exception:  # noqa: BLE001 (the move is done; the old copy is found by orphans())
                log.warning("volume %s: the old copy on %s could not be deleted", volume_id, host, exc_info=True)

    # ------------------------------------------------------------------ upload to image

    async def run_upload(self, ctx: TaskContext) -> dict[str, Any]:
        from mcloud.image.service import Caller as ImageCaller
        from mcloud.volume.manager import DETAIL_UPLOAD_FAILED, MSG_UPLOAD, now

        m = self.manager
        volume_id, image_id = ctx.payload["volume_id"], ctx.payload["image_id"]
        disk_format = ctx.payload.get("disk_format") or "raw"
        previous = ctx.payload.get("previous_status") or st.AVAILABLE
        async with self.volume.db.read() as session:
            row = await m._volume(session, volume_id)
            if row is None or row.deleted or row.status != st.UPLOADING:
                return {"skipped": "gone" if row is None else row.status}
            host, project_id = row.host, row.project_id
        images = self.volume.image
        caller = ImageCaller(None, is_admin=True)
        try:
            backend = m.backend_for(host)
            if disk_format in CONVERTED:
                await self._upload_converted(backend, volume_id, image_id, CONVERTED[disk_format], caller)
            else:
                await images.upload(caller, image_id, backend.read(volume_id))
            status, error = previous, None
        except Exception as exc:  # noqa: BLE001
            log.warning("volume %s: upload to image %s failed: %s", volume_id, image_id, exc)
            status, error = previous, str(exc) or type(exc).__name__
            with contextlib.suppress(Exception):
                async with images.db.read() as session:
                    image = await images.get_image(session, caller, image_id)
                    queued = image.status == "queued"
                if queued:
                    await images.delete_image(caller, image_id)
        async with self.volume.db.write() as session:
            row = await m._volume(session, volume_id, lock=True)
            if row is not None and row.status == st.UPLOADING:
                row.status = status
                row.updated_at = now()
            if error:
                await m.message(session, project_id, volume_id, MSG_UPLOAD, DETAIL_UPLOAD_FAILED)
        return {"error": error} if error else {"image_id": image_id}

    async def _upload_converted(self, backend: Any, volume_id: str, image_id: str, fmt: str, caller: Any) -> None:
        scratch = Path(self.volume.data_dir) / "volumes" / ".scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"upload-{volume_id[:8]}-", dir=scratch))
        try:
            raw = workdir / "raw"
            with raw.open("wb") as out:
                async for chunk in backend.read(volume_id):
                    if chunk.count(0) == len(chunk):
                        out.seek(len(chunk), os.SEEK_CUR)  # the scratch file stays sparse
                    else:
                        await asyncio.to_thread(out.write, chunk)
                out.truncate()
            converted = workdir / f"image.{fmt}"
            await disk_tools.qemu_img("convert", "-q", "-f", "raw", "-O", fmt, str(raw), str(converted),
                                      error=BackendError)
            raw.unlink()
            await self.volume.image.upload(caller, image_id, _file_chunks(converted))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


async def _file_chunks(path: Path, chunk_size: int = 4 << 20) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, chunk_size):
            yield chunk
