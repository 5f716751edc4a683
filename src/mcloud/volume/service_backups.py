"""Stand-in: backups (BACKUPS replaces this module)."""

from __future__ import annotations

from typing import Any


class Backups:
    def __init__(self, volume: Any):
        self.volume = volume

    def register(self, tasks: Any) -> None:
        pass
