"""Request bodies of the Identity v3 API, as Keystone's JSON schemas constrain them.

Unknown fields are refused (400) except where Keystone documents extra attributes that
clients do send (a user's ``email``). Types are strict: ``"enabled": "yes"`` is a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints

Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255, pattern=r"\S")]
ProjectName = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"\S")]
Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]
Description = Annotated[str, StringConstraints(strict=True, max_length=65535)] | None
Tag = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255, pattern=r"^[^,/]*$")]
Password = Annotated[str, StringConstraints(strict=True, max_length=4096)]


class Body(BaseModel):
    """A request body. In the update bodies, a field typed ``X = None`` (not ``X | None``) may be
    left out but not sent as null: Keystone answers 400 for a null name, enabled flag, url..."""

    model_config = ConfigDict(extra="forbid")


class DomainOptions(Body):
    pass


class DomainCreate(Body):
    name: ProjectName
    description: Description = None
    enabled: StrictBool = True
    options: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list, max_length=80)
    explicit_domain_id: Id | None = None


class DomainUpdate(Body):
    name: ProjectName = None  # type: ignore[assignment]
    description: Description = None
    enabled: StrictBool = None  # type: ignore[assignment]
    options: dict[str, Any] = None  # type: ignore[assignment]
    tags: list[Tag] = None  # type: ignore[assignment]


class ProjectOptions(Body):
    immutable: StrictBool | None = None


class ProjectCreate(Body):
    name: ProjectName
    domain_id: Id | None = None
    parent_id: Id | None = None
    description: Description = None
    enabled: StrictBool = True
    is_domain: StrictBool = False
    tags: list[Tag] = Field(default_factory=list, max_length=80)
    options: ProjectOptions = Field(default_factory=ProjectOptions)


class ProjectUpdate(Body):
    name: ProjectName = None  # type: ignore[assignment]
    domain_id: Id = None  # type: ignore[assignment]
    parent_id: Id | None = None
    description: Description = None
    enabled: StrictBool = None  # type: ignore[assignment]
    is_domain: StrictBool = None  # type: ignore[assignment]
    tags: list[Tag] = Field(default=None, max_length=80)  # type: ignore[assignment]
    options: ProjectOptions = None  # type: ignore[assignment]


class Tags(Body):
    tags: list[Tag] = Field(max_length=80)


class UserOptions(Body):
    ignore_change_password_upon_first_use: StrictBool | None = None
    ignore_password_expiry: StrictBool | None = None
    ignore_lockout_failure_attempts: StrictBool | None = None
    lock_password: StrictBool | None = None
    ignore_user_inactivity: StrictBool | None = None
    multi_factor_auth_rules: list[list[StrictStr]] | None = None
    multi_factor_auth_enabled: StrictBool | None = None


class UserCreate(Body):
    name: Name
    domain_id: Id | None = None
    password: Password | None = None
    enabled: StrictBool = True
    default_project_id: Id | None = None
    description: Description = None
    email: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    options: UserOptions = Field(default_factory=UserOptions)
    federated: list[Any] | None = None
    # Tempest and older clients send it; Keystone keeps it as an extra attribute.
    project_id: Id | None = None


class UserUpdate(Body):
    id: Id = None  # type: ignore[assignment]
    name: Name = None  # type: ignore[assignment]
    domain_id: Id = None  # type: ignore[assignment]
    password: Password | None = None
    enabled: StrictBool = None  # type: ignore[assignment]
    default_project_id: Id | None = None
    description: Description = None
    email: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    options: UserOptions = None  # type: ignore[assignment]
    project_id: Id | None = None


class PasswordChange(Body):
    password: Password
    original_password: Password


class GroupCreate(Body):
    name: Name
    domain_id: Id | None = None
    description: Description = None
    # Tempest sends it; Keystone keeps it as an extra attribute.
    project_id: Id | None = None


class GroupUpdate(Body):
    id: Id = None  # type: ignore[assignment]
    name: Name = None  # type: ignore[assignment]
    domain_id: Id = None  # type: ignore[assignment]
    description: Description = None


class RoleOptions(Body):
    immutable: StrictBool | None = None


class RoleCreate(Body):
    name: Name
    domain_id: Id | None = None
    description: Description = None
    options: RoleOptions = Field(default_factory=RoleOptions)


class RoleUpdate(Body):
    name: Name = None  # type: ignore[assignment]
    domain_id: Id | None = None
    description: Description = None
    options: RoleOptions = None  # type: ignore[assignment]


class RegionCreate(Body):
    id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)] | None = None
    description: Description = None
    parent_region_id: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None


class RegionUpdate(Body):
    description: Description = None
    parent_region_id: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None


class ServiceCreate(Body):
    type: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
    name: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    description: Description = None
    enabled: StrictBool = True


class ServiceUpdate(Body):
    type: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)] = None  # type: ignore
    name: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    description: Description = None
    enabled: StrictBool = None  # type: ignore[assignment]


Interface = Literal["public", "internal", "admin"]
Url = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=2048, pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*://")]


class EndpointCreate(Body):
    service_id: Id
    interface: Interface
    url: Url
    region_id: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    region: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    enabled: StrictBool = True


class EndpointUpdate(Body):
    service_id: Id = None  # type: ignore[assignment]
    interface: Interface = None  # type: ignore[assignment]
    url: Url = None  # type: ignore[assignment]
    region_id: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    region: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    enabled: StrictBool = None  # type: ignore[assignment]


class RoleRefBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id | None = None
    name: Name | None = None
    domain_id: Id | None = None


class ApplicationCredentialCreate(Body):
    name: Name
    description: Description = None
    secret: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=4096)] | None = None
    expires_at: StrictStr | None = None
    roles: list[RoleRefBody] = Field(default_factory=list)
    unrestricted: StrictBool = False
    access_rules: list[Any] | None = None


class CredentialCreate(Body):
    blob: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=65535)]
    type: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
    user_id: Id
    project_id: Id | None = None


class CredentialUpdate(Body):
    blob: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=65535)] = None  # type: ignore
    type: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)] = None  # type: ignore
    user_id: Id = None  # type: ignore[assignment]
    project_id: Id | None = None


class TrustCreate(Body):
    trustor_user_id: Id
    trustee_user_id: Id
    impersonation: StrictBool
    project_id: Id | None = None
    roles: list[RoleRefBody] = Field(default_factory=list)
    expires_at: StrictStr | None = None
    remaining_uses: StrictInt | None = None
    allow_redelegation: StrictBool = False
    redelegation_count: StrictInt | None = None
    redelegated_trust_id: Id | None = None


ResourceName = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
LimitValue = Annotated[int, Field(strict=True, ge=-1, le=2147483647)]


class RegisteredLimitCreate(Body):
    service_id: Id
    region_id: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    resource_name: ResourceName
    default_limit: LimitValue
    description: Description = None


class RegisteredLimitUpdate(Body):
    service_id: Id = None  # type: ignore[assignment]
    region_id: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    resource_name: ResourceName = None  # type: ignore[assignment]
    default_limit: LimitValue = None  # type: ignore[assignment]
    description: Description = None


class LimitCreate(Body):
    project_id: Id | None = None
    domain_id: Id | None = None
    service_id: Id
    region_id: Annotated[str, StringConstraints(strict=True, max_length=255)] | None = None
    resource_name: ResourceName
    resource_limit: LimitValue
    description: Description = None


class LimitUpdate(Body):
    resource_limit: LimitValue = None  # type: ignore[assignment]
    description: Description = None


# ---- envelopes: Keystone wraps every body in the resource's name


class DomainCreateRequest(Body):
    domain: DomainCreate


class DomainUpdateRequest(Body):
    domain: DomainUpdate


class ProjectCreateRequest(Body):
    project: ProjectCreate


class ProjectUpdateRequest(Body):
    project: ProjectUpdate


class UserCreateRequest(Body):
    user: UserCreate


class UserUpdateRequest(Body):
    user: UserUpdate


class PasswordChangeRequest(Body):
    user: PasswordChange


class GroupCreateRequest(Body):
    group: GroupCreate


class GroupUpdateRequest(Body):
    group: GroupUpdate


class RoleCreateRequest(Body):
    role: RoleCreate


class RoleUpdateRequest(Body):
    role: RoleUpdate


class RegionCreateRequest(Body):
    region: RegionCreate


class RegionUpdateRequest(Body):
    region: RegionUpdate


class ServiceCreateRequest(Body):
    service: ServiceCreate


class ServiceUpdateRequest(Body):
    service: ServiceUpdate


class EndpointCreateRequest(Body):
    endpoint: EndpointCreate


class EndpointUpdateRequest(Body):
    endpoint: EndpointUpdate


class ApplicationCredentialCreateRequest(Body):
    application_credential: ApplicationCredentialCreate


class CredentialCreateRequest(Body):
    credential: CredentialCreate


class CredentialUpdateRequest(Body):
    credential: CredentialUpdate


class TrustCreateRequest(Body):
    trust: TrustCreate


class RegisteredLimitsCreateRequest(Body):
    registered_limits: list[RegisteredLimitCreate] = Field(min_length=1)


class RegisteredLimitUpdateRequest(Body):
    registered_limit: RegisteredLimitUpdate


class LimitsCreateRequest(Body):
    limits: list[LimitCreate] = Field(min_length=1)


class LimitUpdateRequest(Body):
    limit: LimitUpdate


# ---- authentication: checked loosely here and precisely in service.authenticate, since
# Keystone answers 400 or 401 depending on which part is wrong.


class AuthBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    identity: dict[str, Any]
    scope: dict[str, Any] | Literal["unscoped"] | None = None


class AuthRequest(Body):
    auth: AuthBody
