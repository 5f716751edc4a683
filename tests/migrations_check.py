"""Checks that a part's migration makes exactly the tables its model module describes (for each
part's ``tests/unit/test_*_models.py``)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mcloud import migrations
from mcloud.core.db import Base
from mcloud.models import load_all


def tables_of(module: ModuleType) -> set[str]:
    """The names of the tables ``module`` declares."""
    load_all()
    names = {c.__tablename__ for c in vars(module).values() if isinstance(c, type) and hasattr(c, "__tablename__")}
    return {t.name for t in Base.metadata.sorted_tables if t.name in names}


def assert_migration_matches(tmp_path: Path, module: ModuleType) -> set[str]:
    """Migrate a new SQLite database to head; the tables of ``module`` exist and autogenerate finds
    no difference between them and the models. Returns the table names."""
    mine = tables_of(module)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_name": lambda name, kind, parent: kind != "table" or name in mine, "compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert mine <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert [d for d in diff if _table_of(d) in mine] == []
    return mine


def _table_of(diff: Any) -> str | None:
    """The table an autogenerate difference is about."""
    if isinstance(diff, list):  # modify_* entries come as lists of tuples
        return _table_of(diff[0])
    kind, obj = diff[0], diff[1]
    if kind in ("add_table", "remove_table"):
        return obj.name
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return obj.table.name
    if kind in ("add_fk", "remove_fk"):
        return obj.parent.name
    if kind in ("add_column", "remove_column"):
        return diff[2]
    if kind.startswith("modify_"):
        return diff[2]
    return None


def assert_downgrade_removes(tmp_path: Path, module: ModuleType, revision: str) -> None:
    """Down to ``revision`` (the one before the part's) removes every table of ``module``."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    command.downgrade(migrations.alembic_config(url), revision)
    engine = sa.create_engine(url)
    try:
        assert not tables_of(module) & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
