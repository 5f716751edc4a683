"""What the L3 parts of the network service share: Neutron's errors, the device owners of the
ports L3 makes, address helpers, and the few CORE rows L3 reads (networks, subnets, ports)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import models as m
from mcloud.network.errors_core import NeutronError, conflict
from mcloud.network.schemas import to_bool
from mcloud.network.service import (Caller, FilterFn, Page, check_revision, iso, new_id, paged, sort_keys,
                                    sql_filters, standard, tag_conditions)

__all__ = ["Caller", "Page", "check_revision", "conflict", "iso", "new_id", "paged", "sort_keys", "standard"]

log = logging.getLogger("mcloud.network.l3")

#: the device owners of ports the L3 logic makes and owns
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATINGIP = "network:floatingip"
ROUTER_INTERFACE_OWNERS = (ROUTER_INTERFACE, "network:router_interface_distributed", "network:ha_router_replicated_interface")
TRUNK_SUBPORT_OWNER = "trunk:subport"


def owns(caller: Caller, project_id: str | None) -> bool:
    """The caller is admin or of the project that owns the resource."""
    return caller.is_admin or (caller.project_id is not None and caller.project_id == project_id)


def error(status: int, type_: str, message: str) -> NeutronError:
    """A Neutron fault: ``type_`` is the name Neutron gives it (``RouterNotFound``...)."""
    return NeutronError(status, type_, message)


def bad_request(resource: str, msg: str) -> NeutronError:
    """Neutron's ``BadRequest``: "Bad router request: ..."."""
    return NeutronError(400, "BadRequest", f"Bad {resource} request: {msg}.")


def not_found(type_: str, message: str) -> NeutronError:
    return NeutronError(404, type_, message)


def list_page(rows: list[Any], more: bool, items: list[dict[str, Any]]) -> Page:
    return Page(items, more, rows[0].id if rows else None, rows[-1].id if rows else None)


def list_query(query: sa.Select[Any], model: Any, params: dict[str, list[str]], filters: dict[str, FilterFn],
               resource: str) -> sa.Select[Any]:
    """``query`` narrowed by the list filters (Neutron's attribute filters and the tag filters)."""
    return query.where(*sql_filters(params, filters, resource), *tag_conditions(model.id, params))


def str_filter(column: Any) -> FilterFn:
    return lambda values: column.in_(values)


def bool_filter(column: Any, name: str) -> FilterFn:
    return lambda values: column.in_([to_bool(v, name) for v in values])


def int_filter(column: Any, name: str) -> FilterFn:
    def f(values: list[str]) -> Any:
        try:
            return column.in_([int(v) for v in values])
        except ValueError:
            raise NeutronError(400, "HTTPBadRequest", f"Invalid input for {name}. Reason: '{values[0]}' is not an "
                                                      "integer.") from None
    return f


def standard_filters(model: Any) -> dict[str, FilterFn]:
    """Filters every L3 resource takes: id, project, description, revision."""
    return {"id": str_filter(model.id), "project_id": str_filter(model.project_id),
            "tenant_id": str_filter(model.project_id), "description": str_filter(model.description),
            "revision_number": int_filter(model.revision_number, "revision_number")}


def standard_sort(model: Any, *names: str) -> dict[str, Any]:
    columns = {"id": model.id, "project_id": model.project_id, "tenant_id": model.project_id,
               "created_at": model.created_at, "updated_at": model.updated_at,
               "revision_number": model.revision_number, "description": model.description}
    columns.update({n: getattr(model, n) for n in names})
    return columns


def owner_fields(project_id: str) -> dict[str, Any]:
    return {"tenant_id": project_id, "project_id": project_id}


# ---------------------------------------------------------------------- addresses


def ip_version(address: str) -> int:
    return ipaddress.ip_address(address).version


def in_cidr(address: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def overlaps(a: str, b: str) -> bool:
    na, nb = ipaddress.ip_network(a, strict=False), ipaddress.ip_network(b, strict=False)
    return na.version == nb.version and na.overlaps(nb)


# ---------------------------------------------------------------------- CORE rows L3 reads


async def get_network(session: AsyncSession, network_id: Any) -> Any | None:
    if not isinstance(network_id, str):
        return None
    return await session.get(m.Network, network_id)


def network_external(network: Any) -> bool:
    return bool(network.external)


async def get_subnet(session: AsyncSession, subnet_id: Any) -> Any | None:
    if not isinstance(subnet_id, str):
        return None
    return await session.get(m.Subnet, subnet_id)


async def subnets_of(session: AsyncSession, network_id: str) -> list[Any]:
    return list((await session.execute(
        sa.select(m.Subnet).where(m.Subnet.network_id == network_id).order_by(m.Subnet.created_at, m.Subnet.id)
    )).scalars())


async def ports_by_id(session: AsyncSession, port_ids: list[str | None]) -> dict[str, Any]:
    """{id: port row} for the given ids (one query; ids that name no port are left out)."""
    ids = list({p for p in port_ids if p})
    if not ids:
        return {}
    return {p.id: p for p in (await session.execute(sa.select(m.Port).where(m.Port.id.in_(ids)))).scalars()}


async def get_port(session: AsyncSession, port_id: Any) -> Any | None:
    if not isinstance(port_id, str):
        return None
    return await session.get(m.Port, port_id)

