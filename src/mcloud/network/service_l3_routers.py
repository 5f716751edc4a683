"""Routers, floating IPs and port forwardings, as Neutron's l3_db does them.

A router's gateway and interfaces are real ports made through CORE's internal port API (IPAM
included): the gateway port (device_owner ``network:router_gateway``, no project) on the
external network, an interface port (``network:router_interface``, the subnet's project) per
attached subnet holding the subnet's gateway address, or a port the caller made and hands over.
A floating IP owns a port on its external network (``network:floatingip``) holding its address;
associated, it names the internal port, its fixed address and the router that reaches both.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import models as m
from mcloud.network import models_l3 as ml
from mcloud.network.drivers.base import FloatingIPView, PortForwardingView, RouterView, StaticRoute
from mcloud.network.service_l3_base import (FLOATINGIP, ROUTER_GATEWAY, ROUTER_INTERFACE, ROUTER_INTERFACE_OWNERS,
                                            Caller, Page, bad_request, bool_filter, conflict, error, get_port,
                                            get_subnet, in_cidr, int_filter, ip_version, list_page,
                                            network_external, new_id, not_found, overlaps, owner_fields, owns,
                                            ports_by_id, paged, sort_keys, sql_filters, standard, standard_filters,
                                            standard_sort, str_filter, subnets_of)

MAX_ROUTES = 30


def route_list(value: Any) -> list[dict[str, str]]:
    """Neutron's ``type:hostroutes`` for ``routes``: destination CIDR and nexthop address, no repeats."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise error(400, "HTTPBadRequest", f"Invalid input for routes. Reason: '{value}' is not a list.")
    out: list[dict[str, str]] = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise error(400, "HTTPBadRequest", f"Invalid input for routes. Reason: Validation of dictionary's "
                                               f"keys failed. Expected keys: {{'destination', 'nexthop'}} "
                                               f"Provided keys: {set(route) if isinstance(route, dict) else route}.")
        dest, hop = route["destination"], route["nexthop"]
        try:
            if not isinstance(dest, str) or not isinstance(hop, str) or "/" not in dest:
                raise ValueError
            network = ipaddress.ip_network(dest, strict=False)
            if str(network) != dest and str(ipaddress.ip_interface(dest)) != dest:
                raise ValueError
            nexthop = ipaddress.ip_address(hop)
        except ValueError:
            raise error(400, "HTTPBadRequest",
                        f"Invalid input for routes. Reason: '{route}' is not a valid route.") from None
        item = {"destination": str(network), "nexthop": str(nexthop)}
        if item in out:
            raise error(400, "HTTPBadRequest", f"Invalid input for routes. Reason: Duplicate hostroute '{route}'.")
        out.append(item)
    return out


def fixed_ip_list(value: Any, what: str) -> list[dict[str, str]]:
    """``external_fixed_ips``: [{"subnet_id"?, "ip_address"?}, ...]."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise error(400, "HTTPBadRequest", f"Invalid input for {what}. Reason: '{value}' is not a list.")
    out = []
    for item in value:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address"}:
            raise error(400, "HTTPBadRequest", f"Invalid input for {what}. Reason: '{item}' is not a valid "
                                               "fixed IP (subnet_id and/or ip_address).")
        if "ip_address" in item:
            try:
                ipaddress.ip_address(item["ip_address"])
            except (ValueError, TypeError):
                raise error(400, "HTTPBadRequest", f"Invalid input for {what}. Reason: '{item['ip_address']}' "
                                                   "is not a valid IP address.") from None
        if "subnet_id" in item and not isinstance(item["subnet_id"], str):
            raise error(400, "HTTPBadRequest", f"Invalid input for {what}. Reason: '{item['subnet_id']}' is not "
                                               "a valid UUID.")
        out.append(dict(item))
    return out


class Routers:
    """Mixed into L3Service."""

    # ------------------------------------------------------------ rendering

    async def render_routers(self, session: AsyncSession, routers: list[ml.Router]) -> list[dict[str, Any]]:
        ids = [r.id for r in routers]
        routes: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        if ids:
            for row in (await session.execute(sa.select(ml.RouterRoute).where(ml.RouterRoute.router_id.in_(ids))
                                              .order_by(ml.RouterRoute.destination, ml.RouterRoute.nexthop))).scalars():
                routes[row.router_id].append({"destination": row.destination, "nexthop": row.nexthop})
        gw_ports = [r.gw_port_id for r in routers if r.gw_port_id]
        ips = await self.port_ips(session, gw_ports)
        nets = {p.id: p.network_id for p in (await ports_by_id(session, gw_ports)).values()}
        tags = await self.tags_of(session, "routers", ids)
        out = []
        for r in routers:
            gateway = None
            if r.gw_port_id and r.gw_port_id in nets:
                gateway = {"network_id": nets[r.gw_port_id], "enable_snat": r.enable_snat,
                           "external_fixed_ips": [{"subnet_id": s, "ip_address": a} for s, a in ips[r.gw_port_id]]}
            out.append({"id": r.id, "name": r.name, **owner_fields(r.project_id), "admin_state_up": r.admin_state_up,
                        "status": r.status, "external_gateway_info": gateway, "routes": routes[r.id],
                        "tags": tags.get(r.id, []), **standard(r)})
        return out

    async def router_row(self, session: AsyncSession, caller: Caller, router_id: Any,
                         rule: str | None = None) -> ml.Router:
        """The router the caller may see (404 otherwise), authorized for ``rule`` (403)."""
        router = await session.get(ml.Router, router_id) if isinstance(router_id, str) else None
        if router is None or not owns(caller, router.project_id) or not caller.allowed("get_router",
                                                                                      self.target(router)):
            raise not_found("RouterNotFound", f"Router {router_id} could not be found")
        if rule is not None:
            caller.enforce(rule, self.target(router))
        return router

    ROUTER_SORT = standard_sort(ml.Router, "name", "status", "admin_state_up")

    def router_filters(self) -> dict[str, Any]:
        r = ml.Router
        gw_network = sa.select(ml.Router.id).join(m.Port, m.Port.id == ml.Router.gw_port_id)
        return {**standard_filters(r), "name": str_filter(r.name), "status": str_filter(r.status),
                "admin_state_up": bool_filter(r.admin_state_up, "admin_state_up"),
                "enable_snat": bool_filter(r.enable_snat, "enable_snat"),
                "external_gateway_info": lambda values: sa.true(),
                "external_gateway_info.network_id": lambda values: r.id.in_(
                    gw_network.where(m.Port.network_id.in_(values)))}

    async def list_routers(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                           marker: str | None = None, page_reverse: bool = False) -> Page:
        return await self.owned_page(caller, ml.Router, "router", self.router_filters(), self.ROUTER_SORT, params,
                                     limit, marker, page_reverse, "get_router", self.render_routers)

    async def get_router(self, session: AsyncSession, caller: Caller, router_id: str) -> dict[str, Any]:
        return (await self.render_routers(session, [await self.router_row(session, caller, router_id)]))[0]

    # ------------------------------------------------------------ create, update, delete

    def _enforce_gateway(self, caller: Caller, action: str, target: dict[str, Any], gateway: Any) -> None:
        caller.enforce(f"{action}_router:external_gateway_info", target)
        if isinstance(gateway, dict):
            for key in ("network_id", "enable_snat", "external_fixed_ips"):
                if key in gateway:
                    caller.enforce(f"{action}_router:external_gateway_info:{key}", target)

    async def create_router(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> str:
        project_id = body["project_id"]
        target = {"project_id": project_id, "tenant_id": project_id}
        caller.enforce("create_router", target)
        if body.get("external_gateway_info"):
            self._enforce_gateway(caller, "create", target, body["external_gateway_info"])
        await self.check_quota(session, project_id, "router", 1)
        router = ml.Router(id=new_id(), project_id=project_id, name=body.get("name") or "",
                           description=body.get("description") or "",
                           admin_state_up=body.get("admin_state_up", True))
        session.add(router)
        await session.flush()
        gateway = body.get("external_gateway_info")
        if gateway:
            await self._set_gateway(session, caller, router, gateway)
        await self.after_router_change(session, router.id)
        return router.id

    async def update_router(self, session: AsyncSession, caller: Caller, router_id: str, body: dict[str, Any],
                            if_match: str | None = None) -> None:
        router = await self.router_row(session, caller, router_id, "update_router")
        if "external_gateway_info" in body:
            self._enforce_gateway(caller, "update", self.target(router), body["external_gateway_info"])
        self.check_revision(router, if_match)
        for key in ("name", "description", "admin_state_up"):
            if key in body:
                setattr(router, key, body[key] if body[key] is not None else "")
        if "external_gateway_info" in body:
            gateway = body["external_gateway_info"]
            if gateway:
                await self._set_gateway(session, caller, router, gateway)
            else:
                await self._clear_gateway(session, router)
        if "routes" in body:
            await self._set_routes(session, router, route_list(body["routes"]))
        router.touch()
        await session.flush()
        await self.after_router_change(session, router.id)

    async def delete_router(self, session: AsyncSession, caller: Caller, router_id: str) -> None:
        router = await self.router_row(session, caller, router_id, "delete_router")
        interfaces = await self._router_ports(session, router.id, interfaces=True)
        if interfaces:
            raise conflict("RouterInUse", f"Router {router.id} still has ports")
        await self._clear_gateway(session, router)
        await session.execute(sa.delete(ml.RouterRoute).where(ml.RouterRoute.router_id == router.id))
        await session.delete(router)
        await session.flush()
        await self.drop_tags(session, "routers", router.id)
        self.after_commit_call(session, "delete_router", router.id)

    # ------------------------------------------------------------ the gateway

    async def _set_gateway(self, session: AsyncSession, caller: Caller, router: ml.Router,
                           info: Any) -> None:
        if not isinstance(info, dict) or set(info) - {"network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"}:
            raise error(400, "HTTPBadRequest", f"Invalid input for external_gateway_info. Reason: '{info}' is not "
                                               "a valid gateway (network_id, enable_snat, external_fixed_ips).")
        if "network_id" not in info:
            raise error(400, "HTTPBadRequest", "Invalid input for external_gateway_info. Reason: Validation of "
                                               "dictionary's keys failed. Expected keys: {'network_id'}.")
        network_id = info["network_id"]
        network = await self.net.get_network_row(session, caller, network_id)
        if not network_external(network):
            raise bad_request("router", f"Network {network_id} is not an external network")
        enable_snat = info.get("enable_snat", True)
        if not isinstance(enable_snat, bool):
            raise error(400, "HTTPBadRequest", f"Invalid input for enable_snat. Reason: '{enable_snat}' is not "
                                               "a boolean.")
        wanted_ips = fixed_ip_list(info.get("external_fixed_ips"), "external_fixed_ips")
        for item in wanted_ips:
            if "subnet_id" in item:
                subnet = await get_subnet(session, item["subnet_id"])
                if subnet is None or subnet.network_id != network.id:
                    raise bad_request("router", f"Subnet {item['subnet_id']} does not belong to network "
                                                f"{network.id}")
        current = await get_port(session, router.gw_port_id) if router.gw_port_id else None
        if current is not None and current.network_id == network.id and not wanted_ips:
            router.enable_snat = enable_snat
            return
        if current is not None and current.network_id == network.id and wanted_ips:
            have = (await self.port_ips(session, [current.id]))[current.id]
            if all(any((i.get("subnet_id") in (None, s)) and (i.get("ip_address") in (None, a)) for s, a in have)
                   for i in wanted_ips) and len(wanted_ips) == len(have):
                router.enable_snat = enable_snat
                return
        if current is not None:
            await self._clear_gateway(session, router, changing_to=network.id)
        if not any(s.ip_version == 4 for s in await subnets_of(session, network.id)) and not wanted_ips \
                and not await subnets_of(session, network.id):
            raise bad_request("router", f"No subnets on external network {network.id}")
        port = await self.net.create_port_internal(
            session, project_id="", network_id=network.id, fixed_ips=wanted_ips or None,
            device_owner=ROUTER_GATEWAY, device_id=router.id, name="", admin_state_up=True)
        session.add(ml.RouterPort(port_id=port.id, router_id=router.id, port_type=ROUTER_GATEWAY))
        router.gw_port_id = port.id
        router.enable_snat = enable_snat
        await session.flush()

    async def _clear_gateway(self, session: AsyncSession, router: ml.Router, changing_to: str | None = None) -> None:
        if not router.gw_port_id:
            return
        port = await get_port(session, router.gw_port_id)
        if port is not None and port.network_id != changing_to:
            used = (await session.execute(sa.select(ml.FloatingIP.id).where(
                ml.FloatingIP.router_id == router.id,
                ml.FloatingIP.floating_network_id == port.network_id))).first()
            if used is not None:
                raise conflict("RouterExternalGatewayInUseByFloatingIp",
                               f"Gateway cannot be updated for router {router.id}, since a gateway to external "
                               f"network {port.network_id} is required by one or more floating IPs.")
        port_id = router.gw_port_id
        router.gw_port_id = None
        await session.flush()
        await session.execute(sa.delete(ml.RouterPort).where(ml.RouterPort.port_id == port_id))
        if port is not None:
            await self.net.delete_port_internal(session, port_id)

    # ------------------------------------------------------------ routes

    async def _router_ports(self, session: AsyncSession, router_id: str, interfaces: bool | None = None) -> list[str]:
        query = sa.select(ml.RouterPort.port_id).where(ml.RouterPort.router_id == router_id)
        if interfaces is True:
            query = query.where(ml.RouterPort.port_type.in_(ROUTER_INTERFACE_OWNERS))
        return list((await session.execute(query.order_by(ml.RouterPort.port_id))).scalars())

    async def _router_cidrs(self, session: AsyncSession, router_id: str) -> tuple[list[str], set[str]]:
        """The CIDRs of the subnets the router has a port on, and the router's own addresses."""
        ports = await self._router_ports(session, router_id)
        ips = await self.port_ips(session, ports)
        cidrs, own = [], set()
        for port_ips in ips.values():
            for subnet_id, address in port_ips:
                own.add(address)
                subnet = await get_subnet(session, subnet_id)
                if subnet is not None:
                    cidrs.append(subnet.cidr)
        return cidrs, own

    async def _check_routes(self, session: AsyncSession, router: ml.Router, routes: list[dict[str, str]]) -> None:
        if len(routes) > MAX_ROUTES:
            raise error(400, "RoutesExhausted", f"Unable to complete operation for {router.id}. The number of "
                                                f"routes exceeds the maximum {MAX_ROUTES}.")
        cidrs, own = await self._router_cidrs(session, router.id)
        for route in routes:
            if not any(in_cidr(route["nexthop"], c) for c in cidrs):
                raise error(400, "InvalidRoutes", f"Invalid format for routes: {[route]}, the nexthop is not "
                                                  "connected with router")
            if route["nexthop"] in own:
                raise error(400, "InvalidRoutes", f"Invalid format for routes: {[route]}, the nexthop is used by "
                                                  "router")

    async def _set_routes(self, session: AsyncSession, router: ml.Router, routes: list[dict[str, str]]) -> None:
        await self._check_routes(session, router, routes)
        await session.execute(sa.delete(ml.RouterRoute).where(ml.RouterRoute.router_id == router.id))
        for route in routes:
            session.add(ml.RouterRoute(router_id=router.id, **route))
        await session.flush()

    async def _current_routes(self, session: AsyncSession, router_id: str) -> list[dict[str, str]]:
        return [{"destination": r.destination, "nexthop": r.nexthop} for r in (await session.execute(
            sa.select(ml.RouterRoute).where(ml.RouterRoute.router_id == router_id)
            .order_by(ml.RouterRoute.destination, ml.RouterRoute.nexthop))).scalars()]

    async def change_extraroutes(self, session: AsyncSession, caller: Caller, router_id: str, body: Any,
                                 add: bool) -> None:
        """add_extraroutes / remove_extraroutes: routes added or removed atomically."""
        router = await self.router_row(session, caller, router_id, "add_extraroutes" if add else "remove_extraroutes")
        if not isinstance(body, dict) or set(body) != {"router"} or not isinstance(body["router"], dict) \
                or set(body["router"]) != {"routes"}:
            raise bad_request("router", "The body must be {\"router\": {\"routes\": [...]}}")
        given = route_list(body["router"]["routes"])
        current = await self._current_routes(session, router.id)
        if add:
            wanted = current + [r for r in given if r not in current]
        else:
            wanted = [r for r in current if r not in given]
        await self._set_routes(session, router, wanted)
        router.touch()
        await self.after_router_change(session, router.id)

    # ------------------------------------------------------------ interfaces

    def _interface_info(self, body: Any) -> tuple[str | None, str | None]:
        if not isinstance(body, dict):
            raise bad_request("router", "Either subnet_id or port_id must be specified")
        port_id, subnet_id = body.get("port_id"), body.get("subnet_id")
        if "port_id" not in body and "subnet_id" not in body:
            raise bad_request("router", "Either subnet_id or port_id must be specified")
        for key in ("port_id", "subnet_id"):
            if key in body and not self.is_uuid(body[key]):
                raise bad_request("router", f"'{body[key]}' is not a valid UUID")
        if "port_id" in body and "subnet_id" in body:
            raise bad_request("router", "Cannot specify both subnet-id and port-id")
        return port_id, subnet_id

    async def _check_subnets_free(self, session: AsyncSession, router: ml.Router, subnets: list[Any]) -> None:
        """Neutron's _check_for_dup_router_subnets: one port per subnet, no overlapping CIDRs."""
        ports = await self._router_ports(session, router.id)
        for _port_id, port_ips in (await self.port_ips(session, ports)).items():
            for subnet_id, _address in port_ips:
                existing = await get_subnet(session, subnet_id)
                if existing is None:
                    continue
                for new in subnets:
                    if new.id == existing.id:
                        raise bad_request("router", f"Router already has a port on subnet {new.id}")
                    if overlaps(new.cidr, existing.cidr):
                        raise bad_request("router", f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr "
                                                    f"{existing.cidr} of subnet {existing.id}")

    async def add_router_interface(self, session: AsyncSession, caller: Caller, router_id: str,
                                   body: Any) -> dict[str, Any]:
        router = await self.router_row(session, caller, router_id, "add_router_interface")
        port_id, subnet_id = self._interface_info(body)
        if port_id is not None:
            port = await self.net.get_port_row(session, caller, port_id)
            if port.device_id or port.device_owner:
                raise conflict("PortInUse", f"Unable to complete operation on port {port.id} for network "
                                            f"{port.network_id}. Port already has an attached device "
                                            f"{port.device_id}.")
            ips = (await self.port_ips(session, [port.id]))[port.id]
            if not ips:
                raise bad_request("router", "Router port must have at least one fixed IP")
            if sum(1 for _s, a in ips if ip_version(a) == 4) > 1:
                raise bad_request("router", "Cannot have multiple IPv4 subnets on router port")
            subnets = [s for s in [await get_subnet(session, s) for s, _a in ips] if s is not None]
            await self._check_subnets_free(session, router, subnets)
            await self.set_port_owner(session, port, device_owner=ROUTER_INTERFACE, device_id=router.id)
        else:
            subnet = await self.net.get_subnet_row(session, caller, subnet_id)
            if not subnet.gateway_ip:
                raise bad_request("router", "Subnet for router interface must have a gateway IP")
            await self._check_subnets_free(session, router, [subnet])
            port = await self.net.create_port_internal(
                session, project_id=subnet.project_id, network_id=subnet.network_id,
                fixed_ips=[{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}],
                device_owner=ROUTER_INTERFACE, device_id=router.id, name="", admin_state_up=True)
            subnets = [subnet]
        session.add(ml.RouterPort(port_id=port.id, router_id=router.id, port_type=ROUTER_INTERFACE))
        router.touch()
        await session.flush()
        await self.after_router_change(session, router.id, ports=[port.id])
        return self._interface_body(router, port, [s.id for s in subnets])

    def _interface_body(self, router: ml.Router, port: Any, subnet_ids: list[str]) -> dict[str, Any]:
        return {"id": router.id, **owner_fields(router.project_id), "port_id": port.id,
                "network_id": port.network_id, "subnet_id": subnet_ids[0] if subnet_ids else None,
                "subnet_ids": subnet_ids}

    async def remove_router_interface(self, session: AsyncSession, caller: Caller, router_id: str,
                                      body: Any) -> dict[str, Any]:
        router = await self.router_row(session, caller, router_id, "remove_router_interface")
        if isinstance(body, dict) and "port_id" in body and "subnet_id" in body:
            # removal may name both: the port, and a subnet it must be on
            port_id, subnet_id = self._interface_info({"port_id": body["port_id"]})[0], \
                self._interface_info({"subnet_id": body["subnet_id"]})[1]
        else:
            port_id, subnet_id = self._interface_info(body)
        interfaces = await self._router_ports(session, router.id, interfaces=True)
        ips = await self.port_ips(session, interfaces)
        if port_id is not None:
            if port_id not in interfaces:
                raise not_found("RouterInterfaceNotFound",
                                f"Router {router.id} does not have an interface with id {port_id}")
            if subnet_id is not None and subnet_id not in {s for s, _a in ips[port_id]}:
                raise conflict("SubnetMismatchForPort", f"Subnet on port {port_id} does not match the requested "
                                                        f"subnet {subnet_id}.")
        else:
            port_id = next((p for p in interfaces if subnet_id in {s for s, _a in ips[p]}), None)
            if port_id is None:
                raise not_found("RouterInterfaceNotFoundForSubnet",
                                f"Router {router.id} has no interface on subnet {subnet_id}")
        subnet_ids = [s for s, _a in ips[port_id]]
        for sid in subnet_ids:
            await self._check_interface_unused(session, router, sid)
        port = await get_port(session, port_id)
        body_out = self._interface_body(router, port, subnet_ids)
        await session.execute(sa.delete(ml.RouterPort).where(ml.RouterPort.port_id == port_id))
        await self.net.delete_port_internal(session, port_id)
        router.touch()
        await session.flush()
        await self.after_router_change(session, router.id)
        return body_out

    async def _check_interface_unused(self, session: AsyncSession, router: ml.Router, subnet_id: str) -> None:
        subnet = await get_subnet(session, subnet_id)
        if subnet is None:
            return
        for (address,) in await session.execute(sa.select(ml.FloatingIP.fixed_ip_address).where(
                ml.FloatingIP.router_id == router.id, ml.FloatingIP.fixed_ip_address.is_not(None))):
            if in_cidr(address, subnet.cidr):
                raise conflict("RouterInterfaceInUseByFloatingIP",
                               f"Router interface for subnet {subnet_id} on router {router.id} cannot be deleted, "
                               "as it is required by one or more floating IPs.")
        for route in await self._current_routes(session, router.id):
            if in_cidr(route["nexthop"], subnet.cidr):
                raise conflict("RouterInterfaceInUse",
                               f"Router interface for subnet {subnet_id} on router {router.id} cannot be deleted, "
                               "as it is required by one or more routes.")

    # ------------------------------------------------------------ hooks on ports, subnets, networks

    async def router_of_port(self, session: AsyncSession, port_id: str) -> str | None:
        return (await session.execute(sa.select(ml.RouterPort.router_id)
                                      .where(ml.RouterPort.port_id == port_id))).scalar()

    async def subnet_router_ids(self, session: AsyncSession, subnet_ids: list[str]) -> list[str]:
        """Routers with an interface on one of the subnets."""
        if not subnet_ids:
            return []
        rows = await session.execute(
            sa.select(ml.RouterPort.router_id).join(m.IPAllocation, m.IPAllocation.port_id == ml.RouterPort.port_id)
            .where(m.IPAllocation.subnet_id.in_(subnet_ids), ml.RouterPort.port_type.in_(ROUTER_INTERFACE_OWNERS)))
        return sorted({r for (r,) in rows})

    # ------------------------------------------------------------ data-plane views

    async def router_view(self, session: AsyncSession, router_id: str) -> RouterView | None:
        router = await session.get(ml.Router, router_id)
        if router is None:
            return None
        ports = await self._router_ports(session, router.id)
        views = await self.net.port_views(session, ports) if ports else {}
        gateway = views.get(router.gw_port_id) if router.gw_port_id else None
        interfaces = tuple(views[p] for p in ports if p in views and p != router.gw_port_id)
        routes = tuple(StaticRoute(r["destination"], r["nexthop"]) for r in await self._current_routes(session, router.id))
        return RouterView(id=router.id, project_id=router.project_id, name=router.name,
                          admin_state_up=router.admin_state_up, gateway_port=gateway,
                          enable_snat=router.enable_snat, interfaces=interfaces, routes=routes)

    async def after_router_change(self, session: AsyncSession, router_id: str, ports: list[str] = ()) -> None:
        view = await self.router_view(session, router_id)
        if view is not None:
            self.after_commit_call(session, "ensure_router", view)

    # ------------------------------------------------------------ floating IPs

    async def fip_row(self, session: AsyncSession, caller: Caller, fip_id: Any, rule: str | None = None) -> ml.FloatingIP:
        fip = await session.get(ml.FloatingIP, fip_id) if isinstance(fip_id, str) else None
        if fip is None or not owns(caller, fip.project_id) or not caller.allowed("get_floatingip", self.target(fip)):
            raise not_found("FloatingIPNotFound", f"Floating IP {fip_id} could not be found")
        if rule is not None:
            caller.enforce(rule, self.target(fip))
        return fip

    async def render_fips(self, session: AsyncSession, fips: list[ml.FloatingIP]) -> list[dict[str, Any]]:
        ids = [f.id for f in fips]
        tags = await self.tags_of(session, "floatingips", ids)
        forwardings: dict[str, list[ml.PortForwarding]] = {i: [] for i in ids}
        if ids:
            for pf in (await session.execute(sa.select(ml.PortForwarding).where(ml.PortForwarding.floatingip_id.in_(ids))
                                             .order_by(ml.PortForwarding.created_at, ml.PortForwarding.id))).scalars():
                forwardings[pf.floatingip_id].append(pf)
        with_pf = self.has_extension("floating-ip-port-forwarding")
        ports = await ports_by_id(session, [f.fixed_port_id for f in fips])
        out = []
        for f in fips:
            details = None
            if f.fixed_port_id:
                port = ports.get(f.fixed_port_id)
                if port is not None:
                    details = {"name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
                               "admin_state_up": port.admin_state_up, "status": port.status,
                               "device_id": port.device_id, "device_owner": port.device_owner}
            item = {"id": f.id, **owner_fields(f.project_id), "floating_ip_address": f.floating_ip_address,
                    "floating_network_id": f.floating_network_id, "router_id": f.router_id, "port_id": f.fixed_port_id,
                    "fixed_ip_address": f.fixed_ip_address, "status": f.status, "port_details": details,
                    "tags": tags.get(f.id, []), **standard(f)}
            if with_pf:
                item["port_forwardings"] = [self.r_forwarding(pf) for pf in forwardings[f.id]]
            out.append(item)
        return out

    FIP_SORT = standard_sort(ml.FloatingIP, "floating_ip_address", "floating_network_id", "router_id",
                             "fixed_ip_address", "status")

    def fip_filters(self) -> dict[str, Any]:
        f = ml.FloatingIP
        return {**standard_filters(f), "floating_ip_address": str_filter(f.floating_ip_address),
                "floating_network_id": str_filter(f.floating_network_id), "router_id": str_filter(f.router_id),
                "port_id": str_filter(f.fixed_port_id), "fixed_ip_address": str_filter(f.fixed_ip_address),
                "status": str_filter(f.status)}

    async def list_floatingips(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                               marker: str | None = None, page_reverse: bool = False) -> Page:
        return await self.owned_page(caller, ml.FloatingIP, "floatingip", self.fip_filters(), self.FIP_SORT, params,
                                     limit, marker, page_reverse, "get_floatingip", self.render_fips)

    async def get_floatingip(self, session: AsyncSession, caller: Caller, fip_id: str) -> dict[str, Any]:
        return (await self.render_fips(session, [await self.fip_row(session, caller, fip_id)]))[0]

    async def create_floatingip(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> str:
        project_id = body["project_id"]
        target = {"project_id": project_id, "tenant_id": project_id}
        caller.enforce("create_floatingip", target)
        if body.get("floating_ip_address") is not None:
            caller.enforce("create_floatingip:floating_ip_address", target)
        network_id = body.get("floating_network_id")
        network = await self.net.get_network_row(session, caller, network_id)
        if not network_external(network):
            raise bad_request("floatingip", f"Network {network_id} is not a valid external network")
        subnets = [s for s in await subnets_of(session, network.id) if s.ip_version == 4]
        wanted: dict[str, str] = {}
        if body.get("subnet_id") is not None:
            subnet = await get_subnet(session, body["subnet_id"])
            if subnet is None or subnet.network_id != network.id:
                raise bad_request("floatingip", f"Subnet {body['subnet_id']} does not belong to network {network.id}")
            if subnet.ip_version != 4:
                raise bad_request("floatingip", f"Subnet {subnet.id} is not an IPv4 subnet")
            wanted["subnet_id"] = subnet.id
        if body.get("floating_ip_address") is not None:
            address = body["floating_ip_address"]
            if ip_version(address) != 4:
                raise bad_request("floatingip", f"Floating IP {address} is not an IPv4 address")
            wanted["ip_address"] = address
            if "subnet_id" not in wanted:
                subnet = next((s for s in subnets if in_cidr(address, s.cidr)), None)
                if subnet is None:
                    raise bad_request("floatingip", f"Floating IP {address} is not in a subnet of network {network.id}")
                wanted["subnet_id"] = subnet.id
        if not subnets:
            raise bad_request("floatingip", f"Network {network.id} does not contain any IPv4 subnet")
        await self.check_quota(session, project_id, "floatingip", 1)
        fip_id = new_id()
        port = await self.net.create_port_internal(
            session, project_id="", network_id=network.id,
            fixed_ips=[wanted] if wanted else None,
            device_owner=FLOATINGIP, device_id=fip_id, name="", admin_state_up=True)
        address = next((a for _s, a in (await self.port_ips(session, [port.id]))[port.id] if ip_version(a) == 4), None)
        if address is None:
            raise error(409, "IpAddressGenerationFailure", f"No more IP addresses available on network {network.id}.")
        fip = ml.FloatingIP(id=fip_id, project_id=project_id, floating_network_id=network.id, floating_port_id=port.id,
                            floating_ip_address=address, description=body.get("description") or "", status="DOWN")
        session.add(fip)
        await session.flush()
        if body.get("port_id") is not None:
            await self._associate(session, caller, fip, body["port_id"], body.get("fixed_ip_address"))
        await self.after_fip_change(session, fip.id)
        return fip.id

    async def update_floatingip(self, session: AsyncSession, caller: Caller, fip_id: str, body: dict[str, Any],
                                if_match: str | None = None) -> None:
        fip = await self.fip_row(session, caller, fip_id, "update_floatingip")
        self.check_revision(fip, if_match)
        if "description" in body:
            fip.description = body["description"] or ""
        if "port_id" in body:
            if body["port_id"] is None:
                self._disassociate(fip)
            else:
                await self._associate(session, caller, fip, body["port_id"], body.get("fixed_ip_address"))
        elif body.get("fixed_ip_address") is not None:
            if fip.fixed_port_id is None:
                raise bad_request("floatingip", "fixed_ip_address cannot be specified without a port_id")
            await self._associate(session, caller, fip, fip.fixed_port_id, body["fixed_ip_address"])
        fip.touch()
        await session.flush()
        await self.after_fip_change(session, fip.id)

    async def delete_floatingip(self, session: AsyncSession, caller: Caller, fip_id: str) -> None:
        fip = await self.fip_row(session, caller, fip_id, "delete_floatingip")
        await self._delete_fip(session, fip)

    async def _delete_fip(self, session: AsyncSession, fip: ml.FloatingIP) -> None:
        port_id = fip.floating_port_id
        await session.execute(sa.delete(ml.PortForwarding).where(ml.PortForwarding.floatingip_id == fip.id))
        await session.delete(fip)
        await session.flush()
        await self.drop_tags(session, "floatingips", fip.id)
        await self.net.delete_port_internal(session, port_id)
        self.after_commit_call(session, "delete_floating_ip", fip.id)

    def _disassociate(self, fip: ml.FloatingIP) -> None:
        fip.fixed_port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"

    async def _internal_target(self, session: AsyncSession, caller: Caller, project_id: str, port_id: Any,
                               fixed_ip: Any, what: str = "floatingip") -> tuple[Any, str]:
        """The internal port and address a floating IP (or port forwarding) points at."""
        port = await get_port(session, port_id)
        if port is None or not (caller.is_admin or port.project_id == project_id):
            raise not_found("PortNotFound", f"Port {port_id} could not be found.")
        ips = (await self.port_ips(session, [port.id]))[port.id]
        v4 = [a for _s, a in ips if ip_version(a) == 4]
        if fixed_ip is not None:
            if not isinstance(fixed_ip, str) or fixed_ip not in {a for _s, a in ips}:
                raise bad_request(what, f"Port {port.id} does not have fixed ip {fixed_ip}")
            if ip_version(fixed_ip) != 4:
                raise bad_request(what, f"Cannot process floating IP association with {fixed_ip}, since that is "
                                        "not an IPv4 address")
            return port, fixed_ip
        if not v4:
            raise bad_request(what, f"Port {port.id} does not have any IPv4 address")
        if len(v4) > 1:
            raise bad_request(what, f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific "
                                    "IPv4 address when assigning a floating IP")
        return port, v4[0]

    async def _router_for(self, session: AsyncSession, internal_subnet_id: str, external_network_id: str,
                          port_id: str) -> str:
        """The router with an interface on the subnet and its gateway on the external network."""
        for router_id in await self.subnet_router_ids(session, [internal_subnet_id]):
            router = await session.get(ml.Router, router_id)
            if router is not None and router.gw_port_id:
                gw = await get_port(session, router.gw_port_id)
                if gw is not None and gw.network_id == external_network_id:
                    return router.id
        raise not_found("ExternalGatewayForFloatingIPNotFound",
                        f"External network {external_network_id} is not reachable from subnet {internal_subnet_id}.  "
                        f"Therefore, cannot associate Port {port_id} with a Floating IP.")

    async def _associate(self, session: AsyncSession, caller: Caller, fip: ml.FloatingIP, port_id: Any,
                         fixed_ip: Any) -> None:
        if await session.scalar(sa.select(sa.func.count()).select_from(ml.PortForwarding)
                                .where(ml.PortForwarding.floatingip_id == fip.id)):
            raise conflict("FipInUseByPortForwarding", f"Floating IP {fip.id} in use by Port Forwarding resources.")
        port, address = await self._internal_target(session, caller, fip.project_id, port_id, fixed_ip)
        if port.device_owner in (ROUTER_GATEWAY, FLOATINGIP, *ROUTER_INTERFACE_OWNERS):
            raise bad_request("floatingip", f"Port {port.id} belongs to a router or floating IP and cannot have a "
                                            "floating IP")
        subnet_id = next(s for s, a in (await self.port_ips(session, [port.id]))[port.id] if a == address)
        taken = (await session.execute(sa.select(ml.FloatingIP.id).where(
            ml.FloatingIP.fixed_port_id == port.id, ml.FloatingIP.fixed_ip_address == address,
            ml.FloatingIP.floating_network_id == fip.floating_network_id, ml.FloatingIP.id != fip.id))).scalar()
        if taken is not None:
            raise conflict("FloatingIPPortAlreadyAssociated",
                           f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port {port.id} "
                           f"using fixed IP {address}, as that fixed IP already has a floating IP on external "
                           f"network {fip.floating_network_id}.")
        fip.router_id = await self._router_for(session, subnet_id, fip.floating_network_id, port.id)
        fip.fixed_port_id = port.id
        fip.fixed_ip_address = address
        fip.status = "ACTIVE"

    async def fip_view(self, session: AsyncSession, fip_id: str) -> FloatingIPView | None:
        fip = await session.get(ml.FloatingIP, fip_id)
        if fip is None:
            return None
        mac = None
        if fip.fixed_port_id:
            port = await get_port(session, fip.fixed_port_id)
            mac = port.mac_address if port is not None else None
        forwardings = tuple(PortForwardingView(id=pf.id, protocol=pf.protocol, internal_ip_address=pf.internal_ip_address,
                                               internal_port=pf.internal_port, external_port=pf.external_port,
                                               internal_port_id=pf.internal_port_id)
                            for pf in (await session.execute(sa.select(ml.PortForwarding)
                                                             .where(ml.PortForwarding.floatingip_id == fip.id)
                                                             .order_by(ml.PortForwarding.id))).scalars())
        return FloatingIPView(id=fip.id, project_id=fip.project_id, floating_ip_address=fip.floating_ip_address,
                              floating_network_id=fip.floating_network_id, router_id=fip.router_id,
                              port_id=fip.fixed_port_id, fixed_ip_address=fip.fixed_ip_address, port_mac=mac,
                              port_forwardings=forwardings)

    async def after_fip_change(self, session: AsyncSession, fip_id: str) -> None:
        view = await self.fip_view(session, fip_id)
        if view is not None:
            self.after_commit_call(session, "ensure_floating_ip", view)

    # ------------------------------------------------------------ port forwardings

    def r_forwarding(self, pf: ml.PortForwarding) -> dict[str, Any]:
        out = {"id": pf.id, "protocol": pf.protocol, "internal_ip_address": pf.internal_ip_address,
               "internal_port": pf.internal_port, "external_port": pf.external_port,
               "internal_port_id": pf.internal_port_id, "description": pf.description or ""}
        return out

    async def _forwarding_row(self, session: AsyncSession, fip: ml.FloatingIP, pf_id: Any) -> ml.PortForwarding:
        pf = await session.get(ml.PortForwarding, pf_id) if isinstance(pf_id, str) else None
        if pf is None or pf.floatingip_id != fip.id:
            raise not_found("PortForwardingNotFound", f"Port Forwarding {pf_id} could not be found.")
        return pf

    PF_SORT = {"id": ml.PortForwarding.id, "external_port": ml.PortForwarding.external_port,
               "internal_port": ml.PortForwarding.internal_port, "protocol": ml.PortForwarding.protocol,
               "internal_ip_address": ml.PortForwarding.internal_ip_address,
               "internal_port_id": ml.PortForwarding.internal_port_id, "description": ml.PortForwarding.description}

    def pf_filters(self) -> dict[str, Any]:
        p = ml.PortForwarding
        return {"id": str_filter(p.id), "external_port": int_filter(p.external_port, "external_port"),
                "internal_port": int_filter(p.internal_port, "internal_port"), "protocol": str_filter(p.protocol),
                "internal_ip_address": str_filter(p.internal_ip_address),
                "internal_port_id": str_filter(p.internal_port_id), "description": str_filter(p.description)}

    async def list_port_forwardings(self, caller: Caller, fip_id: str, params: dict[str, list[str]],
                                    limit: int | None = None, marker: str | None = None,
                                    page_reverse: bool = False) -> Page:
        self.require_extension("floating-ip-port-forwarding")
        pf = ml.PortForwarding
        query = sa.select(pf).where(*sql_filters(params, self.pf_filters(), "port_forwarding"))
        sort = sort_keys(params, self.PF_SORT)
        async with self.net.db.read() as session:
            fip = await self.fip_row(session, caller, fip_id)
            caller.enforce("get_floatingip_port_forwarding", self.parent_target(fip))
            rows, more = await paged(session, query.where(pf.floatingip_id == fip.id), pf.id, sort, limit, marker,
                                     page_reverse)
            return list_page(rows, more, [self.r_forwarding(r) for r in rows])

    async def get_port_forwarding(self, session: AsyncSession, caller: Caller, fip_id: str, pf_id: str) -> dict[str, Any]:
        self.require_extension("floating-ip-port-forwarding")
        fip = await self.fip_row(session, caller, fip_id)
        caller.enforce("get_floatingip_port_forwarding", self.parent_target(fip))
        return self.r_forwarding(await self._forwarding_row(session, fip, pf_id))

    async def _check_forwarding(self, session: AsyncSession, caller: Caller, fip: ml.FloatingIP,
                                values: dict[str, Any], pf_id: str | None) -> None:
        if fip.fixed_port_id is not None:
            raise conflict("PortHasBindingFloatingIP",
                           f"Cannot create port forwarding to floating IP {fip.floating_ip_address} ({fip.id}) with "
                           f"port {fip.fixed_port_id} using fixed IP {fip.fixed_ip_address}, as that port already "
                           "has a binding floating IP.")
        port, address = await self._internal_target(session, caller, fip.project_id, values["internal_port_id"],
                                                    values["internal_ip_address"], what="port forwarding")
        subnet_id = next(s for s, a in (await self.port_ips(session, [port.id]))[port.id] if a == address)
        router_id = await self._router_for(session, subnet_id, fip.floating_network_id, port.id)
        if fip.router_id not in (None, router_id):
            raise conflict("PortForwardingRouterMismatch", f"Floating IP {fip.id} is already used through router "
                                                            f"{fip.router_id}.")
        clash = (await session.execute(sa.select(ml.PortForwarding.id).where(
            ml.PortForwarding.floatingip_id == fip.id, ml.PortForwarding.external_port == values["external_port"],
            ml.PortForwarding.protocol == values["protocol"], ml.PortForwarding.id != (pf_id or "")))).first()
        if clash is not None:
            raise bad_request("port forwarding", f"A duplicate port forwarding entry with same attributes already "
                                                 f"exists, conflicting values are {{'floatingip_id': '{fip.id}', "
                                                 f"'external_port': {values['external_port']}, 'protocol': "
                                                 f"'{values['protocol']}'}}")
        clash = (await session.execute(sa.select(ml.PortForwarding.id).where(
            ml.PortForwarding.internal_port_id == port.id, ml.PortForwarding.internal_ip_address == address,
            ml.PortForwarding.internal_port == values["internal_port"], ml.PortForwarding.protocol == values["protocol"],
            ml.PortForwarding.id != (pf_id or "")))).first()
        if clash is not None:
            raise bad_request("port forwarding", "A duplicate port forwarding entry with same attributes already "
                                                 f"exists, conflicting values are {{'internal_port_id': '{port.id}', "
                                                 f"'internal_ip_address': '{address}', 'internal_port': "
                                                 f"{values['internal_port']}, 'protocol': '{values['protocol']}'}}")
        fip.router_id = router_id

    async def create_port_forwarding(self, session: AsyncSession, caller: Caller, fip_id: str,
                                     body: dict[str, Any]) -> str:
        self.require_extension("floating-ip-port-forwarding")
        fip = await self.fip_row(session, caller, fip_id)
        caller.enforce("create_floatingip_port_forwarding", self.parent_target(fip))
        await self._check_forwarding(session, caller, fip, body, None)
        pf = ml.PortForwarding(id=new_id(), floatingip_id=fip.id, internal_port_id=body["internal_port_id"],
                               internal_ip_address=body["internal_ip_address"], internal_port=body["internal_port"],
                               external_port=body["external_port"], protocol=body["protocol"],
                               description=body.get("description") or "")
        session.add(pf)
        fip.status = "ACTIVE"
        fip.touch()
        await session.flush()
        await self.after_fip_change(session, fip.id)
        return pf.id

    async def update_port_forwarding(self, session: AsyncSession, caller: Caller, fip_id: str, pf_id: str,
                                     body: dict[str, Any]) -> None:
        self.require_extension("floating-ip-port-forwarding")
        fip = await self.fip_row(session, caller, fip_id)
        caller.enforce("update_floatingip_port_forwarding", self.parent_target(fip))
        pf = await self._forwarding_row(session, fip, pf_id)
        values = {k: getattr(pf, k) for k in ("internal_port_id", "internal_ip_address", "internal_port",
                                              "external_port", "protocol")}
        values.update({k: v for k, v in body.items() if k in values})
        if "internal_port_id" in body and "internal_ip_address" not in body:
            values["internal_ip_address"] = None
        await self._check_forwarding(session, caller, fip, values, pf.id)
        port, address = await self._internal_target(session, caller, fip.project_id, values["internal_port_id"],
                                                    values["internal_ip_address"], what="port forwarding")
        values["internal_ip_address"] = address
        for key, value in values.items():
            setattr(pf, key, value)
        if "description" in body:
            pf.description = body["description"] or ""
        pf.touch()
        fip.touch()
        await session.flush()
        await self.after_fip_change(session, fip.id)

    async def delete_port_forwarding(self, session: AsyncSession, caller: Caller, fip_id: str, pf_id: str) -> None:
        self.require_extension("floating-ip-port-forwarding")
        fip = await self.fip_row(session, caller, fip_id)
        caller.enforce("delete_floatingip_port_forwarding", self.parent_target(fip))
        pf = await self._forwarding_row(session, fip, pf_id)
        await session.delete(pf)
        await session.flush()
        left = await session.scalar(sa.select(sa.func.count()).select_from(ml.PortForwarding)
                                    .where(ml.PortForwarding.floatingip_id == fip.id))
        if not left and fip.fixed_port_id is None:
            fip.router_id = None
            fip.status = "DOWN"
        fip.touch()
        await self.after_fip_change(session, fip.id)

    # ------------------------------------------------------------ usage

    async def router_usage(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        routers = await session.scalar(sa.select(sa.func.count()).select_from(ml.Router)
                                       .where(ml.Router.project_id == project_id)) or 0
        fips = await session.scalar(sa.select(sa.func.count()).select_from(ml.FloatingIP)
                                    .where(ml.FloatingIP.project_id == project_id)) or 0
        return {"router": routers, "floatingip": fips}
