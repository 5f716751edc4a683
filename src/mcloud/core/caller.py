"""Who asks a service that takes microversions and policy per call (compute, volume): from a
token (the service's ``api.caller_of``) or internal work (``Caller.internal()``: admin, no policy).

A service subclasses :class:`Caller` to add what only it needs (compute: how the caller looks to
the network and image services) and builds it with :func:`caller_from_context`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from mcloud.core.errors import Forbidden
from mcloud.core.microversions import Version
from mcloud.core.policy import Enforcer

C = TypeVar("C", bound="Caller")


@dataclasses.dataclass(frozen=True)
class Caller:
    """``version`` is the request's negotiated microversion (the service's minimum for internal
    calls); ``policy`` the service's namespace of the enforcer (None: internal, everything
    allowed); ``root_policy`` the whole enforcer, for checks in other services' namespaces."""

    user_id: str | None
    project_id: str | None
    roles: frozenset[str] = frozenset()
    is_admin: bool = False
    request_id: str = ""
    token: str | None = None
    version: Version = Version(1, 0)
    policy: Enforcer | None = None
    creds: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    root_policy: Enforcer | None = None

    @classmethod
    def internal(cls: type[C], project_id: str | None = None, user_id: str | None = None,
                 request_id: str = "") -> C:
        return cls(user_id=user_id, project_id=project_id, roles=frozenset({"admin"}), is_admin=True,
                   request_id=request_id)

    def at(self, major: int, minor: int) -> bool:
        """Whether the request's microversion is at least ``major.minor``."""
        return (self.version.major, self.version.minor) >= (major, minor)

    def can(self, rule: str, target: Mapping[str, Any] | None = None) -> bool:
        if self.policy is None:
            return True
        if target is None:
            target = {"project_id": self.project_id, "user_id": self.user_id}
        try:
            self.policy.authorize(rule, self.creds, target)
        except Forbidden:
            return False
        return True

    def authorize(self, rule: str, target: Mapping[str, Any] | None = None) -> None:
        """Nova's and Cinder's 403: "Policy doesn't allow RULE to be performed." unless the caller passes."""
        if not self.can(rule, target):
            raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def caller_from_context(cls: type[C], ctx: Any, policy: Enforcer, root_policy: Enforcer, version: Version,
                        request_id: str) -> C:
    """A caller of class ``cls`` from core's ``AuthContext`` (the token's user, scope and roles)."""
    creds = ctx.credentials()
    is_admin = policy.check("context_is_admin", creds, {})
    creds["is_admin"] = is_admin
    return cls(user_id=ctx.user_id, project_id=ctx.project_id, roles=frozenset(ctx.roles), is_admin=is_admin,
               request_id=request_id, token=ctx.token, version=version, policy=policy, creds=creds,
               root_policy=root_policy)
