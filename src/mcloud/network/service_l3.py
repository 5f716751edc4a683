"""The network service's L3 logic: routers, floating IPs and port forwardings, security groups
and rules, QoS policies and rules, trunks.

``NetworkService`` (service.py, CORE) creates one ``L3Service(self)`` and calls its hooks
inside its own transactions (``port_extras``, ``set_port_extras``, ``network_extras``,
``set_network_extras``, ``before_port_delete``, ``before_subnet_delete``,
``before_network_delete``, ``extension_aliases``, ``desired_state``, ``quota_defaults``,
``quota_usage``, ``tag_target``). L3 makes ports through CORE's internal port API
(``create_port_internal``, ``delete_port_internal``, ``set_port_owner``, ``port_views``).

Every write is one transaction; data-plane calls wait in ``session.info["after_commit"]`` and
run once it has committed (``transaction()``), with views of what was committed. A failed
driver call leaves the commit standing and tells CORE the data plane is out of sync, which
``sync`` heals.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import models as m
from mcloud.network import models_l3 as ml
from mcloud.network.drivers.base import QosRules
from mcloud.network.errors_core import NeutronError, conflict
from mcloud.network.schemas import is_uuid
from mcloud.network.service import Ids
from mcloud.network.service_l3_base import (FLOATINGIP, ROUTER_GATEWAY, ROUTER_INTERFACE_OWNERS, Caller, Page,
                                            check_revision, list_page, list_query, owns, paged, sort_keys)
from mcloud.network.service_l3_routers import Routers
from mcloud.network.service_qos import Qos, rules_of
from mcloud.network.service_secgroups import SecurityGroups
from mcloud.network.service_trunk import Trunks

if TYPE_CHECKING:
    from mcloud.network.service import NetworkService

log = logging.getLogger("mcloud.network.l3")

#: advertised whatever the data plane
ALWAYS = frozenset({"router", "ext-gw-mode", "extraroute", "extraroute-atomic", "security-group",
                    "security-groups-normalized-cidr", "security-groups-rules-belongs-to-default-sg",
                    "fip-port-details", "standard-attr-description"})
#: advertised when the driver lists the first alias of the group
GATED = {"qos": ("qos", "qos-default", "qos-rule-type-details", "qos-port-network-policy"),
         "qos-bw-limit-direction": ("qos-bw-limit-direction",),
         "trunk": ("trunk", "trunk-details"),
         "floating-ip-port-forwarding": ("floating-ip-port-forwarding", "expose-port-forwarding-in-fip",
                                         "floating-ip-port-forwarding-description"),
         "stateful-security-group": ("stateful-security-group",)}
QUOTA_DEFAULTS = {"router": 10, "floatingip": 50, "security_group": 10, "security_group_rule": 100}
#: tag collections L3 owns -> how the rows are found
TAG_COLLECTIONS = {"routers": ml.Router, "floatingips": ml.FloatingIP, "security-groups": ml.SecurityGroup,
                   "security_groups": ml.SecurityGroup, "policies": ml.QosPolicy, "trunks": ml.Trunk}


@dataclasses.dataclass(slots=True)
class PortExtras:
    """What L3 adds to a port: rendered into its body (``fields()``) and into its PortView.
    Ports with the same extras (a list's thousands of ports in their project's default group)
    share one, and its body fields."""

    security_groups: tuple[str, ...] = ()
    qos_policy_id: str | None = None
    #: the network's policy (Neutron's qos_network_policy_id)
    qos_network_policy_id: str | None = None
    #: the effective QoS for the data plane (the port's policy, else its network's), or None
    qos: QosRules | None = None
    #: a trunk subport: its trunk's parent port and VLAN tag
    parent_port_id: str | None = None
    vlan_tag: int | None = None
    #: a trunk's parent port: Neutron's ``trunk_details`` ({"trunk_id", "sub_ports": [...]})
    trunk_details: dict[str, Any] | None = None
    _fields: dict[str, Any] | None = dataclasses.field(default=None, repr=False, compare=False)

    def fields(self) -> dict[str, Any]:
        """The port body's L3 attributes (made once; ports sharing these extras share them:
        a renderer copies the dict into each body, never changes what it holds)."""
        if self._fields is None:
            out: dict[str, Any] = {"security_groups": list(self.security_groups), "qos_policy_id": self.qos_policy_id,
                                   "qos_network_policy_id": self.qos_network_policy_id}
            if self.trunk_details is not None:
                out["trunk_details"] = self.trunk_details
            self._fields = out
        return self._fields


class L3Service(SecurityGroups, Routers, Qos, Trunks):
    def __init__(self, network: NetworkService):
        self.net = network

    # ------------------------------------------------------------------ shared plumbing

    def after_commit_call(self, session: AsyncSession, method: str, *args: Any) -> None:
        """``driver.<method>(*args)`` once ``session``'s transaction commits (CORE's ``write()``
        runs the queue, and marks the data plane out of sync when a call fails)."""

        async def call() -> None:
            await getattr(self.net.driver, method)(*args)

        self.net.after_commit(session, call)

    async def owned_page(self, caller: Caller, model: Any, resource: str, filters: dict[str, Any],
                         sort_columns: dict[str, Any], params: dict[str, list[str]], limit: int | None,
                         marker: str | None, reverse: bool, rule: str, render: Any, visible: Any = None) -> Page:
        """One page of a project-owned L3 collection: filtered, sorted and paged in SQL, the
        caller's own rows (or ``visible``; all for the admin), each allowed by ``rule``."""
        query = list_query(sa.select(model), model, params, filters, resource)
        if not caller.is_admin:
            query = query.where(visible if visible is not None else model.project_id == caller.project_id)
        sort = sort_keys(params, sort_columns)
        async with self.net.db.read() as session:
            rows, more = await paged(session, query, model.id, sort, limit, marker, reverse)
            allowed = [r for r in rows if caller.allowed(rule, self.target(r))]
            return list_page(rows, more, await render(session, allowed))

    @staticmethod
    def target(row: Any) -> dict[str, Any]:
        """The policy target of an L3 resource."""
        target = {"id": row.id, "project_id": row.project_id, "tenant_id": row.project_id}
        if hasattr(row, "shared"):
            target["shared"] = row.shared
        return target

    @staticmethod
    def parent_target(parent: Any) -> dict[str, Any]:
        """The target of a sub-resource (a QoS rule, a port forwarding): its parent's project."""
        return {"project_id": parent.project_id, "tenant_id": parent.project_id,
                "ext_parent:project_id": parent.project_id, "ext_parent:tenant_id": parent.project_id}

    async def port_ips(self, session: AsyncSession, port_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        """{port id: [(subnet id, address), ...]} for every given port (empty when it has none)."""
        ids = list(dict.fromkeys(p for p in port_ids if p))
        found = await self.net.fixed_ips(session, ids)
        return {p: found.get(p, []) for p in ids}

    async def set_port_owner(self, session: AsyncSession, port: Any, device_owner: str, device_id: str) -> None:
        """A router or trunk takes (or gives back) a port: its device_owner and device_id."""
        port.device_owner = device_owner
        port.device_id = device_id
        port.touch()
        await session.flush()
        await self.reensure_ports(session, [port.id])

    def port_filter(self, name: str, values: list[str]) -> Any:
        """CORE's port list filters on L3 attributes: security_groups, qos_policy_id."""
        if name == "security_groups":
            return m.Port.id.in_(sa.select(ml.PortSecurityGroup.port_id)
                                 .where(ml.PortSecurityGroup.security_group_id.in_(values)))
        if name == "qos_policy_id":
            return m.Port.id.in_(sa.select(ml.PortQos.port_id).where(ml.PortQos.policy_id.in_(values)))
        return None

    async def reensure_ports(self, session: AsyncSession, port_ids: list[str]) -> None:
        """Hand the driver the ports again after the commit (groups, QoS or trunk changed)."""
        ids = [p for p in dict.fromkeys(port_ids) if p]
        if not ids:
            return
        views = await self.net.port_views(session, ids)
        for port_id in ids:
            if port_id in views:
                self.after_commit_call(session, "ensure_port", views[port_id])

    def has_extension(self, alias: str) -> bool:
        return alias in self.extension_aliases()

    def require_extension(self, alias: str) -> None:
        """A feature of an extension the data plane does not offer is a 404, as an unloaded
        Neutron extension is (its attributes a 400)."""
        if not self.has_extension(alias):
            raise NeutronError(400, "HTTPBadRequest", f"The '{alias}' extension is not supported by the network "
                                                      "data plane of this cloud.")

    @staticmethod
    def check_revision(row: Any, if_match: str | None) -> None:
        check_revision(row, if_match)

    @staticmethod
    def is_uuid(value: Any) -> bool:
        return is_uuid(value)

    async def check_quota(self, session: AsyncSession, project_id: str, resource: str, adding: int) -> None:
        await self.net.check_quota(session, project_id, resource, adding)

    async def tags_of(self, session: AsyncSession, collection: str, ids: list[str]) -> dict[str, list[str]]:
        return await self.net.tags_of(session, ids)

    async def drop_tags(self, session: AsyncSession, collection: str, resource_id: str) -> None:
        await session.execute(sa.delete(m.Tag).where(m.Tag.resource_id == resource_id))

    # ------------------------------------------------------------------ hooks CORE calls

    def extension_aliases(self) -> set[str]:
        offered = getattr(self.net.driver, "extensions", frozenset()) if getattr(self.net, "driver", None) else frozenset()
        aliases = set(ALWAYS)
        for key, group in GATED.items():
            if key in offered and (not key.startswith("qos-") or "qos" in offered):
                aliases.update(group)
        return aliases

    async def port_extras(self, session: AsyncSession, ports: list[Any], ids: Ids | None = None) -> dict[str, PortExtras]:
        """{port id: PortExtras} of ``ports`` (ORM ports or plain rows with id, network_id and
        device_owner): groups, QoS bindings (the port's and its network's) and trunk roles in one
        query over ``ids`` (the ports' ids, or the page query that selects them); the rules of
        the policies that apply and the subports of trunk parents only when there are any."""
        if not ports:
            return {}
        which = ids if ids is not None else Ids([p.id for p in ports])
        psg, pq, nq = ml.PortSecurityGroup.__table__, ml.PortQos.__table__, ml.NetworkQos.__table__
        sub, trunk = ml.SubPort.__table__, ml.Trunk.__table__
        nets = Ids(list({p.network_id for p in ports}), sa.select(m.Port.network_id).where(which.where(m.Port.id)))
        no_tag = sa.cast(sa.null(), sa.Integer)
        facts = sa.union_all(
            sa.select(sa.literal("g"), psg.c.port_id, psg.c.security_group_id, no_tag).where(which.where(psg.c.port_id)),
            sa.select(sa.literal("q"), pq.c.port_id, pq.c.policy_id, no_tag).where(which.where(pq.c.port_id)),
            sa.select(sa.literal("n"), nq.c.network_id, nq.c.policy_id, no_tag).where(nets.where(nq.c.network_id)),
            sa.select(sa.literal("s"), sub.c.port_id, trunk.c.port_id, sub.c.segmentation_id)
            .join_from(sub, trunk, trunk.c.id == sub.c.trunk_id).where(which.where(sub.c.port_id)),
            sa.select(sa.literal("t"), trunk.c.port_id, trunk.c.id, no_tag).where(which.where(trunk.c.port_id)))
        groups: dict[str, list[str]] = {}
        own: dict[str, str] = {}
        network_policy: dict[str, str] = {}
        subport: dict[str, tuple[str, int]] = {}
        parent_of: dict[str, str] = {}
        for kind, key, value, tag in await session.execute(facts):
            if kind == "g":
                groups.setdefault(key, []).append(value)
            elif kind == "q":
                own[key] = value
            elif kind == "n":
                network_policy[key] = value
            elif kind == "s":
                subport[key] = (value, tag)
            else:
                parent_of[key] = value
        rules = await self._rules(session, list(set(own.values()) | set(network_policy.values())))
        details = await self.trunk_details(session, parent_of) if parent_of else {}
        # ports with the same extras share one PortExtras (and its body fields)
        shared: dict[tuple[Any, ...], PortExtras] = {}
        out = {}
        for port in ports:
            pid = port.id
            found = groups.get(pid)
            names = () if found is None else (found[0],) if len(found) == 1 else tuple(sorted(found))
            mine = own.get(pid) if own else None
            network = network_policy.get(port.network_id) if network_policy else None
            applied = mine or (network and (None if (port.device_owner or "").startswith("network:") else network))
            role = subport.get(pid) if subport else None
            key = (names, mine, network, applied, role)
            x = shared.get(key)
            if x is None or pid in details:
                parent, vlan = role or (None, None)
                x = PortExtras(security_groups=names, qos_policy_id=mine, qos_network_policy_id=network,
                               qos=rules_of(rules[applied]) if applied and rules[applied] else None,
                               parent_port_id=parent, vlan_tag=vlan, trunk_details=details.get(pid))
                if pid not in details:
                    shared[key] = x
            out[pid] = x
        return out

    async def set_port_extras(self, session: AsyncSession, port: Any, body: dict[str, Any], creating: bool) -> None:
        if creating:
            await self._new_port_extras(session, port, body)
            return
        if "security_groups" in body or "port_security_enabled" in body:
            await self.set_port_groups(session, port, body.get("security_groups") if "security_groups" in body
                                       else (await self.port_groups(session, [port.id]))[port.id], False)
        if "qos_policy_id" in body:
            if body["qos_policy_id"] is not None and not self.has_extension("qos"):
                raise NeutronError(400, "HTTPBadRequest", "Unrecognized attribute(s) 'qos_policy_id'")
            await self.set_port_policy(session, port, body["qos_policy_id"])

    async def _new_port_extras(self, session: AsyncSession, port: Any, body: dict[str, Any]) -> None:
        """A new port's groups (given, or its project's default group) and QoS policy; what they
        make of it is kept in ``session.info["new_port_extras"]`` for CORE to render the port
        with (it is not read back). One read finds the default group and the network's policy."""
        policy = body.get("qos_policy_id")
        if policy is not None and not self.has_extension("qos"):
            raise NeutronError(400, "HTTPBadRequest", "Unrecognized attribute(s) 'qos_policy_id'")
        trusted = (port.device_owner or "").startswith("network:")
        takes_default = "security_groups" not in body and not trusted and bool(port.port_security_enabled)
        d, nq = ml.DefaultSecurityGroup, ml.NetworkQos
        default_id, network_policy = (await session.execute(sa.select(
            sa.select(d.security_group_id).where(d.project_id == port.project_id).scalar_subquery()
            if takes_default else sa.null(),
            sa.select(nq.policy_id).where(nq.network_id == port.network_id).scalar_subquery()))).one()
        groups = await self.set_port_groups(session, port, body.get("security_groups"), True, default_id)
        mine = await self.set_port_policy(session, port, policy, creating=True) if policy is not None else None
        applied = mine or (None if trusted else network_policy)
        rules = (await self._rules(session, [applied]))[applied] if applied else None
        session.info.setdefault("new_port_extras", {})[port.id] = PortExtras(
            security_groups=tuple(groups), qos_policy_id=mine, qos_network_policy_id=network_policy,
            qos=rules_of(rules) if rules else None)

    async def network_extras(self, session: AsyncSession, networks: list[Any]) -> dict[str, dict[str, Any]]:
        found = await self.network_policies(session, [n.id for n in networks])
        return {n.id: {"qos_policy_id": found[n.id]} for n in networks}

    async def set_network_extras(self, session: AsyncSession, network: Any, body: dict[str, Any],
                                 creating: bool) -> None:
        if "qos_policy_id" in body or creating:
            if body.get("qos_policy_id") is not None and not self.has_extension("qos"):
                raise NeutronError(400, "HTTPBadRequest", "Unrecognized attribute(s) 'qos_policy_id'")
            await self.set_network_policy(session, network, body.get("qos_policy_id"), creating)

    async def before_port_delete(self, session: AsyncSession, port: Any, by_owner: bool) -> None:
        if not by_owner:
            owned = await self.router_of_port(session, port.id) is not None or (
                port.device_owner == FLOATINGIP and await session.scalar(
                    sa.select(sa.func.count()).select_from(ml.FloatingIP).where(ml.FloatingIP.floating_port_id == port.id)))
            if owned:
                raise conflict("L3PortInUse", f"Port {port.id} has owner {port.device_owner} and therefore cannot be "
                                              "deleted directly via the port API.")
            parent_of, sub_of = await self.trunk_of_port(session, port.id)
            if parent_of is not None:
                raise conflict("PortInUseAsTrunkParent", f"Port {port.id} is currently a parent port for trunk "
                                                         f"{parent_of}.")
            if sub_of is not None:
                raise conflict("PortInUseAsSubPort", f"Port {port.id} is currently a subport for trunk {sub_of}.")
        for fip in (await session.execute(sa.select(ml.FloatingIP).where(ml.FloatingIP.fixed_port_id == port.id))).scalars():
            self._disassociate(fip)
            fip.touch()
            await session.flush()
            await self.after_fip_change(session, fip.id)
        touched = set((await session.execute(sa.select(ml.PortForwarding.floatingip_id)
                                             .where(ml.PortForwarding.internal_port_id == port.id))).scalars())
        if touched:
            await session.execute(sa.delete(ml.PortForwarding).where(ml.PortForwarding.internal_port_id == port.id))
            await session.flush()
            for fip_id in sorted(touched):
                await self.after_fip_change(session, fip_id)
        groups = (await self.port_groups(session, [port.id]))[port.id]
        await session.execute(sa.delete(ml.PortSecurityGroup).where(ml.PortSecurityGroup.port_id == port.id))
        await session.execute(sa.delete(ml.PortQos).where(ml.PortQos.port_id == port.id))
        await session.flush()
        for group_id in groups:
            self.after_commit_call(session, "ensure_security_group", await self.group_view(session, group_id))

    async def _l3_ports_on(self, session: AsyncSession, subnet_id: str | None = None,
                           network_id: str | None = None) -> list[str]:
        owners = (ROUTER_GATEWAY, FLOATINGIP, *ROUTER_INTERFACE_OWNERS)
        if subnet_id is not None:
            query = sa.select(m.Port.id).join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id).where(
                m.IPAllocation.subnet_id == subnet_id)
        else:
            query = sa.select(m.Port.id).where(m.Port.network_id == network_id)
        return list((await session.execute(query.where(m.Port.device_owner.in_(owners)))).scalars())

    async def before_subnet_delete(self, session: AsyncSession, subnet: Any) -> None:
        if await self._l3_ports_on(session, subnet_id=subnet.id):
            raise conflict("SubnetInUse", f"Unable to complete operation on subnet {subnet.id}: One or more ports "
                                          "have an IP allocation from this subnet.")

    async def before_network_delete(self, session: AsyncSession, network: Any) -> None:
        """An external network goes with its unassociated floating IPs (Neutron's
        delete_disassociated_floatingips); any other L3 port on it keeps it (409)."""
        for fip in (await session.execute(sa.select(ml.FloatingIP).where(
                ml.FloatingIP.floating_network_id == network.id, ml.FloatingIP.fixed_port_id.is_(None),
                ml.FloatingIP.router_id.is_(None)))).scalars():
            await self._delete_fip(session, fip)
        if await self._l3_ports_on(session, network_id=network.id):
            raise conflict("NetworkInUse", f"Unable to complete operation on network {network.id}. There are one or "
                                           "more ports still in use on the network.")

    async def desired_state(self, session: AsyncSession) -> dict[str, tuple[Any, ...]]:
        routers = [await self.router_view(session, r) for r in (await session.execute(
            sa.select(ml.Router.id).order_by(ml.Router.id))).scalars()]
        fips = [await self.fip_view(session, f) for f in (await session.execute(
            sa.select(ml.FloatingIP.id).order_by(ml.FloatingIP.id))).scalars()]
        return {"security_groups": tuple(await self.group_views(session)),
                "routers": tuple(r for r in routers if r is not None),
                "floating_ips": tuple(f for f in fips if f is not None)}

    def quota_defaults(self) -> dict[str, int]:
        return dict(QUOTA_DEFAULTS)

    async def quota_usage(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        return {**await self.router_usage(session, project_id), **await self.security_group_usage(session, project_id)}

    async def tag_target(self, session: AsyncSession, caller: Caller, collection: str, resource_id: str) -> str | None:
        """The project of an L3 resource the caller may see, for CORE's tags API; None when the
        collection is not L3's. 404 when the caller cannot see it."""
        model = TAG_COLLECTIONS.get(collection)
        if model is None:
            return None
        row = await session.get(model, resource_id) if isinstance(resource_id, str) else None
        visible = row is not None and (owns(caller, row.project_id) or (model is ml.QosPolicy and row.shared))
        if not visible:
            raise NeutronError(404, "HTTPNotFound", f"{collection} {resource_id} could not be found.")
        return row.project_id
