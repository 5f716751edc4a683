"""The block device mappings table as migration 0014 makes it is the one models_volumes describes."""

from __future__ import annotations

from mcloud.compute import models_volumes
from tests.migrations_check import assert_migration_matches


def test_migration_matches_the_block_device_mapping_model(tmp_path):
    assert assert_migration_matches(tmp_path, models_volumes) == {"compute_block_device_mapping"}
