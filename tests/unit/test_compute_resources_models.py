"""The resources part's tables as migration 0008 makes them are the tables its models describe."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mcloud import migrations
from mcloud.compute import models_resources
from mcloud.core.db import Base
from mcloud.models import load_all

MINE = {t.name for t in Base.metadata.sorted_tables if t.name in {
    c.__tablename__ for c in vars(models_resources).values() if isinstance(c, type) and hasattr(c, "__tablename__")}}


def test_migration_matches_resources_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    load_all()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_name": lambda name, kind, parent: kind != "table" or name in MINE, "compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert MINE <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert [d for d in diff if any(t in repr(d) for t in MINE)] == []
    assert len(MINE) == 11


def test_downgrade_removes_resources_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    command.downgrade(migrations.alembic_config(url), "0007")
    engine = sa.create_engine(url)
    try:
        assert not MINE & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
