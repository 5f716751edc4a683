"""Tables owned by the compute service's resources part (prefix ``compute_``): flavors with their
extra specs and access lists, keypairs, server groups and their members, host aggregates with
their hosts and metadata, and Nova's own quota overrides (per project and per quota class).

Flavors are removed for good when deleted (Nova's API database does the same); a server keeps the
copy of its flavor it was booted with (``compute_instance.flavor``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.compute.models import now
from mcloud.core.db import Base


class Flavor(Base):
    __tablename__ = "compute_flavor"
    # Nova's internal integer id (a sort key); ``flavorid`` is the id the API shows
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    flavorid: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(sa.Integer)
    vcpus: Mapped[int] = mapped_column(sa.Integer)
    root_gb: Mapped[int] = mapped_column(sa.Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(sa.Integer, default=0)
    swap: Mapped[int] = mapped_column(sa.Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(sa.Float, default=1.0)
    vcpu_weight: Mapped[int | None] = mapped_column(sa.Integer)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    is_public: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class FlavorExtraSpec(Base):
    __tablename__ = "compute_flavor_extra_spec"
    flavor_id: Mapped[int] = mapped_column(sa.ForeignKey("compute_flavor.id", ondelete="CASCADE"),
                                           primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(255))


class FlavorProject(Base):
    """The projects a private flavor is shared with (os-flavor-access)."""

    __tablename__ = "compute_flavor_project"
    flavor_id: Mapped[int] = mapped_column(sa.ForeignKey("compute_flavor.id", ondelete="CASCADE"),
                                           primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)


class KeyPair(Base):
    __tablename__ = "compute_keypair"
    __table_args__ = (sa.UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(255))
    public_key: Mapped[str] = mapped_column(sa.Text)
    type: Mapped[str] = mapped_column(sa.String(8), default="ssh")  # ssh or x509
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)


class ServerGroup(Base):
    """A server group (Nova's InstanceGroup): one policy, its rules, and its members."""

    __tablename__ = "compute_server_group"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str] = mapped_column(sa.String(255))
    policy: Mapped[str] = mapped_column(sa.String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)


class ServerGroupMember(Base):
    __tablename__ = "compute_server_group_member"
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("compute_server_group.id", ondelete="CASCADE"),
                                          primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(sa.String(36), primary_key=True, index=True)


class Aggregate(Base):
    __tablename__ = "compute_aggregate"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class AggregateHost(Base):
    __tablename__ = "compute_aggregate_host"
    aggregate_id: Mapped[int] = mapped_column(sa.ForeignKey("compute_aggregate.id", ondelete="CASCADE"),
                                              primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)


class AggregateMetadata(Base):
    __tablename__ = "compute_aggregate_metadata"
    aggregate_id: Mapped[int] = mapped_column(sa.ForeignKey("compute_aggregate.id", ondelete="CASCADE"),
                                              primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(255))


class Quota(Base):
    """A project's limit set through os-quota-sets (identity's project limit wins over it)."""

    __tablename__ = "compute_quota"
    project_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(sa.Integer)


class QuotaClass(Base):
    """A quota class's limit set through os-quota-class-sets (``default``: every project's default
    where identity registers none)."""

    __tablename__ = "compute_quota_class"
    class_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(sa.Integer)
