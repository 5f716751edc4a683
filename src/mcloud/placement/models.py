"""Tables owned by the placement service (prefix `placement_`).

Providers, classes, traits and aggregates have integer ids inside the database and UUIDs or
names outside it, as in OpenStack Placement. An inventory row also carries ``used``, the sum of
its allocations, kept by every write that changes allocations in the same transaction, and
``usage_version``, the ``placement_usage`` generation of that write, so that the in-process
candidate index (service.py) can read only the rows that changed since it last looked.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


def _now() -> datetime:
    return datetime.utcnow().replace(microsecond=0)


class ResourceClass(Base):
    __tablename__ = "placement_resource_class"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)


class Trait(Base):
    __tablename__ = "placement_trait"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)


class ResourceProvider(Base):
    __tablename__ = "placement_resource_provider"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    generation: Mapped[int] = mapped_column(sa.Integer, default=0)
    parent_provider_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("placement_resource_provider.id"), nullable=True, index=True)
    # the tree's root; equal to id for a root (set right after the insert)
    root_provider_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)


class Inventory(Base):
    __tablename__ = "placement_inventory"
    __table_args__ = (sa.UniqueConstraint("resource_provider_id", "resource_class_id"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(
        sa.ForeignKey("placement_resource_provider.id", ondelete="CASCADE"))
    resource_class_id: Mapped[int] = mapped_column(sa.ForeignKey("placement_resource_class.id"), index=True)
    total: Mapped[int] = mapped_column(sa.BigInteger)
    reserved: Mapped[int] = mapped_column(sa.BigInteger)
    min_unit: Mapped[int] = mapped_column(sa.BigInteger)
    max_unit: Mapped[int] = mapped_column(sa.BigInteger)
    step_size: Mapped[int] = mapped_column(sa.BigInteger)
    allocation_ratio: Mapped[float] = mapped_column(sa.Float)
    used: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    usage_version: Mapped[int] = mapped_column(sa.BigInteger, default=0, index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)


class Aggregate(Base):
    __tablename__ = "placement_aggregate"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)


class ProviderAggregate(Base):
    __tablename__ = "placement_provider_aggregate"
    resource_provider_id: Mapped[int] = mapped_column(
        sa.ForeignKey("placement_resource_provider.id", ondelete="CASCADE"), primary_key=True)
    aggregate_id: Mapped[int] = mapped_column(
        sa.ForeignKey("placement_aggregate.id", ondelete="CASCADE"), primary_key=True, index=True)


class ProviderTrait(Base):
    __tablename__ = "placement_provider_trait"
    resource_provider_id: Mapped[int] = mapped_column(
        sa.ForeignKey("placement_resource_provider.id", ondelete="CASCADE"), primary_key=True)
    trait_id: Mapped[int] = mapped_column(sa.ForeignKey("placement_trait.id"), primary_key=True, index=True)


class ConsumerType(Base):
    __tablename__ = "placement_consumer_type"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)


class Consumer(Base):
    __tablename__ = "placement_consumer"
    uuid: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    user_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    consumer_type_id: Mapped[int | None] = mapped_column(sa.ForeignKey("placement_consumer_type.id"), nullable=True)
    generation: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)


class Allocation(Base):
    __tablename__ = "placement_allocation"
    __table_args__ = (sa.Index("ix_placement_allocation_rp_rc", "resource_provider_id", "resource_class_id"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(sa.ForeignKey("placement_resource_provider.id"))
    consumer_id: Mapped[str] = mapped_column(sa.ForeignKey("placement_consumer.uuid", ondelete="CASCADE"), index=True)
    resource_class_id: Mapped[int] = mapped_column(sa.ForeignKey("placement_resource_class.id"))
    used: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=_now)
