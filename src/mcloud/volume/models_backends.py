"""Tables of the volume backends (prefix ``volume_``): the pools the scheduler places volumes in
and the capacity each volume holds in its pool.

A pool (Cinder's ``host@backend#pool``) is one row, written when the service starts; its row is
what a claim locks (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite's write transaction is
exclusive anyway), so two creates never both take the last room. A claim is one row per volume
(its pool and size); a volume's claim goes when the volume does. Provisioned capacity is the sum
of a pool's claims.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


def now() -> datetime:
    return datetime.utcnow().replace(microsecond=0)


class VolumePool(Base):
    __tablename__ = "volume_pool"
    # "host@backend#pool"
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    # the [volume.backends.NAME] table
    backend: Mapped[str] = mapped_column(sa.String(255))
    # its volume_backend_name
    backend_name: Mapped[str] = mapped_column(sa.String(255))
    driver: Mapped[str] = mapped_column(sa.String(32))
    # what the backend last reported (GiB)
    total_gb: Mapped[float] = mapped_column(sa.Float, default=0.0)
    free_gb: Mapped[float] = mapped_column(sa.Float, default=0.0)
    # thin provisioning: claims may reach total_gb x this
    max_over_subscription_ratio: Mapped[float] = mapped_column(sa.Float, default=20.0)
    # Cinder's reserved_percentage: the share of total_gb kept free
    reserved_percentage: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class VolumePoolClaim(Base):
    __tablename__ = "volume_pool_claim"
    volume_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "<id>" or "<id>.move"
    pool: Mapped[str] = mapped_column(sa.String(255), sa.ForeignKey("volume_pool.name"), index=True)
    size_gb: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=now)
    updated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
