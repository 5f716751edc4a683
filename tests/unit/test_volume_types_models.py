"""The volume types part's tables as migration 0011 makes them are the tables models_types describes."""

from __future__ import annotations

from mcloud.volume import models_types
from tests.migrations_check import assert_downgrade_removes, assert_migration_matches


def test_migration_matches_volume_types_models(tmp_path):
    assert assert_migration_matches(tmp_path, models_types) == {
        "volume_type", "volume_type_extra_spec", "volume_type_project", "volume_default_type", "volume_qos_specs",
        "volume_group_type", "volume_group_type_spec", "volume_group_type_project", "volume_quota",
        "volume_quota_class", "volume_message", "volume_service_state"}


def test_downgrade_removes_volume_types_tables(tmp_path):
    assert_downgrade_removes(tmp_path, models_types, "0010")
