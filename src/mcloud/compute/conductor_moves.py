"""Actions that move or remake an instance: rebuild, createImage, resize/confirm/revert,
shelve/unshelve, migrate, live migration, evacuate (filled in step by step)."""

from __future__ import annotations

from typing import Any

MOVES: dict[str, Any] = {}
