"""Placement's tables as its migration makes them are the tables its models describe."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mcloud import migrations
from mcloud.core.db import Base
from mcloud.models import load_all


def test_migration_matches_placement_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    load_all()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_name": lambda name, kind, parent: kind != "table" or name.startswith("placement_"),
                "compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    placement = [d for d in diff if "placement_" in repr(d)]
    assert placement == []
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert {"placement_resource_provider", "placement_inventory", "placement_allocation",
            "placement_consumer", "placement_trait", "placement_resource_class"} <= tables


def test_downgrade_removes_placement_tables(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    command.downgrade(migrations.alembic_config(url), "0002")
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert not [t for t in tables if t.startswith("placement_")]
