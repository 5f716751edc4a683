"""Stand-in (SERVERS replaces it): Nova's policy defaults by name."""

from __future__ import annotations

RULES: dict[str, str] = {}
