"""Stand-in: user messages (TYPES replaces this module)."""

from __future__ import annotations

from typing import Any


class Messages:
    def __init__(self, volume: Any):
        self.volume = volume

