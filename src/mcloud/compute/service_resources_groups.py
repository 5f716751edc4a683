"""Server groups, host aggregates and availability zones: their API and what the scheduler and
the servers part ask of them (seam 3 of the compute contract).

A host's availability zone is the ``availability_zone`` metadata of the aggregates it is in, else
``[compute] default_availability_zone`` (``nova``); a host is in at most one zone (Nova refuses an
aggregate change that would put it in two). Hosts added to an aggregate are also put in the
Placement aggregate of the same uuid (as Nova does), so that the scheduler can ask Placement for
candidates ``member_of`` a zone's aggregates.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid as uuidlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.compute import models as cm
from mcloud.compute import models_resources as m
from mcloud.compute.models import now
from mcloud.core.errors import BadRequest, Conflict, Forbidden, NotFound

log = logging.getLogger("mcloud.compute.resources")
POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")
INTERNAL_ZONE = "internal"


@dataclasses.dataclass
class GroupView:
    id: str
    name: str
    policy: str
    rules: dict[str, Any]
    members: list[str]
    project_id: str
    user_id: str


@dataclasses.dataclass
class AggregateView:
    id: int
    uuid: str
    name: str
    metadata: dict[str, str]
    hosts: list[str]
    created_at: Any
    updated_at: Any

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get("availability_zone")


class GroupsMixin:
    compute: Any

    # ------------------------------------------------------------------ server groups

    async def _group_row(self, session: AsyncSession, group_id: str) -> m.ServerGroup:
        group = (await session.execute(sa.select(m.ServerGroup).where(m.ServerGroup.uuid == group_id))).scalar()
        if group is None:
            raise NotFound(f"Instance group {group_id} could not be found.")
        return group

    async def _views(self, session: AsyncSession, groups: list[m.ServerGroup]) -> list[GroupView]:
        """Groups with their members that are not deleted."""
        ids = [g.id for g in groups]
        members: dict[int, list[str]] = {i: [] for i in ids}
        if ids:
            live = sa.select(cm.Instance.uuid).where(cm.Instance.deleted == sa.false())
            rows = await session.execute(sa.select(m.ServerGroupMember.group_id, m.ServerGroupMember.instance_uuid)
                                         .where(m.ServerGroupMember.group_id.in_(ids),
                                                m.ServerGroupMember.instance_uuid.in_(live))
                                         .order_by(m.ServerGroupMember.instance_uuid))
            for gid, uuid in rows:
                members[gid].append(uuid)
        return [GroupView(g.uuid, g.name, g.policy, dict(g.rules or {}), members[g.id], g.project_id, g.user_id)
                for g in groups]

    async def list_server_groups(self, session: AsyncSession, caller: Any, *, all_projects: bool = False,
                                 limit: int | None = None, offset: int = 0) -> list[GroupView]:
        caller.authorize("os_compute_api:os-server-groups:index", {"project_id": caller.project_id})
        query = sa.select(m.ServerGroup).order_by(m.ServerGroup.id)
        if not (all_projects and caller.is_admin and caller.can(
                "os_compute_api:os-server-groups:index:all_projects", {"project_id": caller.project_id})):
            query = query.where(m.ServerGroup.project_id == caller.project_id)
        max_limit = self.compute.config.max_limit
        limit = min(limit or max_limit, max_limit)
        groups = list((await session.execute(query.offset(offset).limit(limit))).scalars())
        return await self._views(session, groups)

    async def show_server_group(self, session: AsyncSession, caller: Any, group_id: str) -> GroupView:
        group = await self._group_row(session, group_id)
        caller.authorize("os_compute_api:os-server-groups:show", {"project_id": group.project_id})
        return (await self._views(session, [group]))[0]

    async def create_server_group(self, session: AsyncSession, caller: Any, name: str, policy: str,
                                  rules: dict[str, Any] | None = None) -> GroupView:
        caller.authorize("os_compute_api:os-server-groups:create", {"project_id": caller.project_id})
        limit = await self.limit_of(session, caller.project_id, "server_groups")  # type: ignore[attr-defined]
        if limit >= 0:
            count = (await session.execute(sa.select(sa.func.count()).select_from(m.ServerGroup).where(
                m.ServerGroup.project_id == caller.project_id))).scalar() or 0
            if count + 1 > limit:
                raise Forbidden("Quota exceeded, too many server groups.")
        if policy not in POLICIES:
            raise BadRequest(f"Invalid input for field/attribute policy. Value: {policy}. "
                             f"'{policy}' is not one of {list(POLICIES)}")
        rules = dict(rules or {})
        if rules and policy != "anti-affinity":
            raise BadRequest("Only anti-affinity policy supports rules.")
        if "max_server_per_host" in rules:
            rules["max_server_per_host"] = int(rules["max_server_per_host"])
        group = m.ServerGroup(uuid=str(uuidlib.uuid4()), name=name, project_id=caller.project_id or "",
                              user_id=caller.user_id or "", policy=policy, rules=rules, created_at=now())
        session.add(group)
        await session.flush()
        return (await self._views(session, [group]))[0]

    async def delete_server_group(self, session: AsyncSession, caller: Any, group_id: str) -> None:
        group = await self._group_row(session, group_id)
        caller.authorize("os_compute_api:os-server-groups:delete", {"project_id": group.project_id})
        await session.execute(sa.delete(m.ServerGroupMember).where(m.ServerGroupMember.group_id == group.id))
        await session.delete(group)

    async def group_for_boot(self, session: AsyncSession, caller: Any, group_id: str) -> GroupView:
        """Seam 3: the group a server is booted into (``scheduler_hints.group``); 400 when the
        caller cannot see it."""
        group = (await session.execute(sa.select(m.ServerGroup).where(m.ServerGroup.uuid == str(group_id)))).scalar()
        if group is None or (not caller.is_admin and group.project_id != caller.project_id):
            raise BadRequest(f"Instance group {group_id} could not be found.")
        return (await self._views(session, [group]))[0]

    async def add_group_members(self, session: AsyncSession, group_id: str, uuids: list[str]) -> None:
        """Seam 3: servers join a group, within the project's server_group_members quota (403
        "Quota exceeded, too many servers in group")."""
        group = await self._group_row(session, group_id)
        present = set((await session.execute(sa.select(m.ServerGroupMember.instance_uuid).where(
            m.ServerGroupMember.group_id == group.id))).scalars())
        new = [u for u in dict.fromkeys(uuids) if u not in present]
        limit = await self.limit_of(session, group.project_id, "server_group_members")  # type: ignore[attr-defined]
        if limit >= 0 and len(present) + len(new) > limit:
            raise Forbidden("Quota exceeded, too many servers in group")
        for uuid in new:
            session.add(m.ServerGroupMember(group_id=group.id, instance_uuid=uuid))
        await session.flush()

    async def remove_instance_from_groups(self, session: AsyncSession, instance_uuid: str) -> None:
        await session.execute(sa.delete(m.ServerGroupMember).where(
            m.ServerGroupMember.instance_uuid == instance_uuid))

    async def group_of_instance(self, session: AsyncSession, instance_uuid: str) -> GroupView | None:
        """The group a server is in (Nova shows it as ``server_groups`` from 2.71)."""
        group = (await session.execute(sa.select(m.ServerGroup).join(
            m.ServerGroupMember, m.ServerGroupMember.group_id == m.ServerGroup.id).where(
            m.ServerGroupMember.instance_uuid == instance_uuid))).scalar()
        return None if group is None else (await self._views(session, [group]))[0]

    # ------------------------------------------------------------------ aggregates

    async def _aggregate_views(self, session: AsyncSession, aggregates: list[m.Aggregate]) -> list[AggregateView]:
        ids = [a.id for a in aggregates]
        hosts: dict[int, list[str]] = {i: [] for i in ids}
        meta: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for aid, host in await session.execute(sa.select(m.AggregateHost.aggregate_id, m.AggregateHost.host)
                                                   .where(m.AggregateHost.aggregate_id.in_(ids))
                                                   .order_by(m.AggregateHost.host)):
                hosts[aid].append(host)
            for row in (await session.execute(sa.select(m.AggregateMetadata).where(
                    m.AggregateMetadata.aggregate_id.in_(ids)))).scalars():
                meta[row.aggregate_id][row.key] = row.value
        return [AggregateView(a.id, a.uuid, a.name, meta[a.id], hosts[a.id], a.created_at, a.updated_at)
                for a in aggregates]

    async def _aggregate(self, session: AsyncSession, aggregate_id: Any) -> m.Aggregate:
        try:
            number = int(str(aggregate_id))
        except ValueError:
            raise BadRequest(f"Invalid input received: id must be an integer, not {aggregate_id!r}.") from None
        aggregate = await session.get(m.Aggregate, number) if abs(number) <= 0x7FFFFFFF else None
        if aggregate is None:
            raise NotFound(f"Aggregate {aggregate_id} could not be found.")
        return aggregate

    async def list_aggregates(self, session: AsyncSession, caller: Any) -> list[AggregateView]:
        caller.authorize("os_compute_api:os-aggregates:index", {})
        rows = await session.execute(sa.select(m.Aggregate).order_by(m.Aggregate.id))
        return await self._aggregate_views(session, list(rows.scalars()))

    async def show_aggregate(self, session: AsyncSession, caller: Any, aggregate_id: Any) -> AggregateView:
        caller.authorize("os_compute_api:os-aggregates:show", {})
        return (await self._aggregate_views(session, [await self._aggregate(session, aggregate_id)]))[0]

    async def _name_free(self, session: AsyncSession, name: str, but: int | None = None) -> None:
        query = sa.select(m.Aggregate.id).where(m.Aggregate.name == name)
        if but is not None:
            query = query.where(m.Aggregate.id != but)
        if (await session.execute(query)).first():
            raise Conflict(f"Aggregate {name} already exists.")

    async def create_aggregate(self, session: AsyncSession, caller: Any, name: str,
                               availability_zone: str | None = None) -> AggregateView:
        caller.authorize("os_compute_api:os-aggregates:create", {})
        name = name.strip()
        await self._name_free(session, name)
        aggregate = m.Aggregate(uuid=str(uuidlib.uuid4()), name=name, created_at=now())
        session.add(aggregate)
        await session.flush()
        if availability_zone:
            session.add(m.AggregateMetadata(aggregate_id=aggregate.id, key="availability_zone",
                                            value=availability_zone.strip()))
            await session.flush()
        return (await self._aggregate_views(session, [aggregate]))[0]

    async def _check_zone_change(self, session: AsyncSession, view: AggregateView, metadata: dict[str, Any],
                                 hosts: list[str], action: str, *, instances_move: bool) -> None:
        """Nova's is_safe_to_update_az: no empty zone name, no host in two zones, and (for a change
        of the aggregate's own zone) no host with servers changes zone."""
        if "availability_zone" not in metadata:
            return
        zone = metadata["availability_zone"]
        if not zone:
            raise BadRequest(f"{action} {view.id}. Reason: Aggregate {view.name} does not support empty named "
                             "availability zone.")
        if hosts:
            others = await session.execute(
                sa.select(m.AggregateMetadata.value).join(
                    m.AggregateHost, m.AggregateHost.aggregate_id == m.AggregateMetadata.aggregate_id)
                .where(m.AggregateHost.host.in_(hosts), m.AggregateMetadata.key == "availability_zone",
                       m.AggregateMetadata.aggregate_id != view.id, m.AggregateMetadata.value != zone).distinct())
            conflicting = sorted(others.scalars())
            if conflicting:
                raise BadRequest(f"{action} {view.id}. Reason: One or more hosts already in availability "
                                 f"zone(s) {conflicting}.")
        if instances_move and hosts and view.availability_zone != zone:
            busy = (await session.execute(sa.select(sa.func.count()).select_from(cm.Instance).where(
                cm.Instance.host.in_(hosts), cm.Instance.deleted == sa.false()))).scalar()
            if busy:
                raise BadRequest(f"{action} {view.id}. Reason: One or more hosts contain instances in this zone.")

    async def update_aggregate(self, session: AsyncSession, caller: Any, aggregate_id: Any, *,
                               name: str | None = None, availability_zone: Any = ...) -> AggregateView:
        caller.authorize("os_compute_api:os-aggregates:update", {})
        aggregate = await self._aggregate(session, aggregate_id)
        if name is not None:
            name = name.strip()
            await self._name_free(session, name, aggregate.id)
            aggregate.name = name
        if availability_zone is not ...:
            view = (await self._aggregate_views(session, [aggregate]))[0]
            await self._check_zone_change(session, view, {"availability_zone": availability_zone}, view.hosts,
                                          "Cannot update aggregate", instances_move=True)
            await self._set_metadata(session, aggregate, {"availability_zone": availability_zone})
        aggregate.updated_at = now()
        await session.flush()
        return (await self._aggregate_views(session, [aggregate]))[0]

    async def _set_metadata(self, session: AsyncSession, aggregate: m.Aggregate, metadata: dict[str, Any]) -> None:
        for key, value in metadata.items():
            row = await session.get(m.AggregateMetadata, (aggregate.id, key))
            if value is None:
                if row is not None:
                    await session.delete(row)
            elif row is None:
                session.add(m.AggregateMetadata(aggregate_id=aggregate.id, key=key, value=str(value)))
            else:
                row.value = str(value)
        await session.flush()

    async def set_aggregate_metadata(self, session: AsyncSession, caller: Any, aggregate_id: Any,
                                     metadata: dict[str, Any]) -> AggregateView:
        """Nova's set_metadata: keys given are set, keys given as null removed, others kept."""
        caller.authorize("os_compute_api:os-aggregates:set_metadata", {})
        aggregate = await self._aggregate(session, aggregate_id)
        view = (await self._aggregate_views(session, [aggregate]))[0]
        await self._check_zone_change(session, view, metadata, view.hosts, "Cannot update metadata of aggregate",
                                      instances_move=True)
        await self._set_metadata(session, aggregate, metadata)
        aggregate.updated_at = now()
        await session.flush()
        return (await self._aggregate_views(session, [aggregate]))[0]

    async def delete_aggregate(self, session: AsyncSession, caller: Any, aggregate_id: Any) -> str:
        """Returns the deleted aggregate's uuid."""
        caller.authorize("os_compute_api:os-aggregates:delete", {})
        aggregate = await self._aggregate(session, aggregate_id)
        view = (await self._aggregate_views(session, [aggregate]))[0]
        if view.hosts:
            raise BadRequest(f"Cannot remove host from aggregate {aggregate.id}. Reason: Host aggregate is not "
                             "empty.")
        await session.execute(sa.delete(m.AggregateMetadata).where(m.AggregateMetadata.aggregate_id == aggregate.id))
        await session.delete(aggregate)
        return aggregate.uuid

    async def known_hosts(self, session: AsyncSession) -> set[str] | None:
        """The compute hosts the registry knows (None while there is no registry to ask)."""
        states = getattr(self.compute.hosts, "candidates_state", None)
        if states is None:
            return None
        return set(await states(session))

    async def add_aggregate_host(self, session: AsyncSession, caller: Any, aggregate_id: Any,
                                 host: str) -> AggregateView:
        caller.authorize("os_compute_api:os-aggregates:add_host", {})
        known = await self.known_hosts(session)
        if known is not None and host not in known:
            raise NotFound(f"Compute host {host} could not be found.")
        aggregate = await self._aggregate(session, aggregate_id)
        if await session.get(m.AggregateHost, (aggregate.id, host)) is not None:
            raise Conflict(f"Aggregate {aggregate.id} already has host {host}.")
        view = (await self._aggregate_views(session, [aggregate]))[0]
        try:
            await self._check_zone_change(session, view, view.metadata, [host], "Cannot add host to aggregate",
                                          instances_move=False)
        except BadRequest as exc:
            raise Conflict(exc.message) from None
        new_zone = view.availability_zone
        if new_zone:
            old_zone = await self.zone_of_host(session, host)
            servers = (await session.execute(sa.select(sa.func.count()).select_from(cm.Instance).where(
                cm.Instance.host == host, cm.Instance.deleted == sa.false()))).scalar() or 0
            if servers and old_zone != new_zone:
                raise Conflict(
                    f"Cannot add host to aggregate {aggregate.id}. Reason: The host cannot be added to the aggregate "
                    f"as the availability zone of the host would change from '{old_zone}' to '{new_zone}' but the "
                    f"host already has {servers} instance(s). Changing the AZ of an existing instance is not "
                    "supported by this action. Move the instances away from this host then try again. If you need "
                    "to move the instances between AZs then you can use shelve_offload and unshelve to achieve "
                    "this..")
        session.add(m.AggregateHost(aggregate_id=aggregate.id, host=host))
        aggregate.updated_at = now()
        await session.flush()
        return (await self._aggregate_views(session, [aggregate]))[0]

    async def remove_aggregate_host(self, session: AsyncSession, caller: Any, aggregate_id: Any,
                                    host: str) -> AggregateView:
        caller.authorize("os_compute_api:os-aggregates:remove_host", {})
        try:
            aggregate = await self._aggregate(session, aggregate_id)
        except NotFound:
            raise NotFound(f"Cannot remove host {host} in aggregate {aggregate_id}") from None
        row = await session.get(m.AggregateHost, (aggregate.id, host))
        if row is None:
            raise NotFound(f"Cannot remove host {host} in aggregate {aggregate_id}")
        await session.delete(row)
        aggregate.updated_at = now()
        await session.flush()
        return (await self._aggregate_views(session, [aggregate]))[0]

    async def sync_placement_aggregates(self, host: str) -> None:
        """Put the host's resource provider in the Placement aggregates of the compute aggregates it
        is in (and out of those it left), as Nova's aggregate_add_host does. After the commit; a
        host without a provider yet is left alone (the registry calls again when it registers)."""
        provider_of = getattr(self.compute.hosts, "provider_of", None)
        placement = self.compute.placement
        if provider_of is None or placement is None:
            return
        try:
            async with self.compute.db.read() as session:
                provider = await provider_of(session, host)
                if not provider:
                    return
                mine = set((await session.execute(sa.select(m.Aggregate.uuid).join(
                    m.AggregateHost, m.AggregateHost.aggregate_id == m.Aggregate.id).where(
                    m.AggregateHost.host == host))).scalars())
                every = set((await session.execute(sa.select(m.Aggregate.uuid))).scalars())
            for _ in range(5):
                rp, current = await placement.get_aggregates(provider)
                wanted = sorted((set(current) - every) | mine)
                if sorted(current) == wanted:
                    return
                try:
                    await placement.set_aggregates(provider, wanted, rp.generation)
                    return
                except Conflict:
                    continue
        except Exception:  # noqa: BLE001 - the aggregate change stands; the scheduler re-reads later
            log.exception("could not put host %s in its Placement aggregates", host)

    # ------------------------------------------------------------------ zones (for the scheduler too)

    async def host_aggregates(self, session: AsyncSession) -> dict[str, list[AggregateView]]:
        """Seam 3: every host in an aggregate, with its aggregates."""
        views = await self._aggregate_views(session, list((await session.execute(
            sa.select(m.Aggregate).order_by(m.Aggregate.id))).scalars()))
        out: dict[str, list[AggregateView]] = {}
        for view in views:
            for host in view.hosts:
                out.setdefault(host, []).append(view)
        return out

    async def zones_of_hosts(self, session: AsyncSession) -> dict[str, str]:
        """Hosts in an aggregate with a zone → that zone (others are in the default zone)."""
        rows = await session.execute(
            sa.select(m.AggregateHost.host, m.AggregateMetadata.value).join(
                m.AggregateMetadata, m.AggregateMetadata.aggregate_id == m.AggregateHost.aggregate_id)
            .where(m.AggregateMetadata.key == "availability_zone").order_by(m.AggregateHost.aggregate_id))
        out: dict[str, str] = {}
        for host, zone in rows:
            out.setdefault(host, zone)
        return out

    async def zone_of_host(self, session: AsyncSession, host: str) -> str:
        """Seam 3: a host's availability zone."""
        return (await self.zones_of_hosts(session)).get(host, self.compute.config.default_availability_zone)

    async def hosts_in_zone(self, session: AsyncSession, az: str) -> set[str] | None:
        """Seam 3: the hosts of zone ``az``. For the default zone that is every registered host in no
        other zone; None when there is no registry to ask (every host not in another zone)."""
        zones = await self.zones_of_hosts(session)
        named = {h for h, z in zones.items() if z == az}
        if az != self.compute.config.default_availability_zone:
            return named
        known = await self.known_hosts(session)
        if known is None:
            return None
        return named | {h for h in known if h not in zones}

    async def availability_zones(self, session: AsyncSession, caller: Any, detail: bool = False
                                 ) -> list[dict[str, Any]]:
        """os-availability-zone: zones of compute hosts, available while one of their hosts' service
        is enabled; with ``detail`` (admin) the hosts and their services."""
        caller.authorize(f"os_compute_api:os-availability-zone:{'detail' if detail else 'list'}", {})
        zones = await self.zones_of_hosts(session)
        default = self.compute.config.default_availability_zone
        services = await self._services(session)
        available: dict[str, dict[str, Any]] = {}
        unavailable: set[str] = set()
        for svc in services:
            zone = INTERNAL_ZONE if svc["binary"] != "nova-compute" else zones.get(svc["host"], default)
            if svc["disabled"]:
                unavailable.add(zone)
                continue
            hosts = available.setdefault(zone, {})
            hosts.setdefault(svc["host"], {})[svc["binary"]] = {
                "available": svc["up"], "active": not svc["disabled"], "updated_at": svc["updated_at"]}
        unavailable -= set(available)
        out = []
        for zone in sorted(available):
            if not detail and zone == INTERNAL_ZONE:
                continue
            out.append({"zoneName": zone, "zoneState": {"available": True},
                        "hosts": available[zone] if detail else None})
        for zone in sorted(unavailable):
            if not detail and zone == INTERNAL_ZONE:
                continue
            out.append({"zoneName": zone, "zoneState": {"available": False}, "hosts": None})
        return out

    async def _services(self, session: AsyncSession) -> list[dict[str, Any]]:
        """The services the hosts registry knows: host, binary, disabled, up, updated_at."""
        hosts = self.compute.hosts
        listing, is_up = getattr(hosts, "services", None), getattr(hosts, "is_up", None)
        if listing is not None and is_up is not None:  # the registry's rows: nova-compute and the controller's
            return [{"host": svc.host, "binary": svc.binary, "disabled": svc.disabled, "up": is_up(svc),
                     "updated_at": svc.updated_at or svc.last_seen_up} for svc in await listing(session)]
        states = getattr(hosts, "candidates_state", None)
        if states is None:
            return []
        out = []
        for host, state in (await states(session)).items():
            out.append({"host": host, "binary": "nova-compute", "disabled": not getattr(state, "enabled", True),
                        "up": bool(getattr(state, "up", True)), "updated_at": getattr(state, "updated_at", None)})
        return out
