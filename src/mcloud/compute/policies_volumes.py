"""Who may attach volumes to servers (Nova's os-volumes-attachments rules, secure-RBAC defaults):
project readers list and show, members attach, update and detach, admins swap."""

from __future__ import annotations

P = "os_compute_api:os-volumes-attachments:"
RULES: dict[str, str] = {
    P + "index": "rule:project_reader_or_admin", P + "show": "rule:project_reader_or_admin",
    P + "create": "rule:project_member_or_admin", P + "update": "rule:project_member_or_admin",
    P + "delete": "rule:project_member_or_admin", P + "swap": "rule:context_is_admin",
}
SCOPE_TYPES: dict[str, tuple[str, ...]] = {rule: ("project",) for rule in RULES}
