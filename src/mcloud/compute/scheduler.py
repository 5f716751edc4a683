"""Stand-in (CONDUCTOR replaces it): choosing hosts through Placement."""

from __future__ import annotations

from typing import Any


class Scheduler:
    def __init__(self, compute: Any):
        self.compute = compute
