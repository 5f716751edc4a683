"""Stand-in: volumes (VOLUMES replaces this module)."""

from __future__ import annotations

from typing import Any


class Volumes:
    def __init__(self, volume: Any):
        self.volume = volume

