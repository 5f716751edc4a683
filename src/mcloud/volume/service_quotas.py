"""Stand-in: quotas and limits over identity's unified limits (TYPES replaces this module)."""

from __future__ import annotations

from typing import Any


class Quotas:
    def __init__(self, volume: Any):
        self.volume = volume

