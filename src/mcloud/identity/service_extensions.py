"""Keystone's smaller APIs: the policy store and OS-ENDPOINT-POLICY, OS-EP-FILTER (endpoint groups
and project-endpoint associations), domain configuration, OS-EC2 credentials and OAuth1 consumers.

Functions take the :class:`~mcloud.identity.service.IdentityService` (for lookups and the
credential key repository) and a session from ``writing()`` or ``db.read()``, like the methods of
``service.py``. None of this changes what tokens or their catalogs contain.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from mcloud.identity import models as m
from mcloud.identity.service import DEFAULT_DOMAIN_ID, IdentityService

# ---------------------------------------------------------------------- policies


async def get_policy(session: AsyncSession, policy_id: str) -> m.Policy:
    policy = await session.get(m.Policy, policy_id)
    if policy is None:
        raise NotFound(f"Could not find policy: {policy_id}.")
    return policy


async def create_policy(session: AsyncSession, *, blob: str, type: str) -> m.Policy:
    policy = m.Policy(blob=blob, type=type)
    session.add(policy)
    await session.flush()
    return policy


async def list_policies(session: AsyncSession, type: str | None = None) -> list[m.Policy]:
    q = sa.select(m.Policy).order_by(m.Policy.id)
    if type is not None:
        q = q.where(m.Policy.type == type)
    return list((await session.execute(q)).scalars())


async def update_policy(session: AsyncSession, policy_id: str, changes: dict[str, Any]) -> m.Policy:
    if changes.get("id") is not None and changes["id"] != policy_id:
        raise BadRequest("Cannot change policy ID.")
    changes.pop("id", None)
    policy = await get_policy(session, policy_id)
    for key, value in changes.items():
        setattr(policy, key, value)
    await session.flush()
    return policy


async def delete_policy(session: AsyncSession, policy_id: str) -> None:
    await session.delete(await get_policy(session, policy_id))


# ---------------------------------------------------------------------- OS-ENDPOINT-POLICY


def _association_target(endpoint_id: str | None, service_id: str | None, region_id: str | None) -> str:
    if endpoint_id is not None:
        return f"endpoint/{endpoint_id}"
    if region_id is not None:
        return f"service/{service_id}/region/{region_id}"
    return f"service/{service_id}"


async def create_policy_association(session: AsyncSession, policy_id: str, *, endpoint_id: str | None = None,
                                    service_id: str | None = None, region_id: str | None = None) -> None:
    """Associate the policy with an endpoint, a service, or a service in a region (replacing the
    policy that target had, as Keystone does)."""
    target = _association_target(endpoint_id, service_id, region_id)
    row = await session.get(m.PolicyAssociation, target)
    if row is None:
        session.add(m.PolicyAssociation(target=target, policy_id=policy_id, endpoint_id=endpoint_id,
                                        service_id=service_id, region_id=region_id))
    else:
        row.policy_id = policy_id
    await session.flush()


async def check_policy_association(session: AsyncSession, policy_id: str, *, endpoint_id: str | None = None,
                                   service_id: str | None = None, region_id: str | None = None) -> None:
    row = await session.get(m.PolicyAssociation, _association_target(endpoint_id, service_id, region_id))
    if row is None or row.policy_id != policy_id:
        raise NotFound("Could not find policy association.")


async def delete_policy_association(session: AsyncSession, policy_id: str, *, endpoint_id: str | None = None,
                                    service_id: str | None = None, region_id: str | None = None) -> None:
    await session.execute(sa.delete(m.PolicyAssociation).where(
        m.PolicyAssociation.target == _association_target(endpoint_id, service_id, region_id),
        m.PolicyAssociation.policy_id == policy_id))


async def list_endpoints_for_policy(session: AsyncSession, policy_id: str) -> list[m.Endpoint]:
    """The endpoints the policy applies to: named ones, a service's, and a service's in a region
    and the regions below it."""
    rows = (await session.execute(sa.select(m.PolicyAssociation).where(
        m.PolicyAssociation.policy_id == policy_id).order_by(m.PolicyAssociation.target))).scalars().all()
    endpoints = (await session.execute(sa.select(m.Endpoint).order_by(m.Endpoint.id))).scalars().all()
    children: dict[str | None, list[str]] = {}
    for region in (await session.execute(sa.select(m.Region))).scalars():
        children.setdefault(region.parent_region_id, []).append(region.id)
    found: dict[str, m.Endpoint] = {}
    for row in rows:
        if row.endpoint_id is not None:
            matched = [e for e in endpoints if e.id == row.endpoint_id]
        elif row.region_id is None:
            matched = [e for e in endpoints if e.service_id == row.service_id]
        else:
            regions, todo = set(), [row.region_id]
            while todo:
                region_id = todo.pop()
                if region_id not in regions:
                    regions.add(region_id)
                    todo.extend(children.get(region_id, []))
            matched = [e for e in endpoints if e.service_id == row.service_id and e.region_id in regions]
        for e in matched:
            found.setdefault(e.id, e)
    return list(found.values())


async def policy_for_endpoint(session: AsyncSession, endpoint: m.Endpoint) -> m.Policy:
    """The endpoint's own policy, else its service's in its region or the nearest region above,
    else its service's."""

    async def associated(target: str) -> m.Policy | None:
        row = await session.get(m.PolicyAssociation, target)
        return None if row is None else await get_policy(session, row.policy_id)

    policy = await associated(f"endpoint/{endpoint.id}")
    region_id, seen = endpoint.region_id, set()
    while policy is None and region_id is not None and region_id not in seen:
        seen.add(region_id)
        policy = await associated(f"service/{endpoint.service_id}/region/{region_id}")
        region = await session.get(m.Region, region_id)
        region_id = region.parent_region_id if region is not None else None
    if policy is None:
        policy = await associated(f"service/{endpoint.service_id}")
    if policy is None:
        raise NotFound(f"No policy is associated with endpoint {endpoint.id}.")
    return policy


# ---------------------------------------------------------------------- OS-EP-FILTER: endpoint groups

FILTER_KEYS = ("service_id", "interface", "region_id")


async def get_endpoint_group(session: AsyncSession, group_id: str) -> m.EndpointGroup:
    group = await session.get(m.EndpointGroup, group_id)
    if group is None:
        raise NotFound(f"Could not find Endpoint Group: {group_id}.")
    return group


def _check_filters(filters: dict[str, Any]) -> None:
    if set(filters) - set(FILTER_KEYS):
        raise BadRequest(f"Invalid input for field 'filters': the filters are {' or '.join(FILTER_KEYS)}.")


async def create_endpoint_group(session: AsyncSession, *, name: str, filters: dict[str, Any],
                                description: str | None = None) -> m.EndpointGroup:
    if not filters:
        raise BadRequest("filters field is required and cannot be empty.")
    _check_filters(filters)
    group = m.EndpointGroup(name=name, description=description, filters=dict(filters))
    session.add(group)
    await session.flush()
    return group


async def list_endpoint_groups(session: AsyncSession, name: str | None = None) -> list[m.EndpointGroup]:
    q = sa.select(m.EndpointGroup).order_by(m.EndpointGroup.name, m.EndpointGroup.id)
    if name is not None:
        q = q.where(m.EndpointGroup.name == name)
    return list((await session.execute(q)).scalars())


async def update_endpoint_group(session: AsyncSession, group_id: str, changes: dict[str, Any]) -> m.EndpointGroup:
    group = await get_endpoint_group(session, group_id)
    if "filters" in changes:
        _check_filters(changes["filters"])
        changes["filters"] = dict(changes["filters"])
    for key, value in changes.items():
        setattr(group, key, value)
    await session.flush()
    return group


async def delete_endpoint_group(session: AsyncSession, group_id: str) -> None:
    group = await get_endpoint_group(session, group_id)
    await session.execute(sa.delete(m.ProjectEndpointGroup).where(
        m.ProjectEndpointGroup.endpoint_group_id == group_id))
    await session.delete(group)


async def endpoints_in_group(session: AsyncSession, group: m.EndpointGroup) -> list[m.Endpoint]:
    """The endpoints whose attributes equal every filter of the group."""
    q = sa.select(m.Endpoint).order_by(m.Endpoint.id)
    for key, value in (group.filters or {}).items():
        column = getattr(m.Endpoint, key)
        q = q.where(column.is_(None) if value is None else column == value)
    return list((await session.execute(q)).scalars())


async def add_endpoint_group_to_project(i: IdentityService, session: AsyncSession, group_id: str,
                                        project_id: str) -> None:
    await i.get_project(session, project_id)
    await get_endpoint_group(session, group_id)
    if await session.get(m.ProjectEndpointGroup, (group_id, project_id)) is not None:
        raise Conflict("Conflict occurred attempting to store project_endpoint_group - Duplicate entry.")
    session.add(m.ProjectEndpointGroup(endpoint_group_id=group_id, project_id=project_id))
    await session.flush()


async def get_endpoint_group_in_project(i: IdentityService, session: AsyncSession, group_id: str,
                                        project_id: str) -> m.ProjectEndpointGroup:
    await i.get_project(session, project_id)
    await get_endpoint_group(session, group_id)
    row = await session.get(m.ProjectEndpointGroup, (group_id, project_id))
    if row is None:
        raise NotFound("Endpoint Group Project Association not found.")
    return row


async def remove_endpoint_group_from_project(i: IdentityService, session: AsyncSession, group_id: str,
                                             project_id: str) -> None:
    await session.delete(await get_endpoint_group_in_project(i, session, group_id, project_id))


async def projects_for_endpoint_group(session: AsyncSession, group_id: str) -> list[m.Project]:
    return list((await session.execute(sa.select(m.Project).join(
        m.ProjectEndpointGroup, m.ProjectEndpointGroup.project_id == m.Project.id).where(
        m.ProjectEndpointGroup.endpoint_group_id == group_id).order_by(m.Project.name))).scalars())


async def endpoint_groups_for_project(i: IdentityService, session: AsyncSession,
                                      project_id: str) -> list[m.EndpointGroup]:
    await i.get_project(session, project_id)
    return list((await session.execute(sa.select(m.EndpointGroup).join(
        m.ProjectEndpointGroup, m.ProjectEndpointGroup.endpoint_group_id == m.EndpointGroup.id).where(
        m.ProjectEndpointGroup.project_id == project_id).order_by(m.EndpointGroup.name))).scalars())


# ---------------------------------------------------------------------- OS-EP-FILTER: project endpoints


async def add_endpoint_to_project(i: IdentityService, session: AsyncSession, project_id: str,
                                  endpoint_id: str) -> None:
    await i._get(session, m.Endpoint, endpoint_id, "endpoint")
    await i.get_project(session, project_id)
    if await session.get(m.ProjectEndpoint, (endpoint_id, project_id)) is not None:
        raise Conflict("Conflict occurred attempting to store project_endpoint - Duplicate entry.")
    session.add(m.ProjectEndpoint(endpoint_id=endpoint_id, project_id=project_id))
    await session.flush()


async def _project_endpoint(session: AsyncSession, project_id: str, endpoint_id: str) -> m.ProjectEndpoint:
    row = await session.get(m.ProjectEndpoint, (endpoint_id, project_id))
    if row is None:
        raise NotFound(f"Endpoint {endpoint_id} not found in project {project_id}.")
    return row


async def check_endpoint_in_project(i: IdentityService, session: AsyncSession, project_id: str,
                                    endpoint_id: str) -> None:
    await i._get(session, m.Endpoint, endpoint_id, "endpoint")
    await i.get_project(session, project_id)
    await _project_endpoint(session, project_id, endpoint_id)


async def remove_endpoint_from_project(session: AsyncSession, project_id: str, endpoint_id: str) -> None:
    await session.delete(await _project_endpoint(session, project_id, endpoint_id))


async def projects_for_endpoint(i: IdentityService, session: AsyncSession, endpoint_id: str) -> list[m.Project]:
    await i._get(session, m.Endpoint, endpoint_id, "endpoint")
    return list((await session.execute(sa.select(m.Project).join(
        m.ProjectEndpoint, m.ProjectEndpoint.project_id == m.Project.id).where(
        m.ProjectEndpoint.endpoint_id == endpoint_id).order_by(m.Project.name))).scalars())


async def endpoints_for_project(i: IdentityService, session: AsyncSession, project_id: str) -> list[m.Endpoint]:
    """The endpoints associated with the project directly, then those of its endpoint groups."""
    await i.get_project(session, project_id)
    found: dict[str, m.Endpoint] = {}
    for e in (await session.execute(sa.select(m.Endpoint).join(
            m.ProjectEndpoint, m.ProjectEndpoint.endpoint_id == m.Endpoint.id).where(
            m.ProjectEndpoint.project_id == project_id).order_by(m.Endpoint.id))).scalars():
        found[e.id] = e
    for group in await endpoint_groups_for_project(i, session, project_id):
        for e in await endpoints_in_group(session, group):
            found.setdefault(e.id, e)
    return list(found.values())


# ---------------------------------------------------------------------- domain configuration

#: What a domain's configuration may hold: Keystone's whitelisted options (returned by GET) ...
WHITELISTED_OPTIONS: dict[str, tuple[str, ...]] = {
    "identity": ("driver", "list_limit"),
    "ldap": (
        "url", "user", "suffix", "query_scope", "page_size", "alias_dereferencing", "debug_level",
        "chase_referrals", "user_tree_dn", "user_filter", "user_objectclass", "user_id_attribute",
        "user_name_attribute", "user_mail_attribute", "user_description_attribute", "user_pass_attribute",
        "user_enabled_attribute", "user_enabled_invert", "user_enabled_mask", "user_enabled_default",
        "user_attribute_ignore", "user_default_project_id_attribute", "user_enabled_emulation",
        "user_enabled_emulation_dn", "user_enabled_emulation_use_group_config",
        "user_additional_attribute_mapping", "group_tree_dn", "group_filter", "group_objectclass",
        "group_id_attribute", "group_name_attribute", "group_members_are_ids", "group_member_attribute",
        "group_desc_attribute", "group_attribute_ignore", "group_additional_attribute_mapping",
        "tls_cacertfile", "tls_cacertdir", "use_tls", "tls_req_cert", "use_pool", "pool_size",
        "pool_retry_max", "pool_retry_delay", "pool_connection_timeout", "pool_connection_lifetime",
        "use_auth_pool", "auth_pool_size", "auth_pool_connection_lifetime",
    ),
}
#: ... and its sensitive ones (stored encrypted, never returned).
SENSITIVE_OPTIONS: dict[str, tuple[str, ...]] = {"identity": (), "ldap": ("password",)}

#: The defaults ``GET /v3/domains/config/default`` reports: Keystone's, except identity's
#: list_limit, which is this cloud's own (see :func:`config_defaults`).
LDAP_DEFAULTS: dict[str, Any] = {
    "url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com", "query_scope": "one",
    "page_size": 0, "alias_dereferencing": "default", "debug_level": None, "chase_referrals": None,
    "user_tree_dn": None, "user_filter": None, "user_objectclass": "inetOrgPerson",
    "user_id_attribute": "cn", "user_name_attribute": "sn", "user_mail_attribute": "mail",
    "user_description_attribute": "description", "user_pass_attribute": "userPassword",
    "user_enabled_attribute": "enabled", "user_enabled_invert": False, "user_enabled_mask": 0,
    "user_enabled_default": "True", "user_attribute_ignore": ["default_project_id"],
    "user_default_project_id_attribute": None, "user_enabled_emulation": False,
    "user_enabled_emulation_dn": None, "user_enabled_emulation_use_group_config": False,
    "user_additional_attribute_mapping": [], "group_tree_dn": None, "group_filter": None,
    "group_objectclass": "groupOfNames", "group_id_attribute": "cn", "group_name_attribute": "ou",
    "group_members_are_ids": False, "group_member_attribute": "member",
    "group_desc_attribute": "description", "group_attribute_ignore": [],
    "group_additional_attribute_mapping": [], "tls_cacertfile": None, "tls_cacertdir": None,
    "use_tls": False, "tls_req_cert": "demand", "use_pool": True, "pool_size": 10, "pool_retry_max": 3,
    "pool_retry_delay": 0.1, "pool_connection_timeout": -1, "pool_connection_lifetime": 600,
    "use_auth_pool": True, "auth_pool_size": 100, "auth_pool_connection_lifetime": 60,
}

SECURITY_COMPLIANCE = "security_compliance"
SECURITY_COMPLIANCE_READABLE = ("password_regex", "password_regex_description")


def _invalid_config(reason: str) -> Forbidden:
    return Forbidden(f"Invalid domain specific configuration: {reason}.")


def _not_found(domain_id: str, what: str) -> NotFound:
    return NotFound(f"Could not find {what} in domain configuration for domain {domain_id}.")


def _what(group: str | None, option: str | None) -> str:
    if option:
        return f"option {option} in group {group}"
    if group:
        return f"group {group}"
    return "any options"


def _check_group_and_option(group: str | None, option: str | None) -> None:
    if group and group not in WHITELISTED_OPTIONS and group not in SENSITIVE_OPTIONS:
        raise _invalid_config(f"Group {group} is not supported for domain specific configurations")
    if option and option not in WHITELISTED_OPTIONS.get(group or "", ()) \
            and option not in SENSITIVE_OPTIONS.get(group or "", ()):
        raise _invalid_config(f"Option {option} in group {group} is not supported for domain specific "
                              "configurations")


def _check_config(config: dict[str, Any]) -> None:
    if not config:
        raise _invalid_config("No options specified")
    for group, options in config.items():
        if not options or not isinstance(options, dict):
            raise _invalid_config(f"The value of group {group} specified in the config should be a "
                                  "dictionary of options")
        for option in options:
            _check_group_and_option(group, option)


async def _options(session: AsyncSession, domain_id: str, group: str | None = None, option: str | None = None,
                   sensitive: bool | None = False) -> list[m.DomainConfigOption]:
    q = sa.select(m.DomainConfigOption).where(m.DomainConfigOption.domain_id == domain_id)
    if group is not None:
        q = q.where(m.DomainConfigOption.config_group == group)
    if option is not None:
        q = q.where(m.DomainConfigOption.config_option == option)
    if sensitive is not None:
        q = q.where(m.DomainConfigOption.sensitive == sensitive)
    return list((await session.execute(
        q.order_by(m.DomainConfigOption.config_group, m.DomainConfigOption.config_option))).scalars())


def _as_config(rows: list[m.DomainConfigOption]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for row in rows:
        config.setdefault(row.config_group, {})[row.config_option] = row.value
    return config


async def _store(i: IdentityService, session: AsyncSession, domain_id: str, config: dict[str, Any]) -> None:
    for group, options in config.items():
        for option, value in options.items():
            sensitive = option in SENSITIVE_OPTIONS.get(group, ())
            stored = i.encrypt_blob(json.dumps(value)) if sensitive else value
            row = await session.get(m.DomainConfigOption, (domain_id, group, option))
            if row is None:
                session.add(m.DomainConfigOption(domain_id=domain_id, config_group=group, config_option=option,
                                                 value=stored, sensitive=sensitive))
            else:
                row.value, row.sensitive = stored, sensitive
    await session.flush()


async def create_domain_config(i: IdentityService, session: AsyncSession, domain_id: str,
                               config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Replace the domain's configuration: (the whitelisted options now set, whether it had none)."""
    _check_config(config)
    created = not await _options(session, domain_id, sensitive=None)
    await session.execute(sa.delete(m.DomainConfigOption).where(m.DomainConfigOption.domain_id == domain_id))
    await _store(i, session, domain_id, config)
    return _as_config(await _options(session, domain_id)), created


async def get_domain_config(session: AsyncSession, domain_id: str, group: str | None = None,
                            option: str | None = None) -> dict[str, Any]:
    """The whitelisted options set (all, a group's, or one: ``{option: value}``); 404 when none is."""
    _check_group_and_option(group, option)
    rows = await _options(session, domain_id, group, option)
    if not rows:
        raise _not_found(domain_id, _what(group, option))
    if option:
        return {rows[0].config_option: rows[0].value}
    return _as_config(rows)


async def update_domain_config(i: IdentityService, session: AsyncSession, domain_id: str, config: dict[str, Any],
                               group: str | None = None, option: str | None = None) -> dict[str, Any]:
    """Merge ``config`` in. At a group (or option) path the body holds that group (or option) only,
    and it must be set already."""
    update = {group: config} if group and option else config
    _check_config(update)
    _check_group_and_option(group, option)
    if group:
        if len(update) != 1 or (option and len(update.get(group) or {}) != 1):
            if option:
                raise _invalid_config(f"Trying to update option {option} in group {group}, so that, and only "
                                      "that, option must be specified in the config")
            raise _invalid_config(f"Trying to update group {group}, so that, and only that, group must be "
                                  "specified in the config")
        if group not in update:
            raise _invalid_config(f"request to update group {group}, but config provided contains group "
                                  f"{next(iter(update))} instead")
        if option and option not in update[group]:
            raise _invalid_config(f"Trying to update option {option} in group {group}, but config provided "
                                  f"contains option {next(iter(update[group]))} instead")
        if not await _options(session, domain_id, group, option, sensitive=None):
            raise _not_found(domain_id, _what(group, option))
    await _store(i, session, domain_id, update)
    return await get_domain_config(session, domain_id)


async def delete_domain_config(session: AsyncSession, domain_id: str, group: str | None = None,
                               option: str | None = None) -> None:
    _check_group_and_option(group, option)
    if group and not await _options(session, domain_id, group, option, sensitive=None):
        raise _not_found(domain_id, _what(group, option))
    q = sa.delete(m.DomainConfigOption).where(m.DomainConfigOption.domain_id == domain_id)
    if group:
        q = q.where(m.DomainConfigOption.config_group == group)
    if option:
        q = q.where(m.DomainConfigOption.config_option == option)
    await session.execute(q)


def config_defaults(i: IdentityService, group: str | None = None, option: str | None = None) -> dict[str, Any]:
    """The defaults of the whitelisted options: all, a group's, or one (``{option: value}``)."""
    _check_group_and_option(group, option)
    defaults = {"identity": {"driver": "sql", "list_limit": i.config.list_limit or None}, "ldap": dict(LDAP_DEFAULTS)}
    if option:
        if option not in WHITELISTED_OPTIONS.get(group or "", ()):
            raise _invalid_config(f"Reading the default for option {option} in group {group} is not supported")
        return {option: defaults[group or ""][option]}
    if group:
        return {group: defaults[group]}
    return defaults


def security_compliance_config(domain_id: str, option: str | None = None) -> dict[str, Any]:
    """What anyone may read of the password rules: this cloud sets no password regex."""
    if domain_id != DEFAULT_DOMAIN_ID:
        raise _invalid_config("Reading security compliance information for any domain other than the default "
                              "domain is not allowed or supported")
    values = {"password_regex": None, "password_regex_description": None}
    if option:
        if option not in SECURITY_COMPLIANCE_READABLE:
            raise _invalid_config("Reading security compliance values other than password_regex and "
                                  "password_regex_description is not allowed")
        return {option: values[option]}
    return {SECURITY_COMPLIANCE: values}


# ---------------------------------------------------------------------- OS-EC2 credentials

EC2 = "ec2"


def ec2_blob(i: IdentityService, cred: m.Credential) -> dict[str, Any]:
    try:
        blob = json.loads(i.decrypt_blob(cred.encrypted_blob))
    except ValueError:
        blob = {}
    return blob if isinstance(blob, dict) else {}


async def create_ec2_credential(i: IdentityService, session: AsyncSession, user_id: str, project_id: str, *,
                                trust_id: str | None = None,
                                app_cred_id: str | None = None) -> tuple[m.Credential, dict[str, Any]]:
    """A new access/secret pair for the user on the project, kept as an ``ec2`` credential."""
    await i.get_user(session, user_id)
    await i.get_project(session, project_id)
    blob = {"access": uuid.uuid4().hex, "secret": uuid.uuid4().hex, "trust_id": trust_id,
            "app_cred_id": app_cred_id}
    cred = await i.create_credential(session, user_id=user_id, type=EC2, blob=json.dumps(blob),
                                     project_id=project_id)
    return cred, blob


async def list_ec2_credentials(i: IdentityService, session: AsyncSession,
                               user_id: str) -> list[tuple[m.Credential, dict[str, Any]]]:
    await i.get_user(session, user_id)
    creds = (await session.execute(sa.select(m.Credential).where(
        m.Credential.user_id == user_id, m.Credential.type == EC2).order_by(m.Credential.id))).scalars()
    return [(c, ec2_blob(i, c)) for c in creds]


async def find_ec2_credential(session: AsyncSession, access: str) -> m.Credential:
    """The credential stored for an access key, by its id (the key's SHA-256); 404 without one."""
    cred_id = hashlib.sha256(access.encode()).hexdigest()
    cred = await session.get(m.Credential, cred_id)
    if cred is None:
        raise NotFound(f"Could not find credential: {cred_id}.")
    return cred


async def get_ec2_credential(i: IdentityService, session: AsyncSession, user_id: str,
                             cred: m.Credential) -> dict[str, Any]:
    await i.get_user(session, user_id)
    if cred.type != EC2:
        raise Unauthorized("EC2 access key not found.")
    if cred.user_id != user_id:
        raise NotFound(f"Could not find credential: {cred.id}.")
    return ec2_blob(i, cred)


# ---------------------------------------------------------------------- OAuth1 consumers


async def get_consumer(session: AsyncSession, consumer_id: str) -> m.OAuth1Consumer:
    consumer = await session.get(m.OAuth1Consumer, consumer_id)
    if consumer is None:
        raise NotFound("Consumer not found.")
    return consumer


async def create_consumer(i: IdentityService, session: AsyncSession, *,
                          description: str | None = None) -> tuple[m.OAuth1Consumer, str]:
    """A consumer and its secret, which is shown this once."""
    secret = secrets.token_hex(16)
    consumer = m.OAuth1Consumer(description=description, encrypted_secret=i.encrypt_blob(secret))
    session.add(consumer)
    await session.flush()
    return consumer, secret


async def list_consumers(session: AsyncSession) -> list[m.OAuth1Consumer]:
    return list((await session.execute(sa.select(m.OAuth1Consumer).order_by(m.OAuth1Consumer.id))).scalars())


async def update_consumer(session: AsyncSession, consumer_id: str, changes: dict[str, Any]) -> m.OAuth1Consumer:
    if changes.get("id") is not None and changes["id"] != consumer_id:
        raise BadRequest("Cannot change ID.")
    changes.pop("id", None)
    consumer = await get_consumer(session, consumer_id)
    for key, value in changes.items():
        setattr(consumer, key, value)
    await session.flush()
    return consumer


async def delete_consumer(session: AsyncSession, consumer_id: str) -> None:
    await session.delete(await get_consumer(session, consumer_id))
