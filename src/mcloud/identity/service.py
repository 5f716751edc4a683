"""Identity's business logic: the internal API other services call, and what api.py renders.

Every write runs in one transaction that also bumps the ``identity`` generation, so caches
of token contexts (here and in other processes sharing the database) rebuild after it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import sqlalchemy as sa
from cryptography.fernet import InvalidToken
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core import generations
from mcloud.core.auth import AuthContext
from mcloud.core.db import Database
from mcloud.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from mcloud.identity import models as m
from mcloud.identity.config import IdentityConfig
from mcloud.identity.tokens import KeyRepository, TokenCodec, TokenPayload, new_audit_id

log = logging.getLogger("mcloud.identity")

DEFAULT_DOMAIN_ID = "default"
GENERATION = "identity"
SYSTEM_ALL = "all"
MAX_PROJECT_DEPTH = 5
AUTH_FAILED = "The request you have made requires authentication."
INTERFACES = ("public", "internal", "admin")

# A valid bcrypt hash of a random secret: checked against when a user does not exist, so an
# unknown user costs the same time as a wrong password.
_DUMMY_HASH: bytes | None = None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not an ISO 8601 time.") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _auth_ref(value: Any, field: str, keys: tuple[str, ...] = ("id", "name")) -> dict[str, Any]:
    """A reference in an auth body (a user, a domain, a scope): an object whose ``keys`` are strings.
    Anything else is Keystone's 400, never a crash further down."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field '{field}': it must be an object.")
    for key in keys:
        if value.get(key) is not None and not isinstance(value[key], str):
            raise BadRequest(f"Invalid input for field '{field}/{key}': it must be a string.")
    return value


@dataclasses.dataclass(frozen=True)
class RoleRef:
    id: str
    name: str
    domain_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ScopeInfo:
    """What a token's scope resolves to now: names, roles, and flags. Cached per scope key."""

    user: m.User
    user_domain: m.Domain
    roles: tuple[RoleRef, ...]
    project: m.Project | None = None
    project_domain: m.Domain | None = None
    domain: m.Domain | None = None
    system: str | None = None
    trust: m.Trust | None = None
    application_credential: m.ApplicationCredential | None = None
    is_admin_project: bool = False


@dataclasses.dataclass(frozen=True)
class Token:
    """An issued or validated token: the payload and what its scope resolves to."""

    value: str
    payload: TokenPayload
    scope: ScopeInfo
    # its validation bodies, by "with catalog": a cached token lives as long as its generation
    rendered: dict[bool, bytes] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def _context(self) -> AuthContext:
        return self._build_context()

    def context(self) -> AuthContext:
        """The caller's context; built once per token (tokens are cached per generation)."""
        return self._context

    def _build_context(self) -> AuthContext:
        s, p = self.scope, self.payload
        return AuthContext(
            token=self.value,
            user_id=s.user.id,
            user_name=s.user.name,
            user_domain_id=s.user_domain.id,
            user_domain_name=s.user_domain.name,
            roles=frozenset(r.name.lower() for r in s.roles),
            role_ids=frozenset(r.id for r in s.roles),
            project_id=s.project.id if s.project else None,
            project_name=s.project.name if s.project else None,
            project_domain_id=s.project_domain.id if s.project_domain else None,
            project_domain_name=s.project_domain.name if s.project_domain else None,
            domain_id=s.domain.id if s.domain else None,
            domain_name=s.domain.name if s.domain else None,
            system_scope=s.system,
            is_admin_project=s.is_admin_project,
            methods=p.methods,
            audit_ids=p.audit_ids,
            issued_at=p.issued_at,
            expires_at=p.expires_at,
            application_credential_id=p.application_credential_id,
            trust_id=p.trust_id,
        )


class _Cache:
    """What validation needs, valid for one identity generation: revocation events, scope
    resolutions, validated tokens (with their rendered bodies) and the catalog."""

    MAX_TOKENS = 50_000

    def __init__(self, generation: int, events: list[m.RevocationEvent]):
        self.generation = generation
        self.events = events
        self.scopes: dict[tuple[str | None, ...], ScopeInfo] = {}
        self.tokens: dict[str, Token] = {}
        self.catalog: list[dict[str, Any]] | None = None

    def remember(self, token: Token) -> None:
        if len(self.tokens) >= self.MAX_TOKENS:
            self.tokens.clear()
        self.tokens[token.value] = token


def _is_revoked(payload: TokenPayload, scope: ScopeInfo, events: Iterable[m.RevocationEvent]) -> bool:
    project_id = scope.project.id if scope.project else None
    domain_id = scope.domain.id if scope.domain else None
    role_ids = {r.id for r in scope.roles}
    for e in events:
        if payload.issued_at > e.issued_before:
            continue
        if e.user_id is not None and e.user_id != payload.user_id and e.user_id != scope.user.id:
            continue
        if e.project_id is not None and e.project_id != project_id:
            continue
        if e.domain_id is not None and e.domain_id not in (domain_id, scope.user_domain.id,
                                                            scope.project_domain.id if scope.project_domain else None):
            continue
        if e.role_id is not None and e.role_id not in role_ids:
            continue
        if e.trust_id is not None and e.trust_id != payload.trust_id:
            continue
        if e.application_credential_id is not None and e.application_credential_id != payload.application_credential_id:
            continue
        if e.audit_id is not None and e.audit_id != payload.audit_ids[0]:
            continue
        if e.audit_chain_id is not None and e.audit_chain_id != payload.audit_ids[-1]:
            continue
        return True
    return False


class IdentityService:
    def __init__(self, db: Database, config: IdentityConfig, data_dir: Path):
        self.db = db
        self.config = config
        self.keys = KeyRepository(data_dir / "fernet-keys", config.max_active_keys)
        self.credential_keys = KeyRepository(data_dir / "credential-keys", config.max_active_keys)
        self.codec = TokenCodec(self.keys)
        self.watcher = generations.Watcher(db)
        self._cache: _Cache | None = None

    # ------------------------------------------------------------------ plumbing

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """One write transaction that also marks identity as changed."""
        try:
            async with self.db.write() as session:
                await generations.bump(session, GENERATION)
                yield session
                await session.flush()
        finally:
            self.watcher.changed()

    async def cache(self) -> _Cache:
        """The validation cache for the current identity generation."""
        gen = await self.watcher.current(GENERATION)
        cache = self._cache
        if cache is not None and cache.generation == gen:
            return cache
        # keep only events that can still match a live token
        horizon = utcnow() - timedelta(seconds=self.config.token_expiration + 60)
        async with self.db.read() as session:
            events = list((await session.execute(
                sa.select(m.RevocationEvent).where(m.RevocationEvent.revoked_at >= horizon))).scalars())
        cache = _Cache(gen, events)
        self._cache = cache
        return cache

    async def close(self) -> None:
        await self.watcher.close()

    # ------------------------------------------------------------------ passwords

    def _hash_sync(self, secret: str) -> str:
        return bcrypt.hashpw(secret.encode()[:72], bcrypt.gensalt(self.config.password_hash_rounds)).decode()

    @staticmethod
    def _check_sync(secret: str, hashed: str | None) -> bool:
        global _DUMMY_HASH
        if hashed is None:
            if _DUMMY_HASH is None:
                _DUMMY_HASH = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(12))
            bcrypt.checkpw(secret.encode()[:72], _DUMMY_HASH)
            return False
        try:
            return bcrypt.checkpw(secret.encode()[:72], hashed.encode())
        except ValueError:
            return False

    async def hash_secret(self, secret: str) -> str:
        return await asyncio.to_thread(self._hash_sync, secret)

    async def check_secret(self, secret: str, hashed: str | None) -> bool:
        return await asyncio.to_thread(self._check_sync, secret, hashed)

    # ------------------------------------------------------------------ lookups

    async def _get(self, session: AsyncSession, model: type, id_: str, what: str) -> Any:
        obj = await session.get(model, id_)
        if obj is None:
            raise NotFound(f"Could not find {what}: {id_}.")
        return obj

    async def get_domain(self, session: AsyncSession, domain_id: str) -> m.Domain:
        return await self._get(session, m.Domain, domain_id, "domain")

    async def get_project(self, session: AsyncSession, project_id: str) -> m.Project:
        return await self._get(session, m.Project, project_id, "project")

    async def get_user(self, session: AsyncSession, user_id: str) -> m.User:
        return await self._get(session, m.User, user_id, "user")

    async def get_group(self, session: AsyncSession, group_id: str) -> m.Group:
        return await self._get(session, m.Group, group_id, "group")

    async def get_role(self, session: AsyncSession, role_id: str) -> m.Role:
        return await self._get(session, m.Role, role_id, "role")

    async def domain_by_name(self, session: AsyncSession, name: str) -> m.Domain:
        obj = (await session.execute(sa.select(m.Domain).where(m.Domain.name == name))).scalar()
        if obj is None:
            raise NotFound(f"Could not find domain: {name}.")
        return obj

    async def project_tags(self, session: AsyncSession, project_ids: Sequence[str]) -> dict[str, list[str]]:
        tags: dict[str, list[str]] = {p: [] for p in project_ids}
        if project_ids:
            rows = await session.execute(
                sa.select(m.ProjectTag.project_id, m.ProjectTag.name)
                .where(m.ProjectTag.project_id.in_(project_ids))
                .order_by(m.ProjectTag.name)
            )
            for pid, name in rows:
                tags[pid].append(name)
        return tags

    # ------------------------------------------------------------------ domains

    async def create_domain(self, session: AsyncSession, *, name: str, description: str | None = None,
                            enabled: bool = True, id: str | None = None, options: dict | None = None) -> m.Domain:
        if (await session.execute(sa.select(m.Domain.id).where(m.Domain.name == name))).first():
            raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry found with name {name}.")
        domain = m.Domain(id=id or m.new_id(), name=name, description=description, enabled=enabled,
                          options=options or {})
        session.add(domain)
        await session.flush()
        return domain

    async def update_domain(self, session: AsyncSession, domain_id: str, changes: dict[str, Any]) -> m.Domain:
        domain = await self.get_domain(session, domain_id)
        if "name" in changes and changes["name"] != domain.name:
            if (await session.execute(sa.select(m.Domain.id).where(m.Domain.name == changes["name"]))).first():
                raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry found with name {changes['name']}.")
        if domain_id == DEFAULT_DOMAIN_ID and changes.get("enabled") is False:
            raise Forbidden("The default domain cannot be disabled.")
        was_enabled = domain.enabled
        for key, value in changes.items():
            if key == "options":
                domain.options = {**(domain.options or {}), **value}
            else:
                setattr(domain, key, value)
        if was_enabled and not domain.enabled:
            await self._revoke(session, domain_id=domain_id)
        await session.flush()
        return domain

    async def delete_domain(self, session: AsyncSession, domain_id: str) -> None:
        domain = await self.get_domain(session, domain_id)
        if domain.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        projects = (await session.execute(
            sa.select(m.Project.id).where(m.Project.domain_id == domain_id))).scalars().all()
        users = (await session.execute(sa.select(m.User.id).where(m.User.domain_id == domain_id))).scalars().all()
        groups = (await session.execute(sa.select(m.Group.id).where(m.Group.domain_id == domain_id))).scalars().all()
        roles = (await session.execute(sa.select(m.Role.id).where(m.Role.domain_id == domain_id))).scalars().all()
        await session.execute(sa.delete(m.Assignment).where(
            m.Assignment.target_id.in_([domain_id, *projects]) | m.Assignment.actor_id.in_([*users, *groups])
            | m.Assignment.role_id.in_(roles)))
        await session.execute(sa.delete(m.Membership).where(
            m.Membership.user_id.in_(users) | m.Membership.group_id.in_(groups)))
        await session.execute(sa.delete(m.ImpliedRole).where(
            m.ImpliedRole.prior_role_id.in_(roles) | m.ImpliedRole.implied_role_id.in_(roles)))
        await session.execute(sa.delete(m.ProjectTag).where(m.ProjectTag.project_id.in_(projects)))
        await session.execute(sa.delete(m.Limit).where(
            m.Limit.project_id.in_(projects) | (m.Limit.domain_id == domain_id)))
        await session.execute(sa.delete(m.ApplicationCredentialRole).where(
            m.ApplicationCredentialRole.application_credential_id.in_(
                sa.select(m.ApplicationCredential.id).where(m.ApplicationCredential.user_id.in_(users)))))
        await session.execute(sa.delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id.in_(users)))
        await session.execute(sa.delete(m.Credential).where(m.Credential.user_id.in_(users)))
        await session.execute(sa.delete(m.Group).where(m.Group.domain_id == domain_id))
        await session.execute(sa.delete(m.User).where(m.User.domain_id == domain_id))
        await session.execute(sa.delete(m.Role).where(m.Role.domain_id == domain_id))
        # children before parents
        while projects:
            leaves = (await session.execute(
                sa.select(m.Project.id).where(m.Project.domain_id == domain_id).where(
                    ~m.Project.id.in_(sa.select(m.Project.parent_id).where(m.Project.parent_id.is_not(None)))
                ))).scalars().all()
            await session.execute(sa.delete(m.Project).where(m.Project.id.in_(leaves)))
            projects = [p for p in projects if p not in leaves]
        await session.delete(domain)
        await self._revoke(session, domain_id=domain_id)

    # ------------------------------------------------------------------ projects

    async def ancestors(self, session: AsyncSession, project: m.Project) -> list[m.Project]:
        """Parents of ``project``, nearest first."""
        result = []
        current = project
        while current.parent_id:
            current = await self.get_project(session, current.parent_id)
            result.append(current)
        return result

    async def descendants(self, session: AsyncSession, project_id: str) -> list[m.Project]:
        result: list[m.Project] = []
        frontier = [project_id]
        while frontier:
            children = (await session.execute(
                sa.select(m.Project).where(m.Project.parent_id.in_(frontier)))).scalars().all()
            result.extend(children)
            frontier = [c.id for c in children]
        return result

    async def create_project(self, session: AsyncSession, *, name: str, domain_id: str | None = None,
                             parent_id: str | None = None, description: str | None = None, enabled: bool = True,
                             tags: Sequence[str] = (), options: dict | None = None, id: str | None = None) -> m.Project:
        parent: m.Project | None = None
        if parent_id:
            parent = await session.get(m.Project, parent_id)
            if parent is None:
                # a top-level project names its domain as parent
                domain = await session.get(m.Domain, parent_id)
                if domain is None:
                    raise NotFound(f"Could not find project: {parent_id}.")
                if domain_id and domain_id != domain.id:
                    raise BadRequest("Cannot create project: the parent is in another domain.")
                domain_id = domain.id
            else:
                if domain_id and domain_id != parent.domain_id:
                    raise BadRequest("Cannot create project: the parent is in another domain.")
                domain_id = parent.domain_id
                depth = len(await self.ancestors(session, parent)) + 2
                if depth > MAX_PROJECT_DEPTH:
                    raise Forbidden(f"Max hierarchy depth reached for {parent_id} branch.")
                if not parent.enabled and enabled:
                    raise Forbidden("Cannot create an enabled project under a disabled parent.")
        domain_id = domain_id or DEFAULT_DOMAIN_ID
        await self.get_domain(session, domain_id)
        if (await session.execute(sa.select(m.Project.id).where(
                m.Project.domain_id == domain_id, m.Project.name == name))).first():
            raise Conflict(f"Conflict occurred attempting to store project - it is not permitted to have two "
                           f"projects with the same name in the same domain : {name}.")
        project = m.Project(id=id or m.new_id(), name=name, domain_id=domain_id,
                            parent_id=parent.id if parent else None, description=description,
                            enabled=enabled, options=options or {})
        session.add(project)
        await session.flush()
        await self._set_tags(session, project.id, tags)
        return project

    async def _set_tags(self, session: AsyncSession, project_id: str, tags: Sequence[str]) -> None:
        await session.execute(sa.delete(m.ProjectTag).where(m.ProjectTag.project_id == project_id))
        for tag in dict.fromkeys(tags):
            session.add(m.ProjectTag(project_id=project_id, name=tag))
        await session.flush()

    async def set_tags(self, session: AsyncSession, project_id: str, tags: Sequence[str]) -> list[str]:
        await self.get_project(session, project_id)
        if len(set(tags)) > 80:
            raise BadRequest("A project may have at most 80 tags.")
        await self._set_tags(session, project_id, tags)
        return list(dict.fromkeys(tags))

    async def add_tag(self, session: AsyncSession, project_id: str, tag: str) -> None:
        await self.get_project(session, project_id)
        existing = (await self.project_tags(session, [project_id]))[project_id]
        if tag in existing:
            return
        if len(existing) >= 80:
            raise BadRequest("A project may have at most 80 tags.")
        session.add(m.ProjectTag(project_id=project_id, name=tag))
        await session.flush()

    async def delete_tag(self, session: AsyncSession, project_id: str, tag: str) -> None:
        await self.get_project(session, project_id)
        result = await session.execute(sa.delete(m.ProjectTag).where(
            m.ProjectTag.project_id == project_id, m.ProjectTag.name == tag))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"Tag {tag} was not found on project {project_id}.")

    async def update_project(self, session: AsyncSession, project_id: str, changes: dict[str, Any]) -> m.Project:
        project = await self.get_project(session, project_id)
        if "domain_id" in changes and changes["domain_id"] != project.domain_id:
            raise BadRequest("Update of `domain_id` is not allowed.")
        if "parent_id" in changes and changes["parent_id"] != project.parent_id:
            raise Forbidden("Update of `parent_id` is not allowed.")
        changes = {k: v for k, v in changes.items() if k not in ("domain_id", "parent_id")}
        if "name" in changes and changes["name"] != project.name:
            if (await session.execute(sa.select(m.Project.id).where(
                    m.Project.domain_id == project.domain_id, m.Project.name == changes["name"]))).first():
                raise Conflict(f"Conflict occurred attempting to store project - it is not permitted to have two "
                               f"projects with the same name in the same domain : {changes['name']}.")
        if changes.get("enabled") is False and project.enabled:
            if any(c.enabled for c in await self.descendants(session, project_id)):
                raise Forbidden(f"Cannot disable project {project_id} since its subtree contains enabled projects.")
            await self._revoke(session, project_id=project_id)
        if changes.get("enabled") is True and not project.enabled and project.parent_id:
            parent = await self.get_project(session, project.parent_id)
            if not parent.enabled:
                raise Forbidden(f"Cannot enable project {project_id} since it has disabled parents.")
        if "tags" in changes:
            await self._set_tags(session, project_id, changes.pop("tags") or [])
        for key, value in changes.items():
            if key == "options":
                project.options = {**(project.options or {}), **value}
            else:
                setattr(project, key, value)
        await session.flush()
        return project

    async def delete_project(self, session: AsyncSession, project_id: str) -> None:
        project = await self.get_project(session, project_id)
        if (await session.execute(sa.select(m.Project.id).where(m.Project.parent_id == project_id))).first():
            raise Forbidden(f"Cannot delete the project {project_id} since it is not a leaf in the hierarchy. "
                            "Use the cascade option if you want to delete a whole subtree.")
        await session.execute(sa.delete(m.Assignment).where(m.Assignment.target_id == project_id))
        await session.execute(sa.delete(m.ProjectTag).where(m.ProjectTag.project_id == project_id))
        await session.execute(sa.delete(m.Limit).where(m.Limit.project_id == project_id))
        await session.execute(sa.update(m.User).where(m.User.default_project_id == project_id)
                              .values(default_project_id=None))
        await session.delete(project)
        await self._revoke(session, project_id=project_id)

    # ------------------------------------------------------------------ users

    async def create_user(self, session: AsyncSession, *, name: str, domain_id: str | None = None,
                          password: str | None = None, enabled: bool = True, default_project_id: str | None = None,
                          description: str | None = None, email: str | None = None,
                          options: dict | None = None, id: str | None = None,
                          extra: dict | None = None) -> m.User:
        domain_id = domain_id or DEFAULT_DOMAIN_ID
        await self.get_domain(session, domain_id)
        if default_project_id is not None:
            await self.get_project(session, default_project_id)
        if (await session.execute(sa.select(m.User.id).where(
                m.User.domain_id == domain_id, m.User.name == name))).first():
            raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry found with name "
                           f"{name} at domain ID {domain_id}.")
        now = utcnow()
        user = m.User(id=id or m.new_id(), name=name, domain_id=domain_id, enabled=enabled,
                      default_project_id=default_project_id, description=description, email=email,
                      options=options or {}, extra=extra or {}, created_at=now)
        if password is not None:
            user.password_hash = await self.hash_secret(password)
            user.password_created_at = now
        session.add(user)
        await session.flush()
        return user

    async def update_user(self, session: AsyncSession, user_id: str, changes: dict[str, Any]) -> m.User:
        user = await self.get_user(session, user_id)
        if "domain_id" in changes and changes["domain_id"] != user.domain_id:
            raise BadRequest("Update of `domain_id` is not allowed.")
        if changes.get("id", user_id) != user_id:
            raise BadRequest("Cannot change user ID.")
        changes.pop("domain_id", None)
        changes.pop("id", None)
        if "project_id" in changes:
            user.extra = {**(user.extra or {}), "project_id": changes.pop("project_id")}
        if "name" in changes and changes["name"] != user.name:
            if (await session.execute(sa.select(m.User.id).where(
                    m.User.domain_id == user.domain_id, m.User.name == changes["name"]))).first():
                raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry found with name "
                               f"{changes['name']} at domain ID {user.domain_id}.")
        if changes.get("default_project_id"):
            await self.get_project(session, changes["default_project_id"])
        if "password" in changes:
            password = changes.pop("password")
            user.password_hash = await self.hash_secret(password) if password is not None else None
            user.password_created_at = utcnow()
            await self._revoke(session, user_id=user_id)
        if changes.get("enabled") is False and user.enabled:
            await self._revoke(session, user_id=user_id)
        for key, value in changes.items():
            if key == "options":
                user.options = {k: v for k, v in {**(user.options or {}), **value}.items() if v is not None}
            else:
                setattr(user, key, value)
        await session.flush()
        return user

    async def change_password(self, user_id: str, original: str, new: str) -> None:
        async with self.db.read() as session:
            user = await self.get_user(session, user_id)
            ok = user.enabled and await self.check_secret(original, user.password_hash)
        if not ok:
            raise Unauthorized("Error when changing user password: the original password is incorrect.")
        async with self.writing() as session:
            await self.update_user(session, user_id, {"password": new})

    async def delete_user(self, session: AsyncSession, user_id: str) -> None:
        user = await self.get_user(session, user_id)
        await session.execute(sa.delete(m.Assignment).where(m.Assignment.actor_id == user_id))
        await session.execute(sa.delete(m.Membership).where(m.Membership.user_id == user_id))
        await session.execute(sa.delete(m.ApplicationCredentialRole).where(
            m.ApplicationCredentialRole.application_credential_id.in_(
                sa.select(m.ApplicationCredential.id).where(m.ApplicationCredential.user_id == user_id))))
        await session.execute(sa.delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user_id))
        await session.execute(sa.delete(m.Credential).where(m.Credential.user_id == user_id))
        for trust in (await session.execute(sa.select(m.Trust).where(
                (m.Trust.trustor_user_id == user_id) | (m.Trust.trustee_user_id == user_id)))).scalars():
            trust.deleted_at = utcnow()
        await session.delete(user)
        await self._revoke(session, user_id=user_id)

    async def user_group_ids(self, session: AsyncSession, user_id: str) -> list[str]:
        return list((await session.execute(
            sa.select(m.Membership.group_id).where(m.Membership.user_id == user_id))).scalars())

    # ------------------------------------------------------------------ groups

    async def create_group(self, session: AsyncSession, *, name: str, domain_id: str | None = None,
                           description: str | None = None, extra: dict | None = None) -> m.Group:
        domain_id = domain_id or DEFAULT_DOMAIN_ID
        await self.get_domain(session, domain_id)
        if (await session.execute(sa.select(m.Group.id).where(
                m.Group.domain_id == domain_id, m.Group.name == name))).first():
            raise Conflict(f"Conflict occurred attempting to store group - Duplicate entry found with name "
                           f"{name} at domain ID {domain_id}.")
        group = m.Group(name=name, domain_id=domain_id, description=description, extra=extra or {})
        session.add(group)
        await session.flush()
        return group

    async def update_group(self, session: AsyncSession, group_id: str, changes: dict[str, Any]) -> m.Group:
        group = await self.get_group(session, group_id)
        if "domain_id" in changes and changes["domain_id"] != group.domain_id:
            raise BadRequest("Update of `domain_id` is not allowed.")
        if changes.get("id", group_id) != group_id:
            raise BadRequest("Cannot change group ID.")
        changes.pop("domain_id", None)
        changes.pop("id", None)
        if "name" in changes and changes["name"] != group.name:
            if (await session.execute(sa.select(m.Group.id).where(
                    m.Group.domain_id == group.domain_id, m.Group.name == changes["name"]))).first():
                raise Conflict(f"Conflict occurred attempting to store group - Duplicate entry found with name "
                               f"{changes['name']} at domain ID {group.domain_id}.")
        for key, value in changes.items():
            setattr(group, key, value)
        await session.flush()
        return group

    async def delete_group(self, session: AsyncSession, group_id: str) -> None:
        group = await self.get_group(session, group_id)
        members = await self.group_user_ids(session, group_id)
        has_roles = (await session.execute(sa.select(m.Assignment.role_id).where(
            m.Assignment.actor_id == group_id))).first()
        await session.execute(sa.delete(m.Assignment).where(m.Assignment.actor_id == group_id))
        await session.execute(sa.delete(m.Membership).where(m.Membership.group_id == group_id))
        await session.delete(group)
        if has_roles:
            for user_id in members:
                await self._revoke(session, user_id=user_id)

    async def group_user_ids(self, session: AsyncSession, group_id: str) -> list[str]:
        return list((await session.execute(
            sa.select(m.Membership.user_id).where(m.Membership.group_id == group_id))).scalars())

    async def add_user_to_group(self, session: AsyncSession, group_id: str, user_id: str) -> None:
        await self.get_group(session, group_id)
        await self.get_user(session, user_id)
        if await session.get(m.Membership, (user_id, group_id)) is None:
            session.add(m.Membership(user_id=user_id, group_id=group_id))
            await session.flush()

    async def remove_user_from_group(self, session: AsyncSession, group_id: str, user_id: str) -> None:
        await self.get_group(session, group_id)
        await self.get_user(session, user_id)
        membership = await session.get(m.Membership, (user_id, group_id))
        if membership is None:
            raise NotFound(f"User {user_id} is not a member of group {group_id}.")
        await session.delete(membership)
        if (await session.execute(sa.select(m.Assignment.role_id).where(m.Assignment.actor_id == group_id))).first():
            await self._revoke(session, user_id=user_id)

    async def check_user_in_group(self, session: AsyncSession, group_id: str, user_id: str) -> None:
        await self.get_group(session, group_id)
        await self.get_user(session, user_id)
        if await session.get(m.Membership, (user_id, group_id)) is None:
            raise NotFound(f"User {user_id} is not a member of group {group_id}.")

    # ------------------------------------------------------------------ roles

    async def create_role(self, session: AsyncSession, *, name: str, domain_id: str | None = None,
                          description: str | None = None, options: dict | None = None,
                          id: str | None = None) -> m.Role:
        if domain_id:
            await self.get_domain(session, domain_id)
        key = domain_id or m.NULL_DOMAIN
        if (await session.execute(sa.select(m.Role.id).where(m.Role.name == name, m.Role.domain_id == key))).first():
            raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name {name}.")
        role = m.Role(id=id or m.new_id(), name=name, domain_id=key, description=description, options=options or {})
        session.add(role)
        await session.flush()
        return role

    async def role_by_name(self, session: AsyncSession, name: str, domain_id: str | None = None) -> m.Role:
        role = (await session.execute(sa.select(m.Role).where(
            m.Role.name == name, m.Role.domain_id == (domain_id or m.NULL_DOMAIN)))).scalar()
        if role is None:
            raise NotFound(f"Could not find role: {name}.")
        return role

    async def update_role(self, session: AsyncSession, role_id: str, changes: dict[str, Any]) -> m.Role:
        role = await self.get_role(session, role_id)
        if "domain_id" in changes and (changes["domain_id"] or m.NULL_DOMAIN) != role.domain_id:
            raise BadRequest("Update of `domain_id` is not allowed.")
        changes.pop("domain_id", None)
        if "name" in changes and changes["name"] != role.name:
            if (await session.execute(sa.select(m.Role.id).where(
                    m.Role.name == changes["name"], m.Role.domain_id == role.domain_id))).first():
                raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name "
                               f"{changes['name']}.")
        if role.options.get("immutable") and set(changes) - {"options"}:
            raise Forbidden(f"Role {role_id} is immutable and cannot be changed.")
        for key, value in changes.items():
            if key == "options":
                role.options = {k: v for k, v in {**(role.options or {}), **value}.items() if v is not None}
            else:
                setattr(role, key, value)
        await session.flush()
        return role

    async def delete_role(self, session: AsyncSession, role_id: str) -> None:
        role = await self.get_role(session, role_id)
        if role.options.get("immutable"):
            raise Forbidden(f"Role {role_id} is immutable and cannot be deleted.")
        await session.execute(sa.delete(m.Assignment).where(m.Assignment.role_id == role_id))
        await session.execute(sa.delete(m.ImpliedRole).where(
            (m.ImpliedRole.prior_role_id == role_id) | (m.ImpliedRole.implied_role_id == role_id)))
        await session.execute(sa.delete(m.ApplicationCredentialRole).where(
            m.ApplicationCredentialRole.role_id == role_id))
        await session.execute(sa.delete(m.TrustRole).where(m.TrustRole.role_id == role_id))
        await session.delete(role)
        await self._revoke(session, role_id=role_id)

    async def create_implied_role(self, session: AsyncSession, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
        prior = await self.get_role(session, prior_id)
        implied = await self.get_role(session, implied_id)
        if implied.name.lower() in {n.lower() for n in self.config.prohibited_implied_roles}:
            raise Forbidden(f"{implied.name} cannot be an implied role.")
        if implied.domain_id != m.NULL_DOMAIN and prior.domain_id == m.NULL_DOMAIN:
            raise Forbidden("A global role cannot imply a domain-specific role.")
        # no cycles: the prior must not be reachable from the implied role
        if prior_id == implied_id or prior_id in await self._implied_closure(session, {implied_id}):
            raise Forbidden(f"Creating the implied role {prior_id} -> {implied_id} would make a loop.")
        if await session.get(m.ImpliedRole, (prior_id, implied_id)) is None:
            session.add(m.ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
            await session.flush()
        return prior, implied

    async def get_implied_role(self, session: AsyncSession, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
        prior = await self.get_role(session, prior_id)
        implied = await self.get_role(session, implied_id)
        if await session.get(m.ImpliedRole, (prior_id, implied_id)) is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        return prior, implied

    async def delete_implied_role(self, session: AsyncSession, prior_id: str, implied_id: str) -> None:
        await self.get_implied_role(session, prior_id, implied_id)
        await session.execute(sa.delete(m.ImpliedRole).where(
            m.ImpliedRole.prior_role_id == prior_id, m.ImpliedRole.implied_role_id == implied_id))

    async def implied_roles(self, session: AsyncSession, prior_id: str | None = None) -> dict[str, list[m.Role]]:
        query = sa.select(m.ImpliedRole.prior_role_id, m.Role).join(m.Role, m.Role.id == m.ImpliedRole.implied_role_id)
        if prior_id is not None:
            query = query.where(m.ImpliedRole.prior_role_id == prior_id)
        result: dict[str, list[m.Role]] = {}
        for prior, role in await session.execute(query.order_by(m.Role.name)):
            result.setdefault(prior, []).append(role)
        return result

    async def _implied_closure(self, session: AsyncSession, role_ids: set[str]) -> set[str]:
        """``role_ids`` and every role they imply, transitively."""
        edges: dict[str, list[str]] = {}
        for prior, implied in await session.execute(sa.select(m.ImpliedRole.prior_role_id, m.ImpliedRole.implied_role_id)):
            edges.setdefault(prior, []).append(implied)
        seen = set(role_ids)
        stack = list(role_ids)
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    # ------------------------------------------------------------------ assignments

    @staticmethod
    def assignment_type(actor: str, target: str) -> str:
        return {("user", "project"): "UserProject", ("group", "project"): "GroupProject",
                ("user", "domain"): "UserDomain", ("group", "domain"): "GroupDomain",
                ("user", "system"): "UserSystem", ("group", "system"): "GroupSystem"}[(actor, target)]

    async def _check_grant_parts(self, session: AsyncSession, actor: str, actor_id: str, target: str,
                                 target_id: str, role_id: str) -> m.Role:
        if actor == "user":
            await self.get_user(session, actor_id)
        else:
            await self.get_group(session, actor_id)
        if target == "project":
            target_obj = await self.get_project(session, target_id)
            target_domain = target_obj.domain_id
        elif target == "domain":
            await self.get_domain(session, target_id)
            target_domain = target_id
        else:
            if target_id != SYSTEM_ALL:
                raise NotFound(f"Could not find system scope: {target_id}.")
            target_domain = None
        role = await self.get_role(session, role_id)
        if role.domain_id != m.NULL_DOMAIN and role.domain_id != target_domain:
            raise Forbidden(f"Role {role_id} is domain-specific to another domain and cannot be granted here.")
        return role

    async def create_grant(self, session: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                           role_id: str, inherited: bool = False) -> None:
        await self._check_grant_parts(session, actor, actor_id, target, target_id, role_id)
        key = (self.assignment_type(actor, target), actor_id, target_id, role_id, inherited)
        if await session.get(m.Assignment, key) is None:
            session.add(m.Assignment(type=key[0], actor_id=actor_id, target_id=target_id, role_id=role_id,
                                     inherited=inherited))
            await session.flush()

    async def check_grant(self, session: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                          role_id: str, inherited: bool = False) -> None:
        await self._check_grant_parts(session, actor, actor_id, target, target_id, role_id)
        key = (self.assignment_type(actor, target), actor_id, target_id, role_id, inherited)
        if await session.get(m.Assignment, key) is None:
            raise NotFound(f"Could not find role assignment with role: {role_id}, {actor}: {actor_id}, "
                           f"{target}: {target_id}.")

    async def delete_grant(self, session: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                           role_id: str, inherited: bool = False) -> None:
        await self.check_grant(session, actor, actor_id, target, target_id, role_id, inherited)
        key = (self.assignment_type(actor, target), actor_id, target_id, role_id, inherited)
        await session.delete(await session.get(m.Assignment, key))
        users = [actor_id] if actor == "user" else await self.group_user_ids(session, actor_id)
        for user_id in users:
            if target == "project" and not inherited:
                await self._revoke(session, user_id=user_id, project_id=target_id)
            elif target == "domain" and not inherited:
                await self._revoke(session, user_id=user_id, domain_id=target_id)
            else:
                await self._revoke(session, user_id=user_id)

    async def list_grants(self, session: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                          inherited: bool = False) -> list[m.Role]:
        if actor == "user":
            await self.get_user(session, actor_id)
        else:
            await self.get_group(session, actor_id)
        if target == "project":
            await self.get_project(session, target_id)
        elif target == "domain":
            await self.get_domain(session, target_id)
        rows = await session.execute(
            sa.select(m.Role).join(m.Assignment, m.Assignment.role_id == m.Role.id).where(
                m.Assignment.type == self.assignment_type(actor, target), m.Assignment.actor_id == actor_id,
                m.Assignment.target_id == target_id, m.Assignment.inherited == inherited).order_by(m.Role.name))
        return list(rows.scalars())

    async def effective_role_ids(self, session: AsyncSession, user_id: str, *, project: m.Project | None = None,
                                 domain_id: str | None = None, system: str | None = None) -> set[str]:
        """The user's roles on one scope: direct, through groups, inherited, and implied."""
        actors = [user_id, *await self.user_group_ids(session, user_id)]
        clauses = []
        if project is not None:
            clauses.append((m.Assignment.target_id == project.id) & (m.Assignment.inherited == sa.false()))
            inherited_from = [project.domain_id, *(p.id for p in await self.ancestors(session, project))]
            clauses.append(m.Assignment.target_id.in_(inherited_from) & (m.Assignment.inherited == sa.true()))
            types = ("UserProject", "GroupProject", "UserDomain", "GroupDomain")
        elif domain_id is not None:
            clauses.append((m.Assignment.target_id == domain_id) & (m.Assignment.inherited == sa.false()))
            types = ("UserDomain", "GroupDomain")
        elif system is not None:
            clauses.append(m.Assignment.target_id == system)
            types = ("UserSystem", "GroupSystem")
        else:
            return set()
        rows = await session.execute(sa.select(m.Assignment.role_id).where(
            m.Assignment.actor_id.in_(actors), m.Assignment.type.in_(types), sa.or_(*clauses)))
        direct = set(rows.scalars())
        return await self._global_only(session, await self._implied_closure(session, direct)) if direct else set()

    async def _global_only(self, session: AsyncSession, role_ids: set[str]) -> set[str]:
        """Drop domain-specific roles: they only carry implications and never reach a token."""
        if not role_ids:
            return role_ids
        rows = await session.execute(sa.select(m.Role.id).where(
            m.Role.id.in_(role_ids), m.Role.domain_id != m.NULL_DOMAIN))
        return role_ids - set(rows.scalars())

    async def roles_by_ids(self, session: AsyncSession, role_ids: Iterable[str]) -> list[m.Role]:
        ids = list(role_ids)
        if not ids:
            return []
        return list((await session.execute(sa.select(m.Role).where(m.Role.id.in_(ids)).order_by(m.Role.name))).scalars())

    async def list_role_assignments(self, session: AsyncSession, *, user_id: str | None = None,
                                    group_id: str | None = None, role_id: str | None = None,
                                    project_id: str | None = None, domain_id: str | None = None,
                                    system: str | None = None, inherited: bool | None = None,
                                    effective: bool = False, include_subtree: bool = False) -> list[dict[str, Any]]:
        """Role assignments as Keystone lists them: dicts with role, user|group, scope, and links data.

        Each dict has ``role_id``, ``user_id`` or ``group_id``, ``scope`` (``("project", id)``,
        ``("domain", id)``, ``("system", "all")``), ``inherited`` and, for effective listings,
        ``via_group``/``prior_role`` to build Keystone's ``links.membership``/``prior_role``.
        """
        rows = list((await session.execute(sa.select(m.Assignment))).scalars())

        def scope_of(a: m.Assignment) -> tuple[str, str]:
            return ("project" if a.type.endswith("Project") else "domain" if a.type.endswith("Domain") else "system",
                    a.target_id)

        items: list[dict[str, Any]] = []
        if not effective:
            for a in rows:
                actor = "user_id" if a.type.startswith("User") else "group_id"
                items.append({"role_id": a.role_id, actor: a.actor_id, "scope": scope_of(a), "inherited": a.inherited})
        else:
            members: dict[str, list[str]] = {}
            for uid, gid in await session.execute(sa.select(m.Membership.user_id, m.Membership.group_id)):
                members.setdefault(gid, []).append(uid)
            projects = list((await session.execute(sa.select(m.Project))).scalars())
            children: dict[str, list[m.Project]] = {}
            by_domain: dict[str, list[m.Project]] = {}
            for p in projects:
                by_domain.setdefault(p.domain_id, []).append(p)
                if p.parent_id:
                    children.setdefault(p.parent_id, []).append(p)

            def subtree(pid: str) -> list[m.Project]:
                out, stack = [], list(children.get(pid, []))
                while stack:
                    p = stack.pop()
                    out.append(p)
                    stack.extend(children.get(p.id, []))
                return out

            base: list[dict[str, Any]] = []
            for a in rows:
                kind, target = scope_of(a)
                if a.inherited:
                    targets = by_domain.get(target, []) if kind == "domain" else subtree(target)
                    scopes = [("project", p.id) for p in targets]
                else:
                    scopes = [(kind, target)]
                for scope in scopes:
                    item: dict[str, Any] = {"role_id": a.role_id, "scope": scope, "inherited": False,
                                            "source_inherited": a.inherited, "source_target": target}
                    if a.type.startswith("User"):
                        base.append({**item, "user_id": a.actor_id})
                    else:
                        for uid in members.get(a.actor_id, []):
                            base.append({**item, "user_id": uid, "via_group": a.actor_id})
            edges: dict[str, list[str]] = {}
            for prior, implied in await session.execute(sa.select(m.ImpliedRole.prior_role_id,
                                                                  m.ImpliedRole.implied_role_id)):
                edges.setdefault(prior, []).append(implied)
            for item in base:
                items.append(item)
                seen = {item["role_id"]}
                stack = [(item["role_id"], nxt) for nxt in edges.get(item["role_id"], [])]
                while stack:
                    prior, implied = stack.pop()
                    if implied in seen:
                        continue
                    seen.add(implied)
                    items.append({**item, "role_id": implied, "prior_role": prior})
                    stack.extend((implied, nxt) for nxt in edges.get(implied, []))
            domain_roles = set((await session.execute(
                sa.select(m.Role.id).where(m.Role.domain_id != m.NULL_DOMAIN))).scalars())
            items = [x for x in items if x["role_id"] not in domain_roles]
        project_filter: set[str] | None = None
        if project_id is not None:
            project_filter = {project_id}
            if include_subtree:
                project_filter |= {p.id for p in await self.descendants(session, project_id)}
        result = []
        seen_keys = set()
        for item in items:
            if user_id is not None and item.get("user_id") != user_id:
                continue
            if group_id is not None and item.get("group_id") != group_id:
                continue
            if role_id is not None and item["role_id"] != role_id:
                continue
            kind, target = item["scope"]
            if project_filter is not None and not (kind == "project" and target in project_filter):
                continue
            if domain_id is not None and not (kind == "domain" and target == domain_id):
                continue
            if system is not None and kind != "system":
                continue
            if inherited is not None and item["inherited"] != inherited:
                continue
            key = (item["role_id"], item.get("user_id"), item.get("group_id"), item["scope"], item["inherited"],
                   item.get("via_group"), item.get("prior_role"), item.get("source_target"))
            if key in seen_keys:
                continue
            seen_keys.add(key)
            result.append(item)
        return result

    # ------------------------------------------------------------------ catalog

    async def create_region(self, session: AsyncSession, *, id: str | None = None, description: str = "",
                            parent_region_id: str | None = None) -> m.Region:
        if id and await session.get(m.Region, id) is not None:
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {id}.")
        if parent_region_id:
            await self._get(session, m.Region, parent_region_id, "region")
        region = m.Region(id=id or m.new_id(), description=description or "", parent_region_id=parent_region_id)
        session.add(region)
        await session.flush()
        return region

    async def update_region(self, session: AsyncSession, region_id: str, changes: dict[str, Any]) -> m.Region:
        region = await self._get(session, m.Region, region_id, "region")
        parent = changes.get("parent_region_id")
        if parent:
            await self._get(session, m.Region, parent, "region")
            cursor: str | None = parent
            while cursor:  # no loops
                if cursor == region_id:
                    raise BadRequest("Circular reference found: a region cannot be its own ancestor.")
                cursor = (await self._get(session, m.Region, cursor, "region")).parent_region_id
        for key, value in changes.items():
            setattr(region, key, value if not (key == "description" and value is None) else "")
        await session.flush()
        return region

    async def delete_region(self, session: AsyncSession, region_id: str) -> None:
        region = await self._get(session, m.Region, region_id, "region")
        if (await session.execute(sa.select(m.Region.id).where(m.Region.parent_region_id == region_id))).first():
            raise Forbidden(f"Unable to delete region {region_id} because it or its child regions have "
                            "associated endpoints.")
        if (await session.execute(sa.select(m.Endpoint.id).where(m.Endpoint.region_id == region_id))).first():
            raise Forbidden(f"Unable to delete region {region_id} because it or its child regions have "
                            "associated endpoints.")
        await session.delete(region)

    async def create_service(self, session: AsyncSession, *, type: str, name: str | None = None,
                             description: str | None = None, enabled: bool = True) -> m.Service:
        service = m.Service(type=type, name=name, description=description, enabled=enabled)
        session.add(service)
        await session.flush()
        return service

    async def delete_service(self, session: AsyncSession, service_id: str) -> None:
        service = await self._get(session, m.Service, service_id, "service")
        await session.execute(sa.delete(m.Endpoint).where(m.Endpoint.service_id == service_id))
        await session.execute(sa.delete(m.Limit).where(m.Limit.service_id == service_id))
        await session.execute(sa.delete(m.RegisteredLimit).where(m.RegisteredLimit.service_id == service_id))
        await session.delete(service)

    async def endpoint_region(self, session: AsyncSession, region_id: str | None, legacy_region: str | None) -> str | None:
        """The region an endpoint names: ``region_id`` must exist; the legacy ``region`` field
        creates its region on the fly, as Keystone does for backward compatibility."""
        if region_id is None and legacy_region is not None:
            if await session.get(m.Region, legacy_region) is None:
                session.add(m.Region(id=legacy_region, description=""))
                await session.flush()
            return legacy_region
        if region_id and await session.get(m.Region, region_id) is None:
            raise BadRequest(f"Region {region_id} does not exist.")
        return region_id

    async def create_endpoint(self, session: AsyncSession, *, service_id: str, interface: str, url: str,
                              region_id: str | None = None, enabled: bool = True,
                              legacy_region: str | None = None) -> m.Endpoint:
        if await session.get(m.Service, service_id) is None:  # Keystone: a ValidationError, not a 404
            raise BadRequest("Expecting to find endpoint service_id in service table.")
        region_id = await self.endpoint_region(session, region_id, legacy_region)
        endpoint = m.Endpoint(service_id=service_id, interface=interface, url=url, region_id=region_id, enabled=enabled)
        session.add(endpoint)
        await session.flush()
        return endpoint

    async def catalog(self, session: AsyncSession) -> list[dict[str, Any]]:
        """The catalog in Keystone's v3 token form (enabled services with their enabled endpoints)."""
        services = (await session.execute(
            sa.select(m.Service).where(m.Service.enabled == sa.true()).order_by(m.Service.type))).scalars().all()
        endpoints = (await session.execute(
            sa.select(m.Endpoint).where(m.Endpoint.enabled == sa.true()).order_by(m.Endpoint.interface))).scalars().all()
        by_service: dict[str, list[dict[str, Any]]] = {}
        for e in endpoints:
            by_service.setdefault(e.service_id, []).append(
                {"id": e.id, "interface": e.interface, "region": e.region_id, "region_id": e.region_id, "url": e.url})
        return [{"id": s.id, "type": s.type, "name": s.name or "", "endpoints": by_service.get(s.id, [])}
                for s in services]

    # ------------------------------------------------------------------ limits

    async def _assert_limit_refs(self, session: AsyncSession, item: dict[str, Any], target: str) -> None:
        """Every id a (registered) limit names exists: Keystone answers 400, not 404, when not."""
        for key, model in (("service_id", m.Service), ("region_id", m.Region), ("project_id", m.Project),
                           ("domain_id", m.Domain)):
            if item.get(key) is not None and await session.get(model, item[key]) is None:
                raise BadRequest(f"Expecting to find {key} in {target}.")

    async def create_registered_limits(self, session: AsyncSession, items: list[dict[str, Any]]) -> list[m.RegisteredLimit]:
        created = []
        for item in items:
            await self._assert_limit_refs(session, item, "registered_limit")
            dup = await session.execute(sa.select(m.RegisteredLimit.id).where(
                m.RegisteredLimit.service_id == item["service_id"],
                m.RegisteredLimit.region_id.is_(None) if not item.get("region_id")
                else m.RegisteredLimit.region_id == item["region_id"],
                m.RegisteredLimit.resource_name == item["resource_name"]))
            if dup.first():
                raise Conflict(f"Duplicate entry: a registered limit for {item['resource_name']} already exists.")
            obj = m.RegisteredLimit(**item)
            session.add(obj)
            created.append(obj)
            await session.flush()
        return created

    async def create_limits(self, session: AsyncSession, items: list[dict[str, Any]]) -> list[m.Limit]:
        created = []
        for item in items:
            if bool(item.get("project_id")) == bool(item.get("domain_id")):
                raise BadRequest("A limit names either a project_id or a domain_id.")
            await self._assert_limit_refs(session, item, "limit")
            registered = (await session.execute(sa.select(m.RegisteredLimit.id).where(
                m.RegisteredLimit.service_id == item["service_id"],
                m.RegisteredLimit.resource_name == item["resource_name"],
                m.RegisteredLimit.region_id.is_(None) if not item.get("region_id")
                else m.RegisteredLimit.region_id == item["region_id"]))).first()
            if not registered:
                raise Forbidden(f"No registered limit exists for {item['resource_name']} of service "
                                f"{item['service_id']}: register a default first.")
            scope_col, scope_id = (m.Limit.project_id, item["project_id"]) if item.get("project_id") else (
                m.Limit.domain_id, item["domain_id"])
            dup = await session.execute(sa.select(m.Limit.id).where(
                scope_col == scope_id, m.Limit.service_id == item["service_id"],
                m.Limit.resource_name == item["resource_name"],
                m.Limit.region_id.is_(None) if not item.get("region_id") else m.Limit.region_id == item["region_id"]))
            if dup.first():
                raise Conflict(f"Duplicate entry: a limit for {item['resource_name']} already exists.")
            obj = m.Limit(**item)
            session.add(obj)
            created.append(obj)
            await session.flush()
        return created

    async def effective_limit(self, session: AsyncSession, project_id: str, service_type: str,
                              resource_name: str, region_id: str | None = None) -> int | None:
        """The limit other services enforce: the project's own, else the registered default."""
        service_ids = sa.select(m.Service.id).where(m.Service.type == service_type)
        region = (lambda col: col.is_(None) | (col == region_id)) if region_id else (lambda col: col.is_(None))
        own = (await session.execute(sa.select(m.Limit.resource_limit).where(
            m.Limit.project_id == project_id, m.Limit.service_id.in_(service_ids),
            m.Limit.resource_name == resource_name, region(m.Limit.region_id)))).scalar()
        if own is not None:
            return own
        return (await session.execute(sa.select(m.RegisteredLimit.default_limit).where(
            m.RegisteredLimit.service_id.in_(service_ids), m.RegisteredLimit.resource_name == resource_name,
            region(m.RegisteredLimit.region_id)))).scalar()

    # ------------------------------------------------------------------ credentials

    def encrypt_blob(self, blob: str) -> str:
        return self.credential_keys.fernet().encrypt(blob.encode()).decode()

    def decrypt_blob(self, encrypted: str) -> str:
        try:
            return self.credential_keys.fernet().decrypt(encrypted.encode()).decode()
        except InvalidToken:
            raise NotFound("The credential cannot be decrypted with the current credential keys.") from None

    async def create_credential(self, session: AsyncSession, *, user_id: str, type: str, blob: str,
                                project_id: str | None = None) -> m.Credential:
        await self.get_user(session, user_id)
        if type == "ec2":
            try:
                access = json.loads(blob).get("access")
            except (ValueError, AttributeError):
                access = None
            if not access:
                raise BadRequest("Invalid blob in credential: an ec2 credential's blob is JSON with an 'access' key.")
            if not project_id:
                raise BadRequest("Invalid input for field 'project_id': an ec2 credential needs a project.")
            cred_id = hashlib.sha256(access.encode()).hexdigest()
        else:
            cred_id = m.new_id() + m.new_id()
        if await session.get(m.Credential, cred_id) is not None:
            raise Conflict("Conflict occurred attempting to store credential - Duplicate entry.")
        cred = m.Credential(id=cred_id, user_id=user_id, project_id=project_id, type=type,
                            encrypted_blob=self.encrypt_blob(blob))
        session.add(cred)
        await session.flush()
        return cred

    # ------------------------------------------------------------------ application credentials

    async def create_application_credential(self, session: AsyncSession, ctx: AuthContext, user_id: str, *,
                                            name: str, description: str | None = None, secret: str | None = None,
                                            expires_at: datetime | None = None, roles: list[dict] | None = None,
                                            unrestricted: bool = False) -> tuple[m.ApplicationCredential, str, list[m.Role]]:
        if ctx.user_id != user_id:
            raise Forbidden("Application credentials can only be created for the token's own user.")
        # Keystone: a trust token never may; an application credential's token only when the
        # credential is unrestricted
        if ctx.trust_id or (ctx.application_credential_id
                            and not await self._unrestricted(session, ctx.application_credential_id)):
            raise Forbidden("A token from a trust or a restricted application credential cannot create "
                            "application credentials.")
        if not ctx.project_id and not ctx.system_scope:
            raise BadRequest("An application credential is created with a project- or system-scoped token.")
        if expires_at is not None and expires_at <= utcnow():
            raise BadRequest("Invalid input for field 'expires_at': the time is in the past.")
        if (await session.execute(sa.select(m.ApplicationCredential.id).where(
                m.ApplicationCredential.user_id == user_id, m.ApplicationCredential.name == name))).first():
            raise Conflict(f"Conflict occurred attempting to store application_credential - Duplicate entry "
                           f"found with name {name}.")
        token_roles = set(ctx.role_ids)
        chosen: list[m.Role] = []
        for ref in roles or []:
            if ref.get("id"):
                role = await session.get(m.Role, ref["id"])
            else:
                role = (await session.execute(sa.select(m.Role).where(
                    m.Role.name == ref.get("name"),
                    m.Role.domain_id == (ref.get("domain_id") or m.NULL_DOMAIN)))).scalar()
            if role is None or role.id not in token_roles:  # Keystone: 400, per the API-SIG guidelines
                raise BadRequest(f"Invalid application credential: the user does not have the role "
                                 f"on the scope: {ref.get('id') or ref.get('name')}.")
            chosen.append(role)
        if not roles:
            chosen = await self.roles_by_ids(session, token_roles)
        secret = secret or base64.urlsafe_b64encode(secrets.token_bytes(64)).decode().rstrip("=")
        cred = m.ApplicationCredential(
            name=name, user_id=user_id, project_id=ctx.project_id, system=ctx.system_scope,
            secret_hash=await self.hash_secret(secret), description=description, expires_at=expires_at,
            unrestricted=unrestricted, created_at=utcnow())
        session.add(cred)
        await session.flush()
        for role in dict.fromkeys(chosen):
            session.add(m.ApplicationCredentialRole(application_credential_id=cred.id, role_id=role.id))
        await session.flush()
        return cred, secret, chosen

    async def application_credential_roles(self, session: AsyncSession, cred_id: str) -> list[m.Role]:
        return list((await session.execute(
            sa.select(m.Role).join(m.ApplicationCredentialRole, m.ApplicationCredentialRole.role_id == m.Role.id)
            .where(m.ApplicationCredentialRole.application_credential_id == cred_id).order_by(m.Role.name))).scalars())

    async def get_application_credential(self, session: AsyncSession, user_id: str, cred_id: str) -> m.ApplicationCredential:
        cred = await session.get(m.ApplicationCredential, cred_id)
        if cred is None or cred.user_id != user_id:
            raise NotFound(f"Could not find Application Credential: {cred_id}.")
        return cred

    async def delete_application_credential(self, session: AsyncSession, user_id: str, cred_id: str) -> None:
        cred = await self.get_application_credential(session, user_id, cred_id)
        await session.execute(sa.delete(m.ApplicationCredentialRole).where(
            m.ApplicationCredentialRole.application_credential_id == cred_id))
        await session.delete(cred)
        await self._revoke(session, application_credential_id=cred_id)

    # ------------------------------------------------------------------ trusts

    async def create_trust(self, session: AsyncSession, ctx: AuthContext, *, trustor_user_id: str,
                           trustee_user_id: str, project_id: str | None, impersonation: bool,
                           roles: list[dict], expires_at: datetime | None, remaining_uses: int | None,
                           allow_redelegation: bool = False, redelegation_count: int | None = None) -> tuple[m.Trust, list[m.Role]]:
        if ctx.application_credential_id and not await self._unrestricted(session, ctx.application_credential_id):
            raise Forbidden("A restricted application credential cannot create trusts.")
        if ctx.user_id != trustor_user_id:
            raise Forbidden("The trustor must be the token's own user.")
        await self.get_user(session, trustee_user_id)
        if remaining_uses is not None and remaining_uses <= 0:
            raise BadRequest("remaining_uses must be a positive integer or null.")
        if expires_at is not None and expires_at <= utcnow():
            raise BadRequest("Invalid input for field 'expires_at': the time is in the past.")
        chosen: list[m.Role] = []
        if project_id:
            project = await self.get_project(session, project_id)
            available = await self.effective_role_ids(session, trustor_user_id, project=project)
            for ref in roles:
                if ref.get("id"):
                    role = await session.get(m.Role, ref["id"])
                else:
                    role = (await session.execute(sa.select(m.Role).where(
                        m.Role.name == ref.get("name"), m.Role.domain_id == m.NULL_DOMAIN))).scalar()
                if role is None:
                    raise NotFound(f"Could not find role: {ref.get('id') or ref.get('name')}.")
                if role.id not in available:
                    raise Forbidden(f"The trustor does not have role {role.id} on project {project_id}.")
                chosen.append(role)
        elif roles:
            raise BadRequest("A trust without a project cannot delegate roles.")
        max_count = self.config.max_redelegation_count
        if allow_redelegation:
            count = max_count if redelegation_count is None else redelegation_count
            if count > max_count:
                raise Forbidden(f"redelegation_count may be at most {max_count}.")
        else:
            count = 0
        trust = m.Trust(trustor_user_id=trustor_user_id, trustee_user_id=trustee_user_id, project_id=project_id,
                        impersonation=impersonation, expires_at=expires_at, remaining_uses=remaining_uses,
                        redelegation_count=count)
        session.add(trust)
        await session.flush()
        for role in dict.fromkeys(chosen):
            session.add(m.TrustRole(trust_id=trust.id, role_id=role.id))
        await session.flush()
        return trust, list(dict.fromkeys(chosen))

    async def get_trust(self, session: AsyncSession, trust_id: str) -> m.Trust:
        trust = await session.get(m.Trust, trust_id)
        if trust is None or trust.deleted_at is not None or (trust.expires_at and trust.expires_at <= utcnow()) or (
                trust.remaining_uses is not None and trust.remaining_uses <= 0):  # used up: gone, as in Keystone
            raise NotFound(f"Could not find trust: {trust_id}.")
        return trust

    async def trust_roles(self, session: AsyncSession, trust_id: str) -> list[m.Role]:
        return list((await session.execute(
            sa.select(m.Role).join(m.TrustRole, m.TrustRole.role_id == m.Role.id)
            .where(m.TrustRole.trust_id == trust_id).order_by(m.Role.name))).scalars())

    async def delete_trust(self, session: AsyncSession, trust_id: str) -> None:
        trust = await self.get_trust(session, trust_id)
        trust.deleted_at = utcnow()
        await self._revoke(session, trust_id=trust_id)

    async def _unrestricted(self, session: AsyncSession, cred_id: str) -> bool:
        cred = await session.get(m.ApplicationCredential, cred_id)
        return bool(cred and cred.unrestricted)

    # ------------------------------------------------------------------ revocation

    async def _revoke(self, session: AsyncSession, **fields: str) -> None:
        now = utcnow()
        session.add(m.RevocationEvent(issued_before=now, revoked_at=now, **fields))
        await session.flush()

    async def revoke_token(self, token: Token, chain: bool = True) -> None:
        """Revoke one token and, with ``chain``, every token rescoped from it (Keystone's default)."""
        async with self.writing() as session:
            await self._revoke(session, audit_id=token.payload.audit_ids[0])
            if chain:
                await self._revoke(session, audit_chain_id=token.payload.audit_ids[0])

    # ------------------------------------------------------------------ authentication

    async def _find_user(self, session: AsyncSession, ref: dict[str, Any]) -> m.User | None:
        ref = _auth_ref(ref, "user")
        if ref.get("id"):
            return await session.get(m.User, ref["id"])
        name = ref.get("name")
        domain = _auth_ref(ref.get("domain"), "user/domain")
        if not name or not (domain.get("id") or domain.get("name")):
            raise BadRequest("Expecting to find domain in user. The server could not comply with the request "
                             "since it is either malformed or otherwise incorrect.")
        domain_id = domain.get("id")
        if not domain_id:
            d = (await session.execute(sa.select(m.Domain).where(m.Domain.name == domain["name"]))).scalar()
            if d is None:
                return None
            domain_id = d.id
        return (await session.execute(sa.select(m.User).where(
            m.User.domain_id == domain_id, m.User.name == name))).scalar()

    async def _user_usable(self, session: AsyncSession, user: m.User | None) -> bool:
        if user is None or not user.enabled:
            return False
        domain = await session.get(m.Domain, user.domain_id)
        return bool(domain and domain.enabled)

    async def authenticate(self, auth: dict[str, Any]) -> Token:
        """Check a POST /v3/auth/tokens ``auth`` body and issue a token."""
        identity = auth.get("identity") or {}
        methods = identity.get("methods") or []
        if not isinstance(methods, list) or not methods:
            raise BadRequest("Invalid input for field 'identity/methods': it must list at least one method.")
        unknown = [x for x in methods if x not in ("password", "token", "application_credential")]
        if unknown:
            raise Unauthorized(f"Attempted to authenticate with an unsupported method: {unknown[0]}.")
        scope_req = auth.get("scope")
        now = utcnow()
        expires_at = now + timedelta(seconds=self.config.token_expiration)
        audit_ids = [new_audit_id()]
        app_cred: m.ApplicationCredential | None = None
        user_id: str
        async with self.db.read() as session:
            if "application_credential" in methods:
                ac = identity.get("application_credential") or {}
                if not isinstance(ac, dict) or not ac.get("secret"):
                    raise BadRequest("Invalid input for field 'identity/application_credential': a secret is required.")
                _auth_ref(ac, "identity/application_credential", ("id", "name", "secret"))
                if ac.get("id"):
                    app_cred = await session.get(m.ApplicationCredential, ac["id"])
                elif ac.get("name") and isinstance(ac.get("user"), dict):
                    user = await self._find_user(session, ac["user"])
                    app_cred = None if user is None else (await session.execute(sa.select(m.ApplicationCredential).where(
                        m.ApplicationCredential.user_id == user.id,
                        m.ApplicationCredential.name == ac["name"]))).scalar()
                else:
                    raise BadRequest("Invalid input for field 'identity/application_credential': give an id, or a "
                                     "name and a user.")
                ok = await self.check_secret(str(ac["secret"]), app_cred.secret_hash if app_cred else None)
                if not ok or app_cred is None or (app_cred.expires_at and app_cred.expires_at <= now):
                    raise Unauthorized(AUTH_FAILED)
                user = await session.get(m.User, app_cred.user_id)
                if not await self._user_usable(session, user):
                    raise Unauthorized(AUTH_FAILED)
                if scope_req:
                    raise Unauthorized("Application credentials cannot request a scope.")
                user_id = app_cred.user_id
                if app_cred.expires_at:
                    expires_at = min(expires_at, app_cred.expires_at)
            elif "password" in methods:
                pw = identity.get("password") or {}
                ref = pw.get("user") if isinstance(pw, dict) else None
                if not isinstance(ref, dict) or "password" not in ref:
                    raise BadRequest("Invalid input for field 'identity/password/user': a user and a password "
                                     "are required.")
                user = await self._find_user(session, ref)
                ok = await self.check_secret(str(ref["password"]), user.password_hash if user else None)
                if not ok or not await self._user_usable(session, user):
                    raise Unauthorized(AUTH_FAILED)
                assert user is not None
                user_id = user.id
            else:
                token_ref = identity.get("token") or {}
                if not isinstance(token_ref, dict) or not token_ref.get("id"):
                    raise BadRequest("Invalid input for field 'identity/token': an id is required.")
                parent = await self.validate(str(token_ref["id"]))
                if parent.payload.application_credential_id:
                    raise Forbidden("A token from an application credential cannot be rescoped.")
                if parent.payload.trust_id:
                    raise Forbidden("A trust token cannot be rescoped.")
                if parent.scope.project is not None or parent.scope.domain is not None or parent.scope.system:
                    if not self.config.allow_rescope_scoped_token:
                        raise Forbidden("Rescoping a scoped token is not allowed.")
                user_id = parent.payload.user_id
                expires_at = parent.payload.expires_at
                # a rescoped token keeps how the user first proved who they are
                methods = [*parent.payload.methods, *[x for x in methods if x not in parent.payload.methods]]
                audit_ids = [audit_ids[0], parent.payload.audit_ids[-1]]
            payload = await self._scope_payload(session, user_id, scope_req, methods, now, expires_at, audit_ids,
                                                app_cred)
        token = self.codec.encode(payload)
        scope = await self._resolve(payload)
        if payload.trust_id:
            await self._consume_trust(payload.trust_id)
        return Token(token, payload, scope)

    async def _scope_payload(self, session: AsyncSession, user_id: str, scope_req: Any, methods: list[str],
                             now: datetime, expires_at: datetime, audit_ids: list[str],
                             app_cred: m.ApplicationCredential | None) -> TokenPayload:
        base = dict(user_id=user_id, methods=tuple(methods), issued_at=now, expires_at=expires_at,
                    audit_ids=tuple(audit_ids))
        if app_cred is not None:
            return TokenPayload(**base, project_id=app_cred.project_id, system=app_cred.system,
                                application_credential_id=app_cred.id)
        if scope_req in (None, "unscoped", {}):
            user = await session.get(m.User, user_id)
            if scope_req is None and user is not None and user.default_project_id:
                project = await session.get(m.Project, user.default_project_id)
                if project is not None and project.enabled and await self.effective_role_ids(
                        session, user_id, project=project):
                    return TokenPayload(**base, project_id=project.id)
            return TokenPayload(**base)
        if not isinstance(scope_req, dict):
            raise BadRequest("Invalid input for field 'scope': it must be an object.")
        # as Keystone: exactly one kind of scope
        if sum(k in scope_req for k in ("project", "domain", "unscoped", "system", "OS-TRUST:trust")) > 1:
            raise BadRequest("Expecting to find system, project, domain, OS-TRUST:trust or unscoped in scope.")
        if "unscoped" in scope_req:  # old keystoneauth sends {"unscoped": {}}
            return TokenPayload(**base)
        if "OS-TRUST:trust" in scope_req:
            ref = _auth_ref(scope_req["OS-TRUST:trust"], "scope/OS-TRUST:trust", ("id",))
            trust = await self.get_trust(session, str(ref.get("id")))
            if trust.trustee_user_id != user_id:
                raise Forbidden("The user is not the trustee of this trust.")
            if trust.remaining_uses is not None and trust.remaining_uses <= 0:
                raise NotFound(f"Could not find trust: {trust.id}.")
            trustor = await session.get(m.User, trust.trustor_user_id)
            if not await self._user_usable(session, trustor):
                raise Forbidden("The trustor is disabled.")
            expires = min(expires_at, trust.expires_at) if trust.expires_at else expires_at
            return TokenPayload(**{**base, "expires_at": expires}, trust_id=trust.id, project_id=trust.project_id)
        if "project" in scope_req:
            ref = _auth_ref(scope_req["project"], "scope/project")
            if ref.get("id"):
                project = await session.get(m.Project, ref["id"])
            else:
                dom = _auth_ref(ref.get("domain"), "scope/project/domain")
                if not ref.get("name") or not (dom.get("id") or dom.get("name")):
                    raise BadRequest("Invalid input for field 'scope/project': give an id, or a name and a domain.")
                domain_id = dom.get("id") or (await session.execute(
                    sa.select(m.Domain.id).where(m.Domain.name == dom["name"]))).scalar()
                project = (await session.execute(sa.select(m.Project).where(
                    m.Project.domain_id == domain_id, m.Project.name == ref["name"]))).scalar()
            if project is None:
                raise Unauthorized(f"Project {ref.get('id') or ref.get('name')} could not be found or the user has "
                                   "no access to it.")
            domain = await session.get(m.Domain, project.domain_id)
            if not project.enabled or not (domain and domain.enabled):
                raise Unauthorized(f"Project {project.id} is disabled.")
            if not await self.effective_role_ids(session, user_id, project=project):
                raise Unauthorized(f"User {user_id} has no access to project {project.id}.")
            return TokenPayload(**base, project_id=project.id)
        if "domain" in scope_req:
            ref = _auth_ref(scope_req["domain"], "scope/domain")
            if ref.get("id"):
                domain = await session.get(m.Domain, ref["id"])
            elif ref.get("name"):
                domain = (await session.execute(sa.select(m.Domain).where(m.Domain.name == ref["name"]))).scalar()
            else:
                raise BadRequest("Invalid input for field 'scope/domain': give an id or a name.")
            if domain is None or not domain.enabled:
                raise Unauthorized("The domain could not be found, is disabled, or the user has no access to it.")
            if not await self.effective_role_ids(session, user_id, domain_id=domain.id):
                raise Unauthorized(f"User {user_id} has no access to domain {domain.id}.")
            return TokenPayload(**base, domain_id=domain.id)
        if "system" in scope_req:
            ref = _auth_ref(scope_req["system"], "scope/system", ())
            if ref.get("all") is not True:
                raise BadRequest("Invalid input for field 'scope/system': only {\"all\": true} is supported.")
            if not await self.effective_role_ids(session, user_id, system=SYSTEM_ALL):
                raise Unauthorized(f"User {user_id} has no access to the system.")
            return TokenPayload(**base, system=SYSTEM_ALL)
        raise BadRequest("Invalid input for field 'scope': name a project, a domain, the system or a trust.")

    async def _consume_trust(self, trust_id: str) -> None:
        async with self.writing() as session:
            trust = await session.get(m.Trust, trust_id)
            if trust is not None and trust.remaining_uses is not None:
                if trust.remaining_uses <= 0:
                    raise Unauthorized("The trust has no remaining uses.")
                trust.remaining_uses -= 1

    async def _resolve(self, payload: TokenPayload) -> ScopeInfo:
        """What the token's scope means now; 401 if it no longer holds, or it is revoked."""
        cache = await self.cache()
        scope = cache.scopes.get(payload.scope_key)
        if scope is None:
            async with self.db.read() as session:
                scope = await self._resolve_uncached(session, payload)
            cache.scopes[payload.scope_key] = scope
        if _is_revoked(payload, scope, cache.events):
            raise Unauthorized("The request you have made requires authentication.")
        return scope

    async def _resolve_uncached(self, session: AsyncSession, p: TokenPayload) -> ScopeInfo:
        fail = Unauthorized("The request you have made requires authentication.")
        trust = None
        user_id = p.user_id
        if p.trust_id:
            trust = await session.get(m.Trust, p.trust_id)
            if trust is None or trust.deleted_at is not None:
                raise fail
            if trust.trustee_user_id != p.user_id:
                raise fail
            if trust.impersonation:
                user_id = trust.trustor_user_id
            trustor = await session.get(m.User, trust.trustor_user_id)
            if not await self._user_usable(session, trustor):
                raise fail
        user = await session.get(m.User, user_id)
        if not await self._user_usable(session, user) or (trust and not await self._user_usable(
                session, await session.get(m.User, trust.trustee_user_id))):
            raise fail
        assert user is not None
        user_domain = await self.get_domain(session, user.domain_id)
        project = domain = project_domain = None
        role_ids: set[str] = set()
        if p.project_id:
            project = await session.get(m.Project, p.project_id)
            if project is None or not project.enabled:
                raise fail
            project_domain = await session.get(m.Domain, project.domain_id)
            if project_domain is None or not project_domain.enabled:
                raise fail
            role_ids = await self.effective_role_ids(
                session, trust.trustor_user_id if trust else user.id, project=project)
        elif p.domain_id:
            domain = await session.get(m.Domain, p.domain_id)
            if domain is None or not domain.enabled:
                raise fail
            role_ids = await self.effective_role_ids(session, user.id, domain_id=domain.id)
        elif p.system:
            role_ids = await self.effective_role_ids(session, user.id, system=p.system)
        app_cred = None
        if p.application_credential_id:
            app_cred = await session.get(m.ApplicationCredential, p.application_credential_id)
            if app_cred is None or (app_cred.expires_at and app_cred.expires_at <= utcnow()):
                raise fail
            allowed = {r.id for r in await self.application_credential_roles(session, app_cred.id)}
            role_ids &= await self._implied_closure(session, allowed)
        if trust is not None:
            allowed = {r.id for r in await self.trust_roles(session, trust.id)}
            role_ids &= await self._implied_closure(session, allowed)
        if (project or domain or p.system) and not role_ids:
            raise fail
        roles = tuple(RoleRef(r.id, r.name, None if r.domain_id == m.NULL_DOMAIN else r.domain_id)
                      for r in await self.roles_by_ids(session, role_ids))
        admin_project = self.config.admin_project_name
        # As in Keystone: with no admin project configured, every token counts as one.
        is_admin_project = not admin_project or bool(
            project and project.name == admin_project and project.domain_id == self.config.admin_project_domain_id)
        return ScopeInfo(user=user, user_domain=user_domain, roles=roles, project=project,
                         project_domain=project_domain, domain=domain, system=p.system, trust=trust,
                         application_credential=app_cred, is_admin_project=is_admin_project)

    async def validate(self, token: str) -> Token:
        """The token, if authentic, unexpired, unrevoked and its scope still holds; 401 otherwise."""
        cache = await self.cache()
        known = cache.tokens.get(token)
        if known is not None and known.payload.expires_at > utcnow():
            return known
        payload = self.codec.decode(token)
        result = Token(token, payload, await self._resolve(payload))
        if cache is self._cache:
            cache.remember(result)
        return result

    async def cached_catalog(self) -> list[dict[str, Any]]:
        cache = await self.cache()
        if cache.catalog is None:
            async with self.db.read() as session:
                cache.catalog = await self.catalog(session)
        return cache.catalog

    # ------------------------------------------------------------------ bootstrap

    async def bootstrap(self, *, admin_password: str, demo_password: str, public_url: str, region: str,
                        services: Sequence[tuple[str, str, str, str]], reset_passwords: bool = False) -> None:
        """Idempotently make the default domain, the admin and demo accounts, roles and catalog.

        Passwords are set when an account is created, and reset only when ``reset_passwords``
        (an operator gave one explicitly), so a password changed through the API survives
        restarts. ``services`` lists (type, name, description, url) of the mounted services;
        their endpoints are (re)pointed at ``url`` for every interface.
        """
        self.keys.setup()
        self.credential_keys.setup()
        async with self.writing() as s:
            if await s.get(m.Domain, DEFAULT_DOMAIN_ID) is None:
                await self.create_domain(s, id=DEFAULT_DOMAIN_ID, name="Default",
                                         description="The default domain")
            roles = {}
            for name in ("admin", "manager", "member", "reader", "service"):
                role = (await s.execute(sa.select(m.Role).where(
                    m.Role.name == name, m.Role.domain_id == m.NULL_DOMAIN))).scalar()
                roles[name] = role or await self.create_role(s, name=name, options={"immutable": True})
            for prior, implied in (("admin", "manager"), ("manager", "member"), ("member", "reader")):
                if await s.get(m.ImpliedRole, (roles[prior].id, roles[implied].id)) is None:
                    s.add(m.ImpliedRole(prior_role_id=roles[prior].id, implied_role_id=roles[implied].id))
            await s.flush()
            projects = {}
            for project_name in ("admin", "demo", "service"):
                project = (await s.execute(sa.select(m.Project).where(
                    m.Project.domain_id == DEFAULT_DOMAIN_ID, m.Project.name == project_name))).scalar()
                projects[project_name] = project or await self.create_project(
                    s, name=project_name, domain_id=DEFAULT_DOMAIN_ID, description=f"The {project_name} project")
            users = {}
            for user_name, password in (("admin", admin_password), ("demo", demo_password)):
                user = (await s.execute(sa.select(m.User).where(
                    m.User.domain_id == DEFAULT_DOMAIN_ID, m.User.name == user_name))).scalar()
                if user is None:
                    user = await self.create_user(s, name=user_name, password=password)
                elif reset_passwords and not await self.check_secret(password, user.password_hash):
                    await self.update_user(s, user.id, {"password": password, "enabled": True})
                users[user_name] = user
            for user_name, target, target_id, role in (
                ("admin", "project", projects["admin"].id, "admin"),
                ("admin", "system", SYSTEM_ALL, "admin"),
                ("admin", "domain", DEFAULT_DOMAIN_ID, "admin"),
                ("demo", "project", projects["demo"].id, "member"),
            ):
                await self.create_grant(s, "user", users[user_name].id, target, target_id, roles[role].id)
            if await s.get(m.Region, region) is None:
                await self.create_region(s, id=region)
            existing = {svc.type: svc for svc in (await s.execute(sa.select(m.Service))).scalars()}
            for type_, name, description, url in services:
                svc = existing.get(type_) or await self.create_service(s, type=type_, name=name,
                                                                        description=description)
                endpoints = {e.interface: e for e in (await s.execute(sa.select(m.Endpoint).where(
                    m.Endpoint.service_id == svc.id))).scalars()}
                for interface in INTERFACES:
                    endpoint = endpoints.get(interface)
                    if endpoint is None:
                        await self.create_endpoint(s, service_id=svc.id, interface=interface, url=url,
                                                   region_id=region)
                    elif endpoint.url != url:
                        endpoint.url = url
            await s.flush()
