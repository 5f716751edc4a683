"""Tables owned by the volume service's backups part (prefix ``volume_``): backups and volume
transfers.

A backup outlives its volume (Cinder keeps backups when the volume goes), so ``volume_id`` is no
foreign key. Where a backup's data is, is the backup driver's business: ``driver`` names the
driver that wrote it and ``service_metadata`` what it needs to find it again (the chunk list of a
chunked backup). An incremental names its parent; a parent cannot go while children exist.

A transfer is kept after it is accepted or deleted (``deleted``), for the history Cinder shows
from 3.57 (``accepted``, ``destination_project_id``); only rows not deleted are listed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base
from mcloud.volume.models import now

__all__ = ["Backup", "Transfer", "now"]


class Backup(Base):
    __tablename__ = "volume_backup"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    volume_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    # the snapshot backed up instead of the volume (Cinder's snapshot_id)
    snapshot_id: Mapped[str | None] = mapped_column(sa.String(36))
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    display_description: Mapped[str | None] = mapped_column(sa.String(255))
    container: Mapped[str | None] = mapped_column(sa.String(255))
    availability_zone: Mapped[str | None] = mapped_column(sa.String(255))
    # GiB, the volume's size when it was backed up
    size: Mapped[int] = mapped_column(sa.Integer, default=0)
    object_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    fail_reason: Mapped[str | None] = mapped_column(sa.String(255))
    parent_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    # when the backed-up data was taken (the snapshot's created_at for a backup of a snapshot)
    data_timestamp: Mapped[datetime | None] = mapped_column(sa.DateTime)
    restore_volume_id: Mapped[str | None] = mapped_column(sa.String(36))
    # the volume's (or snapshot's) status before the backup or restore began, to put it back
    volume_previous_status: Mapped[str | None] = mapped_column(sa.String(32))
    # the backup driver that holds the data ("file", "rbd", "fake") and what it needs to find it
    driver: Mapped[str | None] = mapped_column(sa.String(32))
    service_metadata: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # the volume's own facts at backup time, given back by a restore (bootable, image metadata)
    volume_facts: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class Transfer(Base):
    __tablename__ = "volume_transfer"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    salt: Mapped[str] = mapped_column(sa.String(255))
    crypt_hash: Mapped[str] = mapped_column(sa.String(255))
    source_project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    destination_project_id: Mapped[str | None] = mapped_column(sa.String(255))
    accepted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    no_snapshots: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
