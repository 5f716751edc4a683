"""Generation counters: a cheap, shared "has anything changed?" for in-process caches.

A service bumps its counter inside every write transaction; a reader compares the counter
with the one its cache was built at and rebuilds when they differ. Because the counter lives
in the database, this stays correct when several processes share one PostgreSQL database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base


class Generation(Base):
    __tablename__ = "core_generation"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


_table = Generation.__table__


async def bump(session: AsyncSession, name: str) -> None:
    result = await session.execute(
        sa.update(_table).where(_table.c.name == name).values(value=_table.c.value + 1)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(sa.insert(_table).values(name=name, value=1))


async def current(session: AsyncSession, name: str) -> int:
    value = (await session.execute(sa.select(_table.c.value).where(_table.c.name == name))).scalar()
    return value or 0
