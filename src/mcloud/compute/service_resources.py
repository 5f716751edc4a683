"""Stand-in (RESOURCES replaces it): flavors, keypairs, server groups, aggregates, quotas."""

from __future__ import annotations

from typing import Any


class ResourcesService:
    def __init__(self, compute: Any):
        self.compute = compute
