"""Backup rotation (Nova's ComputeManager._rotate_backups): after a createBackup snapshot is
uploaded, only the newest ``rotation`` backups of the server with that ``backup_type`` are kept;
the older ones are deleted from the image service. The conductor calls it once the backup's
snapshot succeeded (a failed backup rotates nothing, as in Nova)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("mcloud.compute.servers")


async def backups_of(compute: Any, instance_uuid: str, backup_type: str) -> list[str]:
    """The ids of the server's backups of ``backup_type``, newest first."""
    from mcloud.image.service import Caller as ImageCaller  # noqa: PLC0415

    props = {"image_type": "backup", "backup_type": backup_type, "instance_uuid": instance_uuid}
    async with compute.db.read() as session:
        images, _ = await compute.image.list_images(session, ImageCaller(None, is_admin=True), properties=props,
                                                    visibility="all", sort=(("created_at", "desc"),))
    return [str(i.id) for i in images]


async def rotate_backups(compute: Any, instance: Any, backup_type: str, rotation: int) -> list[str]:
    """Delete the server's oldest backups of ``backup_type`` beyond ``rotation``; the ids deleted."""
    from mcloud.image.service import Caller as ImageCaller  # noqa: PLC0415

    uuid = instance if isinstance(instance, str) else instance.uuid
    images = await backups_of(compute, uuid, backup_type)
    excess = images[max(0, int(rotation)):]
    for image_id in excess:
        try:
            await compute.image.delete_image(ImageCaller(None, is_admin=True), image_id)
        except Exception as exc:  # noqa: BLE001 - gone already: Nova logs and carries on
            log.info("backup rotation of %s: could not delete image %s: %s", uuid, image_id, exc)
    return excess


__all__ = ["backups_of", "rotate_backups"]
