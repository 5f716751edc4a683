"""Tables of the volume service's groups part (prefix ``volume_``): generic volume groups (3.13),
the volume types each group allows, and group snapshots (3.14), with Cinder's column names
(cinder/db/sqlalchemy/models.py Group, GroupVolumeTypeMapping, GroupSnapshot).

A volume belongs to a group through its own ``group_id`` (``volume_volume``), a snapshot to a
group snapshot through its ``group_snapshot_id`` (``volume_snapshot``). The group types are the
types part's tables (``volume_group_type``). Groups and group snapshots are soft-deleted as
Cinder's (``deleted``, ``deleted_at``, status ``deleted``): quota usage counts the live ones.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base
from mcloud.volume.models import now


class Group(Base):
    __tablename__ = "volume_group"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(255))
    availability_zone: Mapped[str | None] = mapped_column(sa.String(255))
    group_type_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    group_snapshot_id: Mapped[str | None] = mapped_column(sa.String(36))
    source_group_id: Mapped[str | None] = mapped_column(sa.String(36))
    replication_status: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class GroupVolumeType(Base):
    """The volume types a group's volumes may have (Cinder's group_volume_type_mapping)."""

    __tablename__ = "volume_group_volume_type"
    group_id: Mapped[str] = mapped_column(sa.ForeignKey("volume_group.id", ondelete="CASCADE"), primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)


class GroupSnapshot(Base):
    __tablename__ = "volume_group_snapshot"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    group_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(255))
    group_type_id: Mapped[str] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
