"""The groups part's tables as migration 0015 makes them are the tables models_groups describes."""

from __future__ import annotations

from mcloud.volume import models_groups
from tests.migrations_check import assert_downgrade_removes, assert_migration_matches


def test_migration_matches_volume_groups_models(tmp_path):
    assert assert_migration_matches(tmp_path, models_groups) == {
        "volume_group", "volume_group_volume_type", "volume_group_snapshot"}


def test_downgrade_removes_volume_groups_tables(tmp_path):
    assert_downgrade_removes(tmp_path, models_groups, "0014")
