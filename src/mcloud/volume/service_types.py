"""Stand-in: volume types, extra specs, access, QoS (TYPES replaces this module)."""

from __future__ import annotations

from typing import Any


class Types:
    def __init__(self, volume: Any):
        self.volume = volume

