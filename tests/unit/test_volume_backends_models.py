"""The backends part's tables as migration 0012 makes them are the tables models_backends describes."""

from __future__ import annotations

from mcloud.volume import models_backends
from tests.migrations_check import assert_downgrade_removes, assert_migration_matches


def test_migration_matches_volume_backends_models(tmp_path):
    assert assert_migration_matches(tmp_path, models_backends) == {"volume_pool", "volume_pool_claim"}


def test_downgrade_removes_volume_backends_tables(tmp_path):
    assert_downgrade_removes(tmp_path, models_backends, "0011")
