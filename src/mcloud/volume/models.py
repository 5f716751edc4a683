"""Tables of the volumes part of the volume service (prefix ``volume_``): volumes, snapshots and
attachments, with Cinder's column names (cinder/db/sqlalchemy/models.py) so the manager, backups
and transfers read them as Cinder's code does.

Rows are soft-deleted as Cinder does (``deleted`` true, ``deleted_at``, status ``deleted``):
lists and shows skip them. Metadata (user key/values), admin metadata (``readonly``,
``attached_mode``) and the image metadata of a volume made from an image (Cinder's
volume_glance_metadata) are JSON columns of the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


def now() -> datetime:
    """Cinder's timestamps: UTC, shown with microseconds and no zone (``2024-05-01T10:00:00.123456``)."""
    return datetime.utcnow()


class Volume(Base):
    __tablename__ = "volume_volume"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(255), index=True)
    previous_status: Mapped[str | None] = mapped_column(sa.String(255))
    attach_status: Mapped[str] = mapped_column(sa.String(255), default="detached")
    migration_status: Mapped[str | None] = mapped_column(sa.String(255))
    replication_status: Mapped[str | None] = mapped_column(sa.String(255))
    # "host@backend#pool" once scheduled
    host: Mapped[str | None] = mapped_column(sa.String(255))
    cluster_name: Mapped[str | None] = mapped_column(sa.String(255))
    display_name: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    display_description: Mapped[str | None] = mapped_column(sa.String(255))
    volume_type_id: Mapped[str | None] = mapped_column(sa.String(36))
    availability_zone: Mapped[str | None] = mapped_column(sa.String(255))
    bootable: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    snapshot_id: Mapped[str | None] = mapped_column(sa.String(36))
    source_volid: Mapped[str | None] = mapped_column(sa.String(36))
    backup_id: Mapped[str | None] = mapped_column(sa.String(36))
    group_id: Mapped[str | None] = mapped_column(sa.String(36))
    encryption_key_id: Mapped[str | None] = mapped_column(sa.String(36))
    provider_location: Mapped[str | None] = mapped_column(sa.String(255))
    provider_id: Mapped[str | None] = mapped_column(sa.String(255))
    service_uuid: Mapped[str | None] = mapped_column(sa.String(36))
    shared_targets: Mapped[bool | None] = mapped_column(sa.Boolean, default=False)
    # whether the volume counts in quota usage (Cinder's use_quota; temporary volumes do not)
    use_quota: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", sa.JSON, default=dict)
    # Cinder's admin metadata: readonly ("True"/"False"), attached_mode ("rw"/"ro")
    admin_metadata: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    volume_image_metadata: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    launched_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class Snapshot(Base):
    __tablename__ = "volume_snapshot"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    volume_size: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(255))
    progress: Mapped[str] = mapped_column(sa.String(255), default="0%")
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    display_description: Mapped[str | None] = mapped_column(sa.String(255))
    volume_type_id: Mapped[str | None] = mapped_column(sa.String(36))
    group_snapshot_id: Mapped[str | None] = mapped_column(sa.String(36))
    provider_location: Mapped[str | None] = mapped_column(sa.String(255))
    provider_id: Mapped[str | None] = mapped_column(sa.String(255))
    use_quota: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class VolumeAttachment(Base):
    """One attachment of a volume to a server (or a host): the attachments API's record and the
    old os-attach flow's alike."""

    __tablename__ = "volume_attachment"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    project_id: Mapped[str] = mapped_column(sa.String(255))
    instance_uuid: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    attached_host: Mapped[str | None] = mapped_column(sa.String(255))
    mountpoint: Mapped[str | None] = mapped_column(sa.String(255))
    attach_status: Mapped[str] = mapped_column(sa.String(255))
    attach_mode: Mapped[str] = mapped_column(sa.String(36), default="rw")
    connector: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    connection_info: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    attach_time: Mapped[datetime | None] = mapped_column(sa.DateTime)
    detach_time: Mapped[datetime | None] = mapped_column(sa.DateTime)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
