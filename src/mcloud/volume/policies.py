"""Cinder's default policy rules (VOLUMES merges every part's RULES here)."""

RULES: dict[str, str] = {}
