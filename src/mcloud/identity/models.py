"""Identity's tables. Other services never query these: they call identity's service.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base

#: Stands for "no domain" in unique keys, where NULL would not count as a value.
NULL_DOMAIN = "<<null>>"


def new_id() -> str:
    """Keystone's id form: 32 lowercase hex digits."""
    return uuid.uuid4().hex


ID = sa.String(64)
NAME = sa.String(255)
JSON = sa.JSON().with_variant(sa.JSON(), "sqlite")


class Domain(Base):
    __tablename__ = "identity_domain"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Project(Base):
    __tablename__ = "identity_project"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_domain.id"), index=True)
    # None for a top-level project: its parent is its domain.
    parent_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("identity_project.id"), index=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ProjectTag(Base):
    __tablename__ = "identity_project_tag"
    project_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_project.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(NAME, primary_key=True)


class User(Base):
    __tablename__ = "identity_user"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_domain.id"), index=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(128))
    password_created_at: Mapped[datetime | None]
    default_project_id: Mapped[str | None] = mapped_column(ID)
    description: Mapped[str | None] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(NAME)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Keystone's extra attributes that clients send and expect back (e.g. project_id)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime | None]
    last_active_at: Mapped[datetime | None]


class Group(Base):
    __tablename__ = "identity_group"
    __table_args__ = (sa.UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_domain.id"), index=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Membership(Base):
    __tablename__ = "identity_membership"
    user_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_user.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_group.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Role(Base):
    __tablename__ = "identity_role"
    __table_args__ = (sa.UniqueConstraint("name", "domain_id"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, default=NULL_DOMAIN)
    description: Mapped[str | None] = mapped_column(sa.Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ImpliedRole(Base):
    __tablename__ = "identity_implied_role"
    prior_role_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_role.id", ondelete="CASCADE"), primary_key=True
    )
    implied_role_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_role.id", ondelete="CASCADE"), primary_key=True
    )


class Assignment(Base):
    """A role given to a user or group on a project, a domain or the system."""

    __tablename__ = "identity_assignment"
    # UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem
    type: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    actor_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    # a project id, a domain id, or "all" for the system
    target_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    role_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_role.id", ondelete="CASCADE"), primary_key=True)
    inherited: Mapped[bool] = mapped_column(primary_key=True, default=False)


class Region(Base):
    __tablename__ = "identity_region"
    id: Mapped[str] = mapped_column(NAME, primary_key=True, default=new_id)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    parent_region_id: Mapped[str | None] = mapped_column(NAME, sa.ForeignKey("identity_region.id"))


class Service(Base):
    __tablename__ = "identity_service"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(NAME)
    name: Mapped[str | None] = mapped_column(NAME)
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)


class Endpoint(Base):
    __tablename__ = "identity_endpoint"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_service.id"), index=True)
    interface: Mapped[str] = mapped_column(sa.String(8))
    url: Mapped[str] = mapped_column(sa.Text)
    region_id: Mapped[str | None] = mapped_column(NAME, sa.ForeignKey("identity_region.id"))
    enabled: Mapped[bool] = mapped_column(default=True)


class ApplicationCredential(Base):
    __tablename__ = "identity_application_credential"
    __table_args__ = (sa.UniqueConstraint("user_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(NAME)
    user_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_user.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(ID)
    system: Mapped[str | None] = mapped_column(sa.String(16))
    secret_hash: Mapped[str] = mapped_column(sa.String(128))
    description: Mapped[str | None] = mapped_column(sa.Text)
    expires_at: Mapped[datetime | None]
    unrestricted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime | None]


class ApplicationCredentialRole(Base):
    __tablename__ = "identity_application_credential_role"
    application_credential_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_application_credential.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(ID, primary_key=True)


class Credential(Base):
    __tablename__ = "identity_credential"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_user.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(ID)
    type: Mapped[str] = mapped_column(NAME)
    # the blob, encrypted with the credential key repository
    encrypted_blob: Mapped[str] = mapped_column(sa.Text)


class Trust(Base):
    __tablename__ = "identity_trust"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    trustor_user_id: Mapped[str] = mapped_column(ID, index=True)
    trustee_user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID)
    impersonation: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime | None]
    remaining_uses: Mapped[int | None]
    redelegated_trust_id: Mapped[str | None] = mapped_column(ID)
    redelegation_count: Mapped[int | None]
    deleted_at: Mapped[datetime | None]


class TrustRole(Base):
    __tablename__ = "identity_trust_role"
    trust_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_trust.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[str] = mapped_column(ID, primary_key=True)


class RegisteredLimit(Base):
    __tablename__ = "identity_registered_limit"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_service.id"))
    region_id: Mapped[str | None] = mapped_column(NAME)
    resource_name: Mapped[str] = mapped_column(NAME)
    default_limit: Mapped[int]
    description: Mapped[str | None] = mapped_column(sa.Text)


class Limit(Base):
    __tablename__ = "identity_limit"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    project_id: Mapped[str | None] = mapped_column(ID, index=True)
    domain_id: Mapped[str | None] = mapped_column(ID, index=True)
    service_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("identity_service.id"))
    region_id: Mapped[str | None] = mapped_column(NAME)
    resource_name: Mapped[str] = mapped_column(NAME)
    resource_limit: Mapped[int]
    description: Mapped[str | None] = mapped_column(sa.Text)


class RevocationEvent(Base):
    """Tokens matching every non-null field and issued before ``issued_before`` are revoked."""

    __tablename__ = "identity_revocation_event"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(ID)
    project_id: Mapped[str | None] = mapped_column(ID)
    domain_id: Mapped[str | None] = mapped_column(ID)
    role_id: Mapped[str | None] = mapped_column(ID)
    trust_id: Mapped[str | None] = mapped_column(ID)
    application_credential_id: Mapped[str | None] = mapped_column(ID)
    audit_id: Mapped[str | None] = mapped_column(sa.String(32))
    audit_chain_id: Mapped[str | None] = mapped_column(sa.String(32))
    issued_before: Mapped[datetime]
    revoked_at: Mapped[datetime]


# ---- Keystone's smaller APIs: the policy store, OS-ENDPOINT-POLICY, OS-EP-FILTER, domain
# configuration and OAuth1 consumers (identity/service_extensions.py). Rows that name a project,
# endpoint, service, region or domain go with it (ON DELETE CASCADE), as Keystone's delete
# callbacks do.


class Policy(Base):
    """A stored policy blob (Keystone's deprecated /v3/policies): kept and served, never enforced."""

    __tablename__ = "identity_policy"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(NAME)
    blob: Mapped[str] = mapped_column(sa.Text)


class PolicyAssociation(Base):
    """OS-ENDPOINT-POLICY: a policy for an endpoint, a service, or a service in a region."""

    __tablename__ = "identity_policy_association"
    # "endpoint/<id>", "service/<id>" or "service/<id>/region/<id>": one policy per target
    target: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    policy_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_policy.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("identity_endpoint.id", ondelete="CASCADE"))
    service_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("identity_service.id", ondelete="CASCADE"))
    region_id: Mapped[str | None] = mapped_column(NAME, sa.ForeignKey("identity_region.id", ondelete="CASCADE"))


class EndpointGroup(Base):
    """OS-EP-FILTER: the endpoints matching ``filters`` (service_id, interface, region_id)."""

    __tablename__ = "identity_endpoint_group"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(NAME)
    description: Mapped[str | None] = mapped_column(sa.Text)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ProjectEndpointGroup(Base):
    __tablename__ = "identity_project_endpoint_group"
    endpoint_group_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_endpoint_group.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_project.id", ondelete="CASCADE"), primary_key=True, index=True)


class ProjectEndpoint(Base):
    __tablename__ = "identity_project_endpoint"
    endpoint_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_endpoint.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_project.id", ondelete="CASCADE"), primary_key=True, index=True)


class DomainConfigOption(Base):
    """One option of a domain's configuration; sensitive values are encrypted like credential blobs."""

    __tablename__ = "identity_domain_config"
    domain_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("identity_domain.id", ondelete="CASCADE"), primary_key=True)
    config_group: Mapped[str] = mapped_column(NAME, primary_key=True)
    config_option: Mapped[str] = mapped_column(NAME, primary_key=True)
    # the JSON value; for a sensitive option, a string: the encrypted JSON of the value
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    sensitive: Mapped[bool] = mapped_column(default=False)


class OAuth1Consumer(Base):
    __tablename__ = "identity_oauth1_consumer"
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    description: Mapped[str | None] = mapped_column(sa.Text)
    # the secret, encrypted with the credential key repository (OAuth1 signatures need it back)
    encrypted_secret: Mapped[str] = mapped_column(sa.Text)
