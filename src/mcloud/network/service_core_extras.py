"""The rest of CORE's Neutron resources: RBAC policies, subnet pools, address scopes, segments,
quotas, tags and availability zones. ``NetworkService.extras`` is the one :class:`Extras`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import ipam
from mcloud.network import models as m
from mcloud.network import schemas as s
from mcloud.network.errors_core import (bad_request, conflict, invalid_attribute, invalid_input, not_found,
                                        over_quota)

if TYPE_CHECKING:
    from mcloud.network.service import Caller, NetworkService, Page

#: Neutron's default quotas for CORE's resources (L3 adds its own through quota_defaults)
QUOTA_DEFAULTS = {"network": 100, "subnet": 100, "port": 500, "subnetpool": -1, "rbac_policy": 10}
#: the tables CORE counts its resources in
USAGE_MODELS: dict[str, Any] = {"network": m.Network, "subnet": m.Subnet, "port": m.Port, "subnetpool": m.SubnetPool,
                                "rbac_policy": m.RBACPolicy}
RBAC_ACTIONS = {"network": ("access_as_shared", "access_as_external"), "subnetpool": ("access_as_shared",),
                "address_scope": ("access_as_shared",)}
#: tag collections CORE serves itself: collection -> model
CORE_TAGGED = {"networks": m.Network, "subnets": m.Subnet, "ports": m.Port, "subnetpools": m.SubnetPool}
#: tag collections served after L3's tag_target hook
L3_TAGGED = ("routers", "floatingips", "security-groups", "security_groups", "policies", "trunks")
MAX_TAGS = 50


def _standard(row: Any) -> dict[str, Any]:
    from mcloud.network.service import standard
    return standard(row)


class Extras:
    def __init__(self, net: NetworkService):
        self.net = net

    @property
    def db(self) -> Any:
        return self.net.db

    # ------------------------------------------------------------------ RBAC

    async def add_rbac(self, session: AsyncSession, project_id: str, object_type: str, object_id: str,
                       action: str, target: str) -> m.RBACPolicy:
        from mcloud.network.service import new_id
        exists = (await session.execute(sa.select(m.RBACPolicy).where(
            m.RBACPolicy.object_type == object_type, m.RBACPolicy.object_id == object_id,
            m.RBACPolicy.action == action, m.RBACPolicy.target_project == target))).scalar()
        if exists is not None:
            return exists
        row = m.RBACPolicy(id=new_id(), project_id=project_id, object_type=object_type, object_id=object_id,
                           action=action, target_project=target)
        session.add(row)
        await session.flush()
        return row

    async def _users_losing(self, session: AsyncSession, net: m.Network, action: str, target: str,
                            exclude_id: str | None = None) -> bool:
        """Whether removing (object, action, target) takes a network from a project that uses it."""
        r = m.RBACPolicy
        gone = r.id == exclude_id if exclude_id else r.target_project == target
        remaining = set((await session.execute(sa.select(r.target_project).where(
            r.object_type == "network", r.object_id == net.id, r.action == action, sa.not_(gone)))).scalars())
        if "*" in remaining:
            return False
        if action == "access_as_shared":
            users = sa.select(m.Port.project_id).where(m.Port.network_id == net.id,
                                                       m.Port.project_id != net.project_id,
                                                       m.Port.device_owner.not_like("network:%"))
            users = users.union(sa.select(m.Subnet.project_id).where(m.Subnet.network_id == net.id,
                                                                     m.Subnet.project_id != net.project_id))
        else:
            users = sa.select(m.Port.project_id).where(m.Port.network_id == net.id,
                                                       m.Port.project_id != net.project_id,
                                                       m.Port.device_owner == "network:router_gateway")
        projects = set((await session.execute(users)).scalars())
        if target != "*":
            projects &= {target}
        return bool(projects - remaining)

    async def remove_wildcard(self, session: AsyncSession, net: m.Network, action: str) -> None:
        if await self._users_losing(session, net, action, "*"):
            if action == "access_as_shared":
                raise conflict("InvalidSharedSetting", f"Unable to reconfigure sharing settings for network "
                                                       f"{net.id}. Multiple tenants are using it.")
            raise conflict("RbacPolicyInUse", f"RBAC policy on object {net.id} cannot be removed because other "
                                              f"objects depend on it.")
        r = m.RBACPolicy.__table__
        await session.execute(sa.delete(r).where(r.c.object_type == "network", r.c.object_id == net.id,
                                                 r.c.action == action, r.c.target_project == "*"))
        if action == "access_as_external":
            rest = (await session.execute(sa.select(r.c.id).where(
                r.c.object_type == "network", r.c.object_id == net.id, r.c.action == action).limit(1))).first()
            net.external = rest is not None

    def render_rbac(self, row: m.RBACPolicy) -> dict[str, Any]:
        return {"id": row.id, "project_id": row.project_id, "tenant_id": row.project_id,
                "object_type": row.object_type, "object_id": row.object_id, "action": row.action,
                "target_tenant": row.target_project, "target_project": row.target_project}

    def _rbac_visibility(self, caller: Caller) -> Any:
        if caller.is_admin:
            return sa.true()
        return m.RBACPolicy.project_id == caller.project_id

    async def list_rbac(self, caller: Caller, params: dict[str, list[str]], limit: int | None, marker: str | None,
                        page_reverse: bool) -> Page:
        from mcloud.network.service import Page, _str_filter, paged, sort_keys, sql_filters
        r = m.RBACPolicy
        filters = {"id": _str_filter(r.id), "object_type": _str_filter(r.object_type),
                   "object_id": _str_filter(r.object_id), "action": _str_filter(r.action),
                   "target_tenant": _str_filter(r.target_project), "target_project": _str_filter(r.target_project),
                   "project_id": _str_filter(r.project_id), "tenant_id": _str_filter(r.project_id)}
        conditions = sql_filters(params, filters, "rbac_policy")
        sort = sort_keys(params, {"id": r.id, "object_type": r.object_type, "object_id": r.object_id,
                                  "action": r.action, "target_tenant": r.target_project,
                                  "project_id": r.project_id})
        async with self.db.read() as session:
            rows, more = await paged(session, sa.select(r).where(self._rbac_visibility(caller), *conditions), r.id,
                                     sort, limit, marker, page_reverse)
        return Page([self.render_rbac(x) for x in rows], more, rows[0].id if rows else None,
                    rows[-1].id if rows else None)

    async def _rbac_row(self, session: AsyncSession, caller: Caller, rbac_id: str) -> m.RBACPolicy:
        row = (await session.execute(sa.select(m.RBACPolicy).where(
            m.RBACPolicy.id == rbac_id, self._rbac_visibility(caller)))).scalar() if s.is_uuid(rbac_id) else None
        if row is None:
            raise not_found("RBAC policy", rbac_id, "RbacPolicyNotFound")
        return row

    async def show_rbac(self, caller: Caller, rbac_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            row = await self._rbac_row(session, caller, rbac_id)
            caller.enforce("get_rbac_policy", {"project_id": row.project_id, "tenant_id": row.project_id})
            return self.render_rbac(row)

    async def _rbac_object(self, session: AsyncSession, caller: Caller, object_type: str, object_id: Any) -> Any:
        model = {"network": m.Network, "subnetpool": m.SubnetPool, "address_scope": m.AddressScope}[object_type]
        kind = {"network": "Network", "subnetpool": "Subnet pool", "address_scope": "Address scope"}[object_type]
        row = await session.get(model, object_id, with_for_update=True) if s.is_uuid(object_id) else None
        if row is None or not (caller.is_admin or row.project_id == caller.project_id):
            raise not_found(kind, str(object_id), {"network": "NetworkNotFound", "subnetpool": "SubnetPoolNotFound",
                                                   "address_scope": "AddressScopeNotFound"}[object_type])
        return row

    async def create_rbac(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        object_type = s.required(body, "object_type")
        if object_type not in RBAC_ACTIONS:
            raise invalid_attribute("object_type", f"'{object_type}' is not in {sorted(RBAC_ACTIONS)}")
        object_id = s.required(body, "object_id")
        action = s.required(body, "action")
        target = body.get("target_tenant", body.get("target_project"))
        if target is None:
            raise bad_request("Failed to parse request. Required attribute 'target_tenant' not specified")
        s.string(target, "target_tenant")
        if action not in RBAC_ACTIONS[object_type]:
            raise invalid_input(f"Action '{action}' for object type '{object_type}' is not supported" if isinstance(
                action, str) else f"'{action}' is not a valid action")
        project = s.project_of(body, caller.project_id, caller.is_admin)
        ctx = {"project_id": project, "tenant_id": project, "target_tenant": target, "target_project": target}
        caller.enforce("create_rbac_policy", ctx)
        caller.enforce("create_rbac_policy:target_tenant", ctx)
        async with self.net.write() as session:
            obj = await self._rbac_object(session, caller, object_type, object_id)
            await self.check_quota(session, project, "rbac_policy")
            r = m.RBACPolicy
            dup = (await session.execute(sa.select(r.id).where(r.object_type == object_type, r.object_id == obj.id,
                                                               r.action == action, r.target_project == target))).first()
            if dup is not None:
                raise conflict("DuplicateRbacPolicy", "An RBAC policy already exists with those values.")
            row = await self.add_rbac(session, project, object_type, obj.id, action, target)
            if object_type == "network":
                if action == "access_as_shared" and target == "*":
                    obj.shared = True
                if action == "access_as_external":
                    obj.external = True
                obj.touch()
                await self._network_changed(session, obj)
            elif target == "*":
                obj.shared = True
            return self.render_rbac(row)

    async def _network_changed(self, session: AsyncSession, net: m.Network) -> None:
        views = list((await self.net.network_views(session, [net])).values())
        self.net.after_commit(session, lambda: self.net._ensure_networks(views))

    async def _check_removal(self, session: AsyncSession, row: m.RBACPolicy) -> None:
        if row.object_type == "network":
            net = await session.get(m.Network, row.object_id)
            if net is not None and await self._users_losing(session, net, row.action, row.target_project, row.id):
                raise conflict("RbacPolicyInUse", f"RBAC policy on object {row.object_id} cannot be removed because "
                                                  f"other objects depend on it.")
        elif row.object_type == "subnetpool":
            users = sa.select(m.Subnet.id).where(m.Subnet.subnetpool_id == row.object_id)
            if row.target_project != "*":
                users = users.where(m.Subnet.project_id == row.target_project)
            pool = await session.get(m.SubnetPool, row.object_id)
            if pool is not None:
                users = users.where(m.Subnet.project_id != pool.project_id)
            if (await session.execute(users.limit(1))).first() is not None:
                raise conflict("RbacPolicyInUse", f"RBAC policy on object {row.object_id} cannot be removed because "
                                                  f"other objects depend on it.")

    async def _after_removal(self, session: AsyncSession, object_type: str, object_id: str) -> None:
        r = m.RBACPolicy
        model = {"network": m.Network, "subnetpool": m.SubnetPool, "address_scope": m.AddressScope}[object_type]
        obj = await session.get(model, object_id)
        if obj is None:
            return
        rows = (await session.execute(sa.select(r.action, r.target_project).where(
            r.object_type == object_type, r.object_id == object_id))).all()
        obj.shared = ("access_as_shared", "*") in rows
        if object_type == "network":
            obj.external = any(a == "access_as_external" for a, _ in rows)
            obj.touch()
            await self._network_changed(session, obj)

    async def update_rbac(self, caller: Caller, rbac_id: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.net.write() as session:
            row = await self._rbac_row(session, caller, rbac_id)
            target = body.get("target_tenant", body.get("target_project"))
            ctx = {"project_id": row.project_id, "tenant_id": row.project_id, "target_tenant": target,
                   "target_project": target}
            caller.enforce("update_rbac_policy", ctx)
            if target is not None:
                s.string(target, "target_tenant")
                caller.enforce("update_rbac_policy:target_tenant", ctx)
                if target != row.target_project:
                    await self._check_removal(session, row)
                    row.target_project = target
                    await session.flush()
                    await self._after_removal(session, row.object_type, row.object_id)
            return self.render_rbac(row)

    async def delete_rbac(self, caller: Caller, rbac_id: str) -> None:
        async with self.net.write() as session:
            row = await self._rbac_row(session, caller, rbac_id)
            caller.enforce("delete_rbac_policy", {"project_id": row.project_id, "tenant_id": row.project_id})
            await self._check_removal(session, row)
            object_type, object_id = row.object_type, row.object_id
            await session.delete(row)
            await session.flush()
            await self._after_removal(session, object_type, object_id)

    # ------------------------------------------------------------------ address scopes

    def _scope_visibility(self, caller: Caller) -> Any:
        if caller.is_admin:
            return sa.true()
        a = m.AddressScope
        return sa.or_(a.project_id == caller.project_id, a.shared,
                      a.id.in_(self.net.rbac_targets(caller, "address_scope", ("access_as_shared",))))

    def render_scope(self, row: m.AddressScope) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "tenant_id": row.project_id, "project_id": row.project_id,
                "shared": row.shared, "ip_version": row.ip_version}

    async def _scope_row(self, session: AsyncSession, caller: Caller, scope_id: Any) -> m.AddressScope:
        row = (await session.execute(sa.select(m.AddressScope).where(
            m.AddressScope.id == scope_id, self._scope_visibility(caller)))).scalar() if s.is_uuid(scope_id) else None
        if row is None:
            raise not_found("Address scope", str(scope_id), "AddressScopeNotFound")
        return row

    async def list_scopes(self, caller: Caller, params: dict[str, list[str]], limit: int | None, marker: str | None,
                          page_reverse: bool) -> Page:
        from mcloud.network.service import Page, _bool_filter, _int_filter, _str_filter, paged, sort_keys, sql_filters
        a = m.AddressScope
        filters = {"id": _str_filter(a.id), "name": _str_filter(a.name), "project_id": _str_filter(a.project_id),
                   "tenant_id": _str_filter(a.project_id), "shared": _bool_filter(a.shared, "shared"),
                   "ip_version": _int_filter(a.ip_version, "ip_version")}
        conditions = sql_filters(params, filters, "address_scope")
        sort = sort_keys(params, {"id": a.id, "name": a.name, "ip_version": a.ip_version, "shared": a.shared,
                                  "project_id": a.project_id})
        async with self.db.read() as session:
            rows, more = await paged(session, sa.select(a).where(self._scope_visibility(caller), *conditions), a.id,
                                     sort, limit, marker, page_reverse)
        return Page([self.render_scope(x) for x in rows], more, rows[0].id if rows else None,
                    rows[-1].id if rows else None)

    async def show_scope(self, caller: Caller, scope_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            return self.render_scope(await self._scope_row(session, caller, scope_id))

    async def create_scope(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        from mcloud.network.service import new_id
        project = s.project_of(body, caller.project_id, caller.is_admin)
        target = {"project_id": project, "tenant_id": project}
        caller.enforce("create_address_scope", target)
        shared = s.to_bool(body.get("shared", False), "shared")
        if shared:
            caller.enforce("create_address_scope:shared", target)
        version = s.to_int(s.required(body, "ip_version"), "ip_version")
        if version not in (4, 6):
            raise invalid_attribute("ip_version", f"{version} is not in [4, 6]")
        async with self.net.write() as session:
            row = m.AddressScope(id=new_id(), project_id=project, name=s.string(body.get("name", ""), "name"),
                                 ip_version=version, shared=shared, revision_number=1)
            session.add(row)
            await session.flush()
            if shared:
                await self.add_rbac(session, project, "address_scope", row.id, "access_as_shared", "*")
            return self.render_scope(row)

    async def update_scope(self, caller: Caller, scope_id: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.net.write() as session:
            row = await self._scope_row(session, caller, scope_id)
            target = {"project_id": row.project_id, "tenant_id": row.project_id, "shared": row.shared}
            caller.enforce("update_address_scope", target)
            if "shared" in body:
                shared = s.to_bool(body["shared"], "shared")
                if shared != row.shared:
                    caller.enforce("update_address_scope:shared", target)
                    if not shared:
                        raise bad_request("Unable to complete operation on address scope: an address scope cannot "
                                          "be unshared.", "AddressScopeUpdateError")
                    row.shared = True
                    await self.add_rbac(session, row.project_id, "address_scope", row.id, "access_as_shared", "*")
            if "name" in body:
                row.name = s.string(body["name"], "name")
            row.touch()
            return self.render_scope(row)

    async def delete_scope(self, caller: Caller, scope_id: str) -> None:
        async with self.net.write() as session:
            row = await self._scope_row(session, caller, scope_id)
            caller.enforce("delete_address_scope", {"project_id": row.project_id, "tenant_id": row.project_id,
                                                    "shared": row.shared})
            used = (await session.execute(sa.select(m.SubnetPool.id).where(
                m.SubnetPool.address_scope_id == row.id).limit(1))).first()
            if used is not None:
                raise conflict("AddressScopeInUse", f"Unable to complete operation on address scope {row.id}. There "
                                                    f"are one or more subnet pools in use on the address scope.")
            r = m.RBACPolicy.__table__
            await session.execute(sa.delete(r).where(r.c.object_type == "address_scope", r.c.object_id == row.id))
            await session.delete(row)

    # ------------------------------------------------------------------ subnet pools

    def _pool_visibility(self, caller: Caller) -> Any:
        if caller.is_admin:
            return sa.true()
        p = m.SubnetPool
        return sa.or_(p.project_id == caller.project_id, p.shared,
                      p.id.in_(self.net.rbac_targets(caller, "subnetpool", ("access_as_shared",))))

    async def render_pools(self, session: AsyncSession, rows: Sequence[m.SubnetPool]) -> list[dict[str, Any]]:
        tags = await self.net.tags_of(session, [x.id for x in rows])
        return [{"id": x.id, "name": x.name, "tenant_id": x.project_id, "project_id": x.project_id,
                 "prefixes": list(x.prefixes), "default_prefixlen": x.default_prefixlen,
                 "min_prefixlen": x.min_prefixlen, "max_prefixlen": x.max_prefixlen, "shared": x.shared,
                 "is_default": x.is_default, "default_quota": x.default_quota, "address_scope_id": x.address_scope_id,
                 "ip_version": x.ip_version, "tags": tags.get(x.id, []), **_standard(x)} for x in rows]

    async def pool_row(self, session: AsyncSession, caller: Caller, pool_id: Any, for_update: bool = False) -> m.SubnetPool:
        q = sa.select(m.SubnetPool).where(m.SubnetPool.id == pool_id, self._pool_visibility(caller))
        if for_update:
            q = q.with_for_update()
        row = (await session.execute(q)).scalar() if s.is_uuid(pool_id) else None
        if row is None:
            raise not_found("Subnet pool", str(pool_id), "SubnetPoolNotFound")
        return row

    async def list_pools(self, caller: Caller, params: dict[str, list[str]], limit: int | None, marker: str | None,
                         page_reverse: bool) -> Page:
        from mcloud.network.service import (Page, _bool_filter, _int_filter, _str_filter, paged, sort_keys,
                                            sql_filters, tag_conditions)
        p = m.SubnetPool
        filters = {"id": _str_filter(p.id), "name": _str_filter(p.name), "project_id": _str_filter(p.project_id),
                   "tenant_id": _str_filter(p.project_id), "shared": _bool_filter(p.shared, "shared"),
                   "is_default": _bool_filter(p.is_default, "is_default"),
                   "ip_version": _int_filter(p.ip_version, "ip_version"),
                   "address_scope_id": _str_filter(p.address_scope_id), "description": _str_filter(p.description),
                   "default_prefixlen": _int_filter(p.default_prefixlen, "default_prefixlen"),
                   "min_prefixlen": _int_filter(p.min_prefixlen, "min_prefixlen"),
                   "max_prefixlen": _int_filter(p.max_prefixlen, "max_prefixlen"),
                   "revision_number": _int_filter(p.revision_number, "revision_number")}
        conditions = sql_filters(params, filters, "subnetpool") + tag_conditions(p.id, params)
        sort = sort_keys(params, {"id": p.id, "name": p.name, "ip_version": p.ip_version, "shared": p.shared,
                                  "project_id": p.project_id, "created_at": p.created_at,
                                  "default_prefixlen": p.default_prefixlen})
        async with self.db.read() as session:
            rows, more = await paged(session, sa.select(p).where(self._pool_visibility(caller), *conditions), p.id,
                                     sort, limit, marker, page_reverse)
            items = await self.render_pools(session, rows)
        return Page(items, more, rows[0].id if rows else None, rows[-1].id if rows else None)

    async def show_pool(self, caller: Caller, pool_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            return (await self.render_pools(session, [await self.pool_row(session, caller, pool_id)]))[0]

    def _prefixes(self, value: Any, version: int | None = None) -> tuple[list[str], int]:
        if not isinstance(value, list) or not value:
            raise invalid_attribute("prefixes", f"'{value}' is not a list of CIDRs")
        nets = [ipam.parse_cidr(v, "prefixes", strict=False) for v in value]
        versions = {n.version for n in nets}
        if len(versions) != 1 or (version is not None and versions != {version}):
            raise bad_request("Illegal subnetpool prefixes: prefixes of different IP versions", "PrefixVersionMismatch")
        collapsed = list(ipaddress.collapse_addresses(nets))  # type: ignore[arg-type]
        return [str(n) for n in collapsed], versions.pop()

    def _prefixlens(self, body: dict[str, Any], version: int, current: m.SubnetPool | None) -> tuple[int, int, int]:
        top = 32 if version == 4 else 128
        lo = s.to_int(body["min_prefixlen"], "min_prefixlen", 0, top) if body.get("min_prefixlen") is not None \
            else (current.min_prefixlen if current else (8 if version == 4 else 64))
        hi = s.to_int(body["max_prefixlen"], "max_prefixlen", 0, top) if body.get("max_prefixlen") is not None \
            else (current.max_prefixlen if current else top)
        default = s.to_int(body["default_prefixlen"], "default_prefixlen", 0, top) \
            if body.get("default_prefixlen") is not None else (current.default_prefixlen if current else lo)
        if not lo <= hi:
            raise bad_request(f"Illegal prefix bounds: prefix_type=min_prefixlen, prefixlen={lo}, "
                              f"base_prefix_type=max_prefixlen, base_prefixlen={hi}.", "IllegalSubnetPoolPrefixBounds")
        if not lo <= default <= hi:
            raise bad_request(f"Illegal prefix bounds: prefix_type=default_prefixlen, prefixlen={default}, "
                              f"base_prefix_type=min_prefixlen, base_prefixlen={lo}.", "IllegalSubnetPoolPrefixBounds")
        return lo, hi, default

    async def _check_scope(self, session: AsyncSession, caller: Caller, scope_id: Any, version: int,
                           prefixes: list[str], pool_id: str | None) -> str | None:
        if scope_id is None:
            return None
        scope = await self._scope_row(session, caller, scope_id)
        if scope.ip_version != version:
            raise bad_request(f"Illegal subnetpool association: subnetpool of IP version {version} cannot be "
                              f"associated with address scope {scope.id} of IP version {scope.ip_version}.",
                              "IllegalSubnetPoolIpVersionAssociationWithAddressScope")
        others = (await session.execute(sa.select(m.SubnetPool.prefixes).where(
            m.SubnetPool.address_scope_id == scope.id, m.SubnetPool.id != (pool_id or "")))).scalars()
        mine = [ipaddress.ip_network(p) for p in prefixes]
        for theirs in others:
            if any(ipaddress.ip_network(t).overlaps(x) for t in theirs for x in mine):
                raise conflict("AddressScopePrefixConflict", "Failed to associate address scope: subnetpools within "
                                                             "an address scope must have unique prefixes.")
        return scope.id

    async def create_pool(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        from mcloud.network.service import new_id
        project = s.project_of(body, caller.project_id, caller.is_admin)
        target = {"project_id": project, "tenant_id": project}
        caller.enforce("create_subnetpool", target)
        shared = s.to_bool(body.get("shared", False), "shared")
        is_default = s.to_bool(body.get("is_default", False), "is_default")
        if shared:
            caller.enforce("create_subnetpool:shared", target)
        if is_default:
            caller.enforce("create_subnetpool:is_default", target)
        prefixes, version = self._prefixes(s.required(body, "prefixes"))
        lo, hi, default = self._prefixlens(body, version, None)
        quota = body.get("default_quota")
        if quota is not None:
            quota = s.to_int(quota, "default_quota", 0)
        async with self.net.write() as session:
            await self.check_quota(session, project, "subnetpool")
            scope = await self._check_scope(session, caller, body.get("address_scope_id"), version, prefixes, None)
            if is_default:
                await self._one_default(session, version, None)
            row = m.SubnetPool(id=new_id(), project_id=project, name=s.string(body.get("name", ""), "name"),
                               description=s.string(body.get("description", ""), "description"), ip_version=version,
                               prefixes=prefixes, min_prefixlen=lo, max_prefixlen=hi, default_prefixlen=default,
                               shared=shared, is_default=is_default, default_quota=quota, address_scope_id=scope,
                               revision_number=1)
            session.add(row)
            await session.flush()
            if shared:
                await self.add_rbac(session, project, "subnetpool", row.id, "access_as_shared", "*")
            if "tags" in body:
                await self.net.set_tags(session, "subnetpools", row.id, s.tags_list(body["tags"]))
            return (await self.render_pools(session, [row]))[0]

    async def _one_default(self, session: AsyncSession, version: int, pool_id: str | None) -> None:
        other = (await session.execute(sa.select(m.SubnetPool.id).where(
            m.SubnetPool.is_default, m.SubnetPool.ip_version == version,
            m.SubnetPool.id != (pool_id or "")))).first()
        if other is not None:
            raise invalid_input(f"A default subnetpool for this IP family has already been set. Only one default may "
                                f"exist per IP family")

    async def update_pool(self, caller: Caller, pool_id: str, body: dict[str, Any],
                          if_match: str | None = None) -> dict[str, Any]:
        from mcloud.network.service import check_revision
        async with self.net.write() as session:
            row = await self.pool_row(session, caller, pool_id, for_update=True)
            target = {"project_id": row.project_id, "tenant_id": row.project_id, "shared": row.shared}
            caller.enforce("update_subnetpool", target)
            if "is_default" in body and s.to_bool(body["is_default"], "is_default") != row.is_default:
                caller.enforce("update_subnetpool:is_default", target)
            check_revision(row, if_match)
            if "prefixes" in body:
                prefixes, _ = self._prefixes(body["prefixes"], row.ip_version)
                new = [ipaddress.ip_network(p) for p in prefixes]
                for old in row.prefixes:
                    if not any(ipaddress.ip_network(old).subnet_of(n) for n in new):  # type: ignore[arg-type]
                        raise bad_request(f"Illegal update to prefixes: Existing prefix {old} is not a subset of the "
                                          f"new prefixes", "IllegalSubnetPoolPrefixUpdate")
                row.prefixes = prefixes
            lo, hi, default = self._prefixlens(body, row.ip_version, row)
            row.min_prefixlen, row.max_prefixlen, row.default_prefixlen = lo, hi, default
            if "default_quota" in body:
                row.default_quota = s.to_int(body["default_quota"], "default_quota", 0) \
                    if body["default_quota"] is not None else None
            if "address_scope_id" in body:
                row.address_scope_id = await self._check_scope(session, caller, body["address_scope_id"],
                                                               row.ip_version, row.prefixes, row.id)
            if "is_default" in body:
                value = s.to_bool(body["is_default"], "is_default")
                if value and not row.is_default:
                    await self._one_default(session, row.ip_version, row.id)
                row.is_default = value
            if "name" in body:
                row.name = s.string(body["name"], "name")
            if "description" in body:
                row.description = s.string(body["description"], "description")
            row.touch()
            await session.flush()
            return (await self.render_pools(session, [row]))[0]

    async def change_prefixes(self, caller: Caller, pool_id: str, body: Any, add: bool) -> dict[str, Any]:
        """PUT .../add_prefixes and .../remove_prefixes: {"prefixes": [...]} -> {"prefixes": [...]}."""
        if not isinstance(body, dict) or set(body) != {"prefixes"}:
            raise bad_request("Invalid input for prefixes: expected {'prefixes': [...]}")
        async with self.net.write() as session:
            row = await self.pool_row(session, caller, pool_id, for_update=True)
            rule = "add_prefixes" if add else "remove_prefixes"
            caller.enforce(rule, {"project_id": row.project_id, "tenant_id": row.project_id, "shared": row.shared})
            given, _ = self._prefixes(body["prefixes"], row.ip_version)
            current = [ipaddress.ip_network(p) for p in row.prefixes]
            if add:
                merged = list(ipaddress.collapse_addresses(current + [ipaddress.ip_network(g) for g in given]))  # type: ignore[operator]
            else:
                used = (await session.execute(sa.select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == row.id))).scalars()
                for cidr in used:
                    if any(ipaddress.ip_network(cidr).overlaps(ipaddress.ip_network(g)) for g in given):
                        raise conflict("IllegalSubnetPoolUpdate", f"Illegal update to subnet pool: prefixes in use "
                                                                  f"by subnet {cidr} cannot be removed.")
                merged = current
                for g in given:
                    out = []
                    for prefix in merged:
                        gn = ipaddress.ip_network(g)
                        if gn.subnet_of(prefix) and gn != prefix:  # type: ignore[arg-type]
                            out.extend(prefix.address_exclude(gn))  # type: ignore[arg-type]
                        elif not prefix.subnet_of(gn):  # type: ignore[arg-type]
                            out.append(prefix)
                    merged = out
                merged = list(ipaddress.collapse_addresses(merged))  # type: ignore[arg-type]
            row.prefixes = [str(p) for p in merged]
            row.touch()
            return {"prefixes": list(row.prefixes)}

    async def delete_pool(self, caller: Caller, pool_id: str) -> None:
        async with self.net.write() as session:
            row = await self.pool_row(session, caller, pool_id, for_update=True)
            caller.enforce("delete_subnetpool", {"project_id": row.project_id, "tenant_id": row.project_id,
                                                 "shared": row.shared})
            used = (await session.execute(sa.select(m.Subnet.id).where(m.Subnet.subnetpool_id == row.id)
                                          .limit(1))).first()
            if used is not None:
                raise conflict("SubnetPoolInUse", f"Unable to complete operation on subnet pool {row.id}. Subnet pool "
                                                  f"has subnets allocated from it.")
            r = m.RBACPolicy.__table__
            await session.execute(sa.delete(r).where(r.c.object_type == "subnetpool", r.c.object_id == row.id))
            await session.execute(sa.delete(m.Tag.__table__).where(m.Tag.resource_id == row.id))
            await session.delete(row)

    async def pool_for_subnet(self, session: AsyncSession, caller: Caller, body: dict[str, Any],
                              version: int) -> m.SubnetPool:
        if body.get("subnetpool_id") is not None:
            pool = await self.pool_row(session, caller, body["subnetpool_id"], for_update=True)
        else:
            s.to_bool(body["use_default_subnetpool"], "use_default_subnetpool")
            pool = (await session.execute(sa.select(m.SubnetPool).where(
                m.SubnetPool.is_default, m.SubnetPool.ip_version == version).with_for_update())).scalar()
            if pool is None:
                raise bad_request(f"Bad subnet request: No default subnetpool found for IPv{version}.", "BadRequest")
        if pool.ip_version != version:
            raise bad_request(f"Bad subnet request: Cannot allocate IPv{version} subnet from IPv{pool.ip_version} "
                              f"subnet pool.", "BadRequest")
        return pool

    async def carve(self, session: AsyncSession, pool: m.SubnetPool, cidr: Any, body: dict[str, Any],
                    project: str) -> Any:
        """The subnet a pool gives: ``cidr`` if free inside the pool, else the first free block of
        ``prefixlen`` (the pool's default)."""
        used = [ipaddress.ip_network(c) for c in (await session.execute(
            sa.select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id))).scalars()]
        prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
        if cidr is not None:
            prefixlen = cidr.prefixlen
        else:
            prefixlen = s.to_int(body["prefixlen"], "prefixlen", 0) if body.get("prefixlen") is not None \
                else pool.default_prefixlen
        if not pool.min_prefixlen <= prefixlen <= pool.max_prefixlen:
            raise bad_request(f"Unsupported request type: prefixlen {prefixlen} is outside the pool's bounds "
                              f"[{pool.min_prefixlen}, {pool.max_prefixlen}].", "SubnetAllocationError")
        if pool.default_quota is not None:
            mine = sum(ipaddress.ip_network(c).num_addresses for c in (await session.execute(
                sa.select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id,
                                               m.Subnet.project_id == project))).scalars())
            size = 1 << ((32 if pool.ip_version == 4 else 128) - prefixlen)
            if mine + size > pool.default_quota * (1 if pool.ip_version == 4 else 1):
                raise conflict("SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota exceeded.")
        if cidr is not None:
            if not any(cidr.subnet_of(p) for p in prefixes):
                raise bad_request(f"Unsupported request type: Cannot allocate requested subnet {cidr} from the "
                                  f"available set of prefixes.", "SubnetAllocationError")
            if any(cidr.overlaps(u) for u in used):
                raise bad_request(f"Unsupported request type: Cannot allocate requested subnet {cidr} from the "
                                  f"available set of prefixes.", "SubnetAllocationError")
            return cidr
        free = list(prefixes)
        for u in used:
            rest = []
            for f in free:
                if u.subnet_of(f) and u != f:
                    rest.extend(f.address_exclude(u))
                elif not f.subnet_of(u) and not u.overlaps(f):
                    rest.append(f)
                elif not f.subnet_of(u):
                    rest.append(f)
            free = rest
        for block in sorted(free, key=lambda n: (int(n.network_address), n.prefixlen)):
            if block.prefixlen <= prefixlen:
                return next(block.subnets(new_prefix=prefixlen))
        raise conflict("SubnetAllocationError", "Unsupported request type: Insufficient prefix space to allocate "
                                                "subnet size /%d." % prefixlen)

    # ------------------------------------------------------------------ segments

    def render_segment(self, row: m.Segment) -> dict[str, Any]:
        return {"id": row.id, "network_id": row.network_id, "name": row.name, "description": row.description or "",
                "network_type": row.network_type, "physical_network": row.physical_network,
                "segmentation_id": row.segmentation_id, "created_at": _standard(row)["created_at"],
                "updated_at": _standard(row)["updated_at"], "revision_number": row.revision_number}

    async def _segment_row(self, session: AsyncSession, caller: Caller, segment_id: Any) -> m.Segment:
        row = await session.get(m.Segment, segment_id) if s.is_uuid(segment_id) else None
        if row is not None and not caller.is_admin:
            net = await session.get(m.Network, row.network_id)
            if net is None or net.project_id != caller.project_id:
                row = None
        if row is None:
            raise not_found("Segment", str(segment_id))
        return row

    async def segment_of_network(self, session: AsyncSession, segment_id: Any, network_id: str) -> str:
        row = await session.get(m.Segment, segment_id) if s.is_uuid(segment_id) else None
        if row is None:
            raise not_found("Segment", str(segment_id))
        if row.network_id != network_id:
            raise bad_request(f"Bad subnet request: Network {network_id} does not contain segment {segment_id}.",
                              "BadRequest")
        return row.id

    async def list_segments(self, caller: Caller, params: dict[str, list[str]], limit: int | None,
                            marker: str | None, page_reverse: bool) -> Page:
        from mcloud.network.service import Page, _int_filter, _str_filter, paged, sort_keys, sql_filters
        g = m.Segment
        filters = {"id": _str_filter(g.id), "network_id": _str_filter(g.network_id), "name": _str_filter(g.name),
                   "network_type": _str_filter(g.network_type), "physical_network": _str_filter(g.physical_network),
                   "segmentation_id": _int_filter(g.segmentation_id, "segmentation_id"),
                   "description": _str_filter(g.description)}
        conditions = sql_filters(params, filters, "segment")
        sort = sort_keys(params, {"id": g.id, "name": g.name, "network_id": g.network_id,
                                  "network_type": g.network_type, "segmentation_id": g.segmentation_id})
        vis = sa.true() if caller.is_admin else g.network_id.in_(
            sa.select(m.Network.id).where(m.Network.project_id == caller.project_id))
        async with self.db.read() as session:
            rows, more = await paged(session, sa.select(g).where(vis, *conditions), g.id, sort, limit, marker,
                                     page_reverse)
        return Page([self.render_segment(x) for x in rows], more, rows[0].id if rows else None,
                    rows[-1].id if rows else None)

    async def show_segment(self, caller: Caller, segment_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            row = await self._segment_row(session, caller, segment_id)
            caller.enforce("get_segment", {})
            return self.render_segment(row)

    async def create_segment(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        from mcloud.network.service import new_id
        caller.enforce("create_segment", {})
        network_id = s.to_uuid(s.required(body, "network_id"), "network_id")
        network_type = s.required(body, "network_type")
        async with self.net.write() as session:
            net = await self.net.get_network_row(session, caller, network_id, for_update=True)
            probe = {"provider:network_type": network_type,
                     "provider:physical_network": body.get("physical_network"),
                     "provider:segmentation_id": body.get("segmentation_id")}
            seg = await self.net._segment_for(session, net.id, probe, True)
            count = (await session.execute(sa.select(sa.func.count()).select_from(m.Segment).where(
                m.Segment.network_id == net.id))).scalar()
            seg.segment_index = (count or 1) - 1
            seg.name = s.string(body.get("name"), "name", allow_none=True)
            seg.description = s.string(body.get("description", ""), "description")
            seg.id = seg.id or new_id()
            await session.flush()
            return self.render_segment(seg)

    async def update_segment(self, caller: Caller, segment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        caller.enforce("update_segment", {})
        async with self.net.write() as session:
            row = await self._segment_row(session, caller, segment_id)
            if "name" in body:
                row.name = s.string(body["name"], "name", allow_none=True)
            if "description" in body:
                row.description = s.string(body["description"], "description")
            row.touch()
            return self.render_segment(row)

    async def delete_segment(self, caller: Caller, segment_id: str) -> None:
        caller.enforce("delete_segment", {})
        async with self.net.write() as session:
            row = await self._segment_row(session, caller, segment_id)
            used = (await session.execute(sa.select(m.Subnet.id).where(m.Subnet.segment_id == row.id).limit(1))).first()
            if used is not None:
                raise conflict("SegmentInUse", f"Segment '{row.id}' cannot be deleted: 1 subnet(s) use it.")
            await session.delete(row)

    # ------------------------------------------------------------------ quotas

    def quota_defaults(self) -> dict[str, int]:
        return {**QUOTA_DEFAULTS, **self.net.l3.quota_defaults()}

    async def quota_limits(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        limits = self.quota_defaults()
        rows = (await session.execute(sa.select(m.Quota.resource, m.Quota.limit).where(
            m.Quota.project_id == project_id))).all()
        for resource, limit in rows:
            if resource in limits:
                limits[resource] = limit
        return limits

    async def usage(self, session: AsyncSession, project_id: str, resource: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        models = USAGE_MODELS
        for name, model in models.items():
            if resource is not None and resource != name:
                continue
            counts[name] = (await session.execute(sa.select(sa.func.count()).select_from(model).where(
                model.project_id == project_id))).scalar() or 0
        if resource is None or resource not in models:
            counts.update(await self.net.l3.quota_usage(session, project_id))
        return counts

    async def check_quota(self, session: AsyncSession, project_id: str, resource: str, adding: int = 1) -> None:
        """409 OverQuota when ``adding`` more of ``resource`` would pass the project's limit (for
        CORE's own resources the limit and the count are one round trip, and nothing is counted
        under no limit)."""
        limit_q = sa.select(m.Quota.limit).where(m.Quota.project_id == project_id, m.Quota.resource == resource)
        model = USAGE_MODELS.get(resource)
        if model is not None:
            count_q = sa.select(sa.func.count()).select_from(model).where(model.project_id == project_id)
            effective = sa.func.coalesce(limit_q.scalar_subquery(), self.quota_defaults().get(resource, -1))
            limit, used = (await session.execute(sa.select(limit_q.scalar_subquery(), sa.case(
                (effective < 0, None), else_=count_q.scalar_subquery())))).one()
        else:
            limit, used = (await session.execute(limit_q)).scalar(), None
        if limit is None:
            limit = self.quota_defaults().get(resource, -1)
        if limit < 0:
            return
        if used is None:
            used = (await self.usage(session, project_id, resource)).get(resource, 0)
        if used + adding > limit:
            raise over_quota(resource)

    async def show_quota(self, caller: Caller, project_id: str, details: bool = False,
                         defaults: bool = False) -> dict[str, Any]:
        caller.enforce("get_quota", {"project_id": project_id, "tenant_id": project_id})
        async with self.db.read() as session:
            limits = self.quota_defaults() if defaults else await self.quota_limits(session, project_id)
            if not details:
                return limits
            used = await self.usage(session, project_id)
        return {k: {"limit": v, "used": used.get(k, 0), "reserved": 0} for k, v in limits.items()}

    async def list_quotas(self, caller: Caller) -> list[dict[str, Any]]:
        caller.enforce("get_quota", {"project_id": caller.project_id, "tenant_id": caller.project_id})
        async with self.db.read() as session:
            q = sa.select(m.Quota.project_id).distinct()
            if not caller.is_admin:
                q = q.where(m.Quota.project_id == caller.project_id)
            projects = list((await session.execute(q)).scalars())
            out = []
            for project in sorted(projects):
                limits = await self.quota_limits(session, project)
                out.append({**limits, "project_id": project, "tenant_id": project})
        return out

    async def update_quota(self, caller: Caller, project_id: str, body: Any) -> dict[str, int]:
        caller.enforce("update_quota", {"project_id": project_id, "tenant_id": project_id})
        if not isinstance(body, dict) or set(body) != {"quota"} or not isinstance(body["quota"], dict):
            raise bad_request("Unable to find 'quota' in request body")
        defaults = self.quota_defaults()
        values = {}
        for name, value in body["quota"].items():
            if name == "check_limit" or name == "force":
                continue
            if name not in defaults:
                raise bad_request(f"Unrecognized attribute(s) '{name}'")
            values[name] = s.to_int(value, name, -1, 2**31 - 1)
        async with self.net.write() as session:
            if body["quota"].get("check_limit") and s.to_bool(body["quota"]["check_limit"], "check_limit"):
                used = await self.usage(session, project_id)
                for name, limit in values.items():
                    if 0 <= limit < used.get(name, 0):
                        raise bad_request(f"Quota limit {limit} for {name} must be greater than or equal to already "
                                          f"used and reserved {used.get(name, 0)}.", "InvalidQuotaValue")
            q = m.Quota.__table__
            for name, limit in values.items():
                await session.execute(sa.delete(q).where(q.c.project_id == project_id, q.c.resource == name))
                await session.execute(sa.insert(q).values(project_id=project_id, resource=name, limit=limit))
            return await self.quota_limits(session, project_id)

    async def delete_quota(self, caller: Caller, project_id: str) -> None:
        caller.enforce("delete_quota", {"project_id": project_id, "tenant_id": project_id})
        async with self.net.write() as session:
            await session.execute(sa.delete(m.Quota.__table__).where(m.Quota.project_id == project_id))

    # ------------------------------------------------------------------ tags

    async def tag_target(self, session: AsyncSession, caller: Caller, collection: str, resource_id: str) -> tuple[str, Any]:
        """(project id, row or None) of a taggable resource the caller sees; 404 otherwise."""
        if collection in CORE_TAGGED:
            if collection == "networks":
                row = await self.net.get_network_row(session, caller, resource_id)
            elif collection == "subnets":
                row = await self.net.get_subnet_row(session, caller, resource_id)
            elif collection == "ports":
                row = await self.net.get_port_row(session, caller, resource_id)
            else:
                row = await self.pool_row(session, caller, resource_id)
            return row.project_id, row
        if collection in L3_TAGGED:
            return await self.net.l3.tag_target(session, caller, collection, resource_id), None
        raise not_found("Resource", collection)

    async def _tag_access(self, session: AsyncSession, caller: Caller, collection: str, resource_id: str,
                          action: str) -> tuple[str, Any]:
        project, row = await self.tag_target(session, caller, collection, resource_id)
        rule = f"{action}_{collection.replace('-', '_')}_tags"
        target = {"project_id": project, "tenant_id": project}
        if isinstance(row, m.Network):
            target.update(await self.net.network_target(session, caller, row))
            target["project_id"] = target["tenant_id"] = project
        caller.enforce(rule, target)
        return project, row

    async def get_tags(self, caller: Caller, collection: str, resource_id: str) -> list[str]:
        async with self.db.read() as session:
            await self._tag_access(session, caller, collection, resource_id, "get")
            return (await self.net.tags_of(session, [resource_id])).get(resource_id, [])

    async def has_tag(self, caller: Caller, collection: str, resource_id: str, tag: str) -> None:
        async with self.db.read() as session:
            await self._tag_access(session, caller, collection, resource_id, "get")
            if tag not in (await self.net.tags_of(session, [resource_id])).get(resource_id, []):
                raise not_found("Tag", tag, "TagNotFound")

    async def replace_tags(self, caller: Caller, collection: str, resource_id: str, body: Any) -> list[str]:
        if not isinstance(body, dict) or set(body) != {"tags"}:
            raise bad_request("Invalid input for operation: the body must be {'tags': [...]}.", "InvalidInput")
        tags = s.tags_list(body["tags"])
        if len(tags) > MAX_TAGS:
            raise bad_request(f"Invalid input for operation: too many tags (at most {MAX_TAGS}).", "InvalidInput")
        async with self.net.write() as session:
            _, row = await self._tag_access(session, caller, collection, resource_id, "update")
            await self.net.set_tags(session, collection, resource_id, tags)
            if row is not None:
                row.touch()
        return tags

    async def add_tag(self, caller: Caller, collection: str, resource_id: str, tag: str) -> None:
        s.check_tag(tag)
        async with self.net.write() as session:
            _, row = await self._tag_access(session, caller, collection, resource_id, "create")
            current = (await self.net.tags_of(session, [resource_id])).get(resource_id, [])
            if tag in current:
                return
            if len(current) >= MAX_TAGS:
                raise bad_request(f"Invalid input for operation: too many tags (at most {MAX_TAGS}).", "InvalidInput")
            await session.execute(sa.insert(m.Tag.__table__).values(resource_id=resource_id, tag=tag,
                                                                    resource_type=collection))
            if row is not None:
                row.touch()

    async def remove_tags(self, caller: Caller, collection: str, resource_id: str, tag: str | None) -> None:
        async with self.net.write() as session:
            _, row = await self._tag_access(session, caller, collection, resource_id, "delete")
            t = m.Tag.__table__
            q = sa.delete(t).where(t.c.resource_id == resource_id)
            if tag is not None:
                result = await session.execute(q.where(t.c.tag == tag))
                if not result.rowcount:  # type: ignore[attr-defined]
                    raise not_found("Tag", tag, "TagNotFound")
            else:
                await session.execute(q)
            if row is not None:
                row.touch()


__all__ = ["CORE_TAGGED", "Extras", "L3_TAGGED", "QUOTA_DEFAULTS"]
