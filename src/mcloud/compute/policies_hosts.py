"""Nova's policy defaults for os-services and os-hypervisors (nova/policies/services.py,
hypervisors.py): admin only."""

from __future__ import annotations

ADMIN = "rule:context_is_admin"

RULES: dict[str, str] = {
    **{f"os_compute_api:os-services:{a}": ADMIN for a in ("list", "update", "delete")},
    **{f"os_compute_api:os-hypervisors:{a}": ADMIN
       for a in ("list", "list-detail", "show", "statistics", "uptime", "search", "servers")},
}
SCOPE_TYPES: dict[str, tuple[str, ...]] = {rule: ("project",) for rule in RULES}
