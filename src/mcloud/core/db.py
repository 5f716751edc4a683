"""Database: SQLAlchemy 2 (async) on SQLite (WAL, the embedded default) or PostgreSQL.

Services declare their tables on :class:`Base` in their own ``models.py``; the one Alembic
history in ``mcloud/migrations`` creates them on both engines.

Sessions come from :meth:`Database.read` and :meth:`Database.write`. A write session on SQLite
begins with ``BEGIN IMMEDIATE`` so two writers queue on the database lock instead of failing
when one upgrades a read snapshot that the other has changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def async_url(url: str) -> str:
    """The async driver's URL for a plain ``sqlite:///`` or ``postgresql://`` URL."""
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("mcloud_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Database:
    """One engine and its session factories."""

    def __init__(self, url: str, pool_size: int = 5, echo: bool = False):
        self.url = url
        self.backend = sa.engine.make_url(url).get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.backend == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **kwargs)
        if self.backend == "sqlite":
            _configure_sqlite(self.engine)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(mcloud_write=True), expire_on_commit=False
        )
        # SQLite has one writer at a time. Writers of this process queue here, first come first
        # served, rather than in SQLite's busy handler, which sleeps and retries with growing
        # pauses and so lets an unlucky writer wait a second or more under load. The busy handler
        # remains for writers in other processes.
        self._sqlite_writers = asyncio.Lock() if self.backend == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; rolled back at the end."""
        async with self._reader() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session for one write transaction: committed on success, rolled back on error."""
        if self._sqlite_writers is None:
            async with self._writer() as session, session.begin():
                yield session
            return
        async with self._sqlite_writers, self._writer() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
