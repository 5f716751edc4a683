"""The network service's default policy rules, under Neutron's names."""

from __future__ import annotations

RULES: dict[str, str] = {}
