"""Tables of the volume service's types part (prefix ``volume_``): volume types with their extra
specs and access lists, each project's default type, QoS specs, group types with their specs and
access lists, Cinder's own quota overrides (per project and per quota class), user messages, and
what an admin changed about a service (os-services disable/freeze).

Types and QoS specs are removed for good when deleted: a type in use by a volume cannot be
deleted (Cinder's 400), so no volume ever points at a missing type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


def now() -> datetime:
    return datetime.utcnow().replace(microsecond=0)


class QosSpecs(Base):
    """A QoS specs entity: its consumer (front-end, back-end or both) and its key/value specs."""

    __tablename__ = "volume_qos_specs"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    consumer: Mapped[str] = mapped_column(sa.String(16), default="back-end")
    specs: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)


class VolumeType(Base):
    __tablename__ = "volume_type"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(255))
    is_public: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    qos_specs_id: Mapped[str | None] = mapped_column(sa.ForeignKey("volume_qos_specs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class VolumeTypeExtraSpec(Base):
    __tablename__ = "volume_type_extra_spec"
    volume_type_id: Mapped[str] = mapped_column(sa.ForeignKey("volume_type.id", ondelete="CASCADE"),
                                                primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(sa.String(255))


class VolumeTypeProject(Base):
    """The projects a private volume type is shared with (os-volume-type-access)."""

    __tablename__ = "volume_type_project"
    volume_type_id: Mapped[str] = mapped_column(sa.ForeignKey("volume_type.id", ondelete="CASCADE"),
                                                primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)


class DefaultType(Base):
    """A project's own default volume type (3.62); such a type cannot be deleted."""

    __tablename__ = "volume_default_type"
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(sa.ForeignKey("volume_type.id"), index=True)


class GroupType(Base):
    __tablename__ = "volume_group_type"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(255))
    is_public: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class GroupTypeSpec(Base):
    __tablename__ = "volume_group_type_spec"
    group_type_id: Mapped[str] = mapped_column(sa.ForeignKey("volume_group_type.id", ondelete="CASCADE"),
                                               primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(sa.String(255))


class GroupTypeProject(Base):
    __tablename__ = "volume_group_type_project"
    group_type_id: Mapped[str] = mapped_column(sa.ForeignKey("volume_group_type.id", ondelete="CASCADE"),
                                               primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)


class Quota(Base):
    """A project's limit set through os-quota-sets (identity's project limit wins over it)."""

    __tablename__ = "volume_quota"
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(sa.Integer)


class QuotaClass(Base):
    """os-quota-class-sets: the ``default`` class holds every project's defaults."""

    __tablename__ = "volume_quota_class"
    class_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(sa.Integer)


class Message(Base):
    """A user message (3.3): what went wrong with a project's resource, in Cinder's message ids."""

    __tablename__ = "volume_message"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    request_id: Mapped[str | None] = mapped_column(sa.String(255))
    resource_type: Mapped[str | None] = mapped_column(sa.String(255))
    resource_uuid: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    event_id: Mapped[str] = mapped_column(sa.String(255))
    message_level: Mapped[str] = mapped_column(sa.String(255), default="ERROR")
    action_id: Mapped[str | None] = mapped_column(sa.String(10))
    detail_id: Mapped[str | None] = mapped_column(sa.String(10))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class ServiceState(Base):
    """What an admin set on a service (os-services): disabled with a reason, frozen."""

    __tablename__ = "volume_service_state"
    binary: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(255))
    frozen: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
