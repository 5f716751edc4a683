"""Placement's configuration section, ``[placement]`` in mcloud.toml."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class PlacementConfig:
    # Below microversion 1.8 a PUT /allocations names no project or user: the consumer is
    # recorded as belonging to these (Placement's [placement] incomplete_consumer_* options).
    incomplete_consumer_project_id: str = "00000000-0000-0000-0000-000000000000"
    incomplete_consumer_user_id: str = "00000000-0000-0000-0000-000000000000"
    # How often an allocation write is retried when another writer changed one of its
    # providers in between (Placement's allocation_conflict_retry_count).
    allocation_conflict_retry_count: int = 10
    # At most this many allocation candidates are computed per request; -1 is no limit
    # (Placement's max_allocation_candidates).
    max_allocation_candidates: int = -1
