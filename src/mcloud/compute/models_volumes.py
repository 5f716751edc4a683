"""Block device mappings (``compute_block_device_mapping``): the volumes of a server, as Nova's
block_device_mapping table keeps them (one row per volume; the image's local root disk has no
row here).

A row is written when the API reserves the volume (attach, or a server create with
``block_device_mapping_v2``); ``attachment_id`` is the volume service's attachment, and
``connection_info`` what its backend answered once the host is known (the host's payload
carries it). Rows of a server whose volume is detached, or of a deleted server, are removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.compute.models import now
from mcloud.core.db import Base


class BlockDeviceMapping(Base):
    __tablename__ = "compute_block_device_mapping"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    #: the BDM's uuid (2.89 ``bdm_uuid``)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(sa.String(36), index=True)
    volume_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    attachment_id: Mapped[str | None] = mapped_column(sa.String(36))
    #: what the volume was made from: "volume" (given), "image", "snapshot", "blank"
    source_type: Mapped[str] = mapped_column(sa.String(16), default="volume")
    destination_type: Mapped[str] = mapped_column(sa.String(16), default="volume")
    image_id: Mapped[str | None] = mapped_column(sa.String(36))
    snapshot_id: Mapped[str | None] = mapped_column(sa.String(36))
    volume_size: Mapped[int | None] = mapped_column(sa.Integer)
    volume_type: Mapped[str | None] = mapped_column(sa.String(255))
    #: 0: the root disk; None: not bootable
    boot_index: Mapped[int | None] = mapped_column(sa.Integer)
    device_name: Mapped[str | None] = mapped_column(sa.String(255))
    disk_bus: Mapped[str | None] = mapped_column(sa.String(32))
    device_type: Mapped[str | None] = mapped_column(sa.String(32))
    delete_on_termination: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    tag: Mapped[str | None] = mapped_column(sa.String(255))
    connection_info: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: "attaching", "attached", "detaching" (while a detach runs), "error"
    status: Mapped[str] = mapped_column(sa.String(16), default="attaching")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
