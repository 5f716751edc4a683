"""Stand-in: volume transfers (BACKUPS replaces this module)."""

from __future__ import annotations

from typing import Any


class Transfers:
    def __init__(self, volume: Any):
        self.volume = volume

