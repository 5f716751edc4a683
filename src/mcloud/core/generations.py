"""Generation counters: a cheap, shared "has anything changed?" for in-process caches.

A service bumps its counter inside every write transaction; a reader compares the counter
with the one its cache was built at and rebuilds when they differ. The counter lives in the
database, so this stays correct when several processes share one database.

Reading the counter must cost next to nothing, because token validation asks on every
request. :class:`Watcher` avoids a database round trip while nothing changed:

- SQLite: ``PRAGMA data_version`` on a dedicated connection changes whenever another
  connection (of this or any process) commits; only then is the counter re-read. One answer
  serves until the event loop next runs other work: the checks one request makes in a row
  (its own token, then the token it validates) cost one pragma.
- PostgreSQL: every bump also sends ``NOTIFY mcloud_generation``; a listening connection
  marks the counters stale when one arrives (and a write in this process marks them stale at
  once). Without a working listener it re-reads on every call.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base, Database

log = logging.getLogger("mcloud.generations")
CHANNEL = "mcloud_generation"


class Generation(Base):
    __tablename__ = "core_generation"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


_table = Generation.__table__


async def bump(session: AsyncSession, name: str) -> int:
    """Count a change to ``name``; call inside the write transaction that makes the change.

    Returns the new value: it orders the writers of ``name``, since each holds the counter's row
    until it commits."""
    value = (await session.execute(
        sa.update(_table).where(_table.c.name == name).values(value=_table.c.value + 1).returning(_table.c.value)
    )).scalar()
    if value is None:
        value = 1
        await session.execute(sa.insert(_table).values(name=name, value=1))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(sa.select(sa.func.pg_notify(CHANNEL, name)))
    return value


async def read(session: AsyncSession, name: str) -> int:
    value = (await session.execute(sa.select(_table.c.value).where(_table.c.name == name))).scalar()
    return value or 0


class Watcher:
    """The current value of generation counters, re-read only when the database changed."""

    def __init__(self, db: Database):
        self.db = db
        self._values: dict[str, int] = {}
        self._stale = True
        self._sqlite: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._checked = False  # data_version was read in the loop's current run of callbacks
        self._listener: Any = None
        self._listening = False
        if db.is_sqlite:
            path = sa.engine.make_url(db.url).database
            if path and path != ":memory:":
                self._sqlite = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                self._sqlite.execute("PRAGMA busy_timeout=30000")

    def changed(self) -> None:
        """This process committed a change: forget the cached values."""
        self._stale = True

    async def _listen(self) -> None:
        import asyncpg

        url = sa.engine.make_url(self.db.url)
        try:
            self._listener = await asyncpg.connect(
                user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                database=url.database)
            await self._listener.add_listener(CHANNEL, lambda *_: self.changed())
            self._listener.add_termination_listener(lambda *_: setattr(self, "_listening", False))
            self._listening = True
        except (OSError, asyncpg.PostgresError) as exc:  # fall back to reading every time
            log.warning("cannot LISTEN for cache invalidation (%s): reading generations on every check", exc)
            self._listening = False

    async def current(self, name: str) -> int:
        if self._sqlite is not None:
            version = self._data_version
            if not self._checked:
                version = self._sqlite.execute("PRAGMA data_version").fetchone()[0]
                self._checked = True
                asyncio.get_running_loop().call_soon(self._recheck)
            if version != self._data_version or self._stale or name not in self._values:
                self._stale = False
                self._data_version = version
                self._values = dict(self._sqlite.execute("SELECT name, value FROM core_generation").fetchall())
            return self._values.get(name, 0)
        if self.db.backend == "postgresql" and self._listener is None:
            await self._listen()
        if self._stale or not self._listening or name not in self._values:
            self._stale = False
            async with self.db.read() as session:
                rows = await session.execute(sa.select(_table.c.name, _table.c.value))
                self._values = {n: v for n, v in rows}
        return self._values.get(name, 0)

    def _recheck(self) -> None:
        self._checked = False

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._listener is not None:
            try:
                await self._listener.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._listener = None
