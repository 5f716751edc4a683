"""The placement service's default policy rules, under OpenStack's names."""

from __future__ import annotations

RULES: dict[str, str] = {}
