"""The placement service's default policy rules: Placement's secure-RBAC defaults, by name.

Every rule is for project-scoped tokens only (Placement's ``scope_types=['project']``): a
system- or domain-scoped token gets 403 whatever its roles. ``role:service`` is the role other
services' users hold; the reshaper is theirs alone.
"""

from __future__ import annotations

ADMIN_OR_SERVICE = "rule:admin_or_service_api"

RULES: dict[str, str] = {
    "admin_api": "role:admin",
    "service_api": "role:service",
    "admin_or_service_api": "role:admin or role:service",
    "project_reader_api": "role:reader and project_id:%(project_id)s",
    "admin_or_project_reader_or_service_api": "role:admin or rule:project_reader_api or role:service",
    "placement:reshaper:reshape": "rule:service_api",
    "placement:usages": "rule:admin_or_project_reader_or_service_api",
    **{f"placement:{name}": ADMIN_OR_SERVICE for name in (
        "resource_providers:list", "resource_providers:create", "resource_providers:show",
        "resource_providers:update", "resource_providers:delete",
        "resource_providers:inventories:list", "resource_providers:inventories:create",
        "resource_providers:inventories:show", "resource_providers:inventories:update",
        "resource_providers:inventories:delete",
        "resource_providers:aggregates:list", "resource_providers:aggregates:update",
        "resource_providers:usages", "resource_providers:allocations:list",
        "resource_providers:traits:list", "resource_providers:traits:update",
        "resource_providers:traits:delete",
        "resource_classes:list", "resource_classes:create", "resource_classes:show",
        "resource_classes:update", "resource_classes:delete",
        "traits:list", "traits:show", "traits:update", "traits:delete",
        "allocations:list", "allocations:manage", "allocations:update", "allocations:delete",
        "allocation_candidates:list")},
}

SCOPE_TYPES: dict[str, tuple[str, ...]] = {name: ("project",) for name in RULES if name.startswith("placement:")}
