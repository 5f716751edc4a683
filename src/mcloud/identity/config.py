"""Identity's configuration section, ``[identity]`` in mcloud.toml."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class IdentityConfig:
    # Token lifetime in seconds (Keystone's [token] expiration).
    token_expiration: int = 3600
    # bcrypt cost for passwords and application credential secrets (Keystone's default is 12).
    password_hash_rounds: int = 12
    # Fernet keys kept: one staged, one primary, the rest secondary.
    max_active_keys: int = 3
    allow_rescope_scoped_token: bool = True
    max_redelegation_count: int = 3
    prohibited_implied_roles: list[str] = dataclasses.field(default_factory=lambda: ["admin"])
    # The project whose admins are cloud admins (Keystone's [resource] admin_project_name);
    # empty means every token is an admin-project token, as in Keystone.
    admin_project_name: str = ""
    admin_project_domain_id: str = "default"
    # Largest number of items a list returns (Keystone's list_limit); 0 means no limit.
    list_limit: int = 0
