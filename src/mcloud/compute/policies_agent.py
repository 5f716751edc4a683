"""Who may use the agent routes (``/compute/agent/v1``, not part of Nova's API): compute hosts,
whose service account has the ``service`` role, and admins."""

from __future__ import annotations

RULES: dict[str, str] = {"mcloud:compute-agent": "rule:service_or_admin"}
SCOPE_TYPES: dict[str, tuple[str, ...]] = {"mcloud:compute-agent": ("project",)}
