"""The backups part's tables as migration 0013 makes them are the tables models_backups describes."""

from __future__ import annotations

from mcloud.volume import models_backups
from tests.migrations_check import assert_downgrade_removes, assert_migration_matches


def test_migration_matches_volume_backups_models(tmp_path):
    assert assert_migration_matches(tmp_path, models_backups) == {"volume_backup", "volume_transfer"}


def test_downgrade_removes_volume_backups_tables(tmp_path):
    assert_downgrade_removes(tmp_path, models_backups, "0012")
