"""Who is calling: the auth context, and the token validator protocol that identity implements.

Core defines :class:`TokenValidator`; the identity service provides one and ``app.py`` wires
it into the :class:`~mcloud.core.runtime.Runtime`. Handlers get the caller with
``ctx = await authenticate(request)``: the token is validated in-process, once per request,
and the context is kept on the request for the access log.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request

from mcloud.core.errors import Unauthorized

if TYPE_CHECKING:
    from mcloud.core.runtime import Runtime

AUTH_HEADER = "x-auth-token"


@dataclasses.dataclass(frozen=True)
class AuthContext:
    """A validated token's identity, scope and roles."""

    token: str
    user_id: str
    user_name: str
    user_domain_id: str
    user_domain_name: str
    roles: frozenset[str] = frozenset()
    role_ids: frozenset[str] = frozenset()
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None
    system_scope: str | None = None
    is_admin_project: bool = False
    methods: tuple[str, ...] = ()
    audit_ids: tuple[str, ...] = ()
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    application_credential_id: str | None = None
    trust_id: str | None = None

    @property
    def scope_type(self) -> str | None:
        if self.system_scope:
            return "system"
        if self.project_id:
            return "project"
        if self.domain_id:
            return "domain"
        return None

    def credentials(self) -> dict[str, Any]:
        """The credentials a policy check string sees (oslo.policy's ``creds``)."""
        return {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": sorted(self.roles),
            "is_admin_project": self.is_admin_project,
            "token.user.domain.id": self.user_domain_id,
            "token.domain.id": self.domain_id,
            "token.project.id": self.project_id,
            "token.project.domain.id": self.project_domain_id,
            "token.system.all": bool(self.system_scope),
            "trust_id": self.trust_id,
            "application_credential_id": self.application_credential_id,
        }


class TokenValidator(Protocol):
    async def validate(self, token: str) -> AuthContext:
        """The context of a valid token; raises :class:`Unauthorized` otherwise."""
        ...


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def authenticate(request: Request) -> AuthContext:
    """The caller's context from ``X-Auth-Token``; 401 without a valid token."""
    ctx = getattr(request.state, "auth_context", None)
    if ctx is not None:
        return ctx
    token = request.headers.get(AUTH_HEADER)
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    validator = runtime_of(request).token_validator
    if validator is None:
        raise Unauthorized("The request you have made requires authentication.")
    ctx = await validator.validate(token)
    request.state.auth_context = ctx
    return ctx
