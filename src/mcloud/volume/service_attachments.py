"""Stand-in: attachments (VOLUMES replaces this module)."""

from __future__ import annotations

from typing import Any


class Attachments:
    def __init__(self, volume: Any):
        self.volume = volume

