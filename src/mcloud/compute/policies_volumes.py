"""Who may attach volumes to servers (Nova's os-volumes-attachments rules, secure-RBAC defaults):
project readers list and show, members attach, update and detach, admins swap; and the os-volumes /
os-snapshots proxies' rules (Nova's policies/volumes.py: readers list and show, members create and delete)."""

from __future__ import annotations

P = "os_compute_api:os-volumes-attachments:"
RULES: dict[str, str] = {
    P + "index": "rule:project_reader_or_admin", P + "show": "rule:project_reader_or_admin",
    P + "create": "rule:project_member_or_admin", P + "update": "rule:project_member_or_admin",
    P + "delete": "rule:project_member_or_admin", P + "swap": "rule:context_is_admin",
}
V = "os_compute_api:os-volumes:"
RULES.update({V + name: "rule:project_reader_or_admin" for name in (
    "list", "detail", "show", "snapshots:list", "snapshots:detail", "snapshots:show")})
RULES.update({V + name: "rule:project_member_or_admin" for name in (
    "create", "delete", "snapshots:create", "snapshots:delete")})
SCOPE_TYPES: dict[str, tuple[str, ...]] = {rule: ("project",) for rule in RULES}
