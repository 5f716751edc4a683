"""Trunks (VLAN-aware guests): a parent port and subports, each subport a port of its own
tagged with a VLAN id on the parent. A subport's port gets device_owner ``trunk:subport`` and
the trunk as device_id (as Neutron's trunk plugin sets them); its PortView names the parent and
the tag. A trunk is ACTIVE while its parent port is up, DOWN otherwise."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.network import models_l3 as ml
from mcloud.network.service_l3_base import (TRUNK_SUBPORT_OWNER, Caller, Page, bool_filter, conflict, error,
                                            get_port, new_id, not_found, owner_fields, owns, ports_by_id, standard,
                                            standard_filters, standard_sort, str_filter)

SEGMENTATION_TYPES = ("vlan",)


def subport_list(value: Any, removing: bool = False) -> list[dict[str, Any]]:
    """``sub_ports``: [{port_id, segmentation_type, segmentation_id}] (removal: port_id alone)."""
    if not isinstance(value, list):
        raise error(400, "HTTPBadRequest", f"Invalid input for sub_ports. Reason: '{value}' is not a list.")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("port_id"), str):
            raise error(400, "HTTPBadRequest", f"Invalid input for sub_ports. Reason: '{item}' is not a valid "
                                               "subport (port_id is required).")
        allowed = {"port_id", "segmentation_type", "segmentation_id"}
        if set(item) - allowed:
            raise error(400, "HTTPBadRequest", f"Invalid input for sub_ports. Reason: Unexpected keys supplied: "
                                               f"{', '.join(sorted(map(str, set(item) - allowed)))}.")
        if removing:
            out.append({"port_id": item["port_id"]})
            continue
        seg_type, seg_id = item.get("segmentation_type"), item.get("segmentation_id")
        if seg_type is None or seg_id is None:
            raise error(400, "InvalidInput", "Invalid input for operation: Invalid subport details "
                                             f"'{item}': missing segmentation information. Must specify both "
                                             "segmentation_id and segmentation_type.")
        if seg_type not in SEGMENTATION_TYPES:
            raise error(400, "HTTPBadRequest", f"Invalid input for sub_ports. Reason: Invalid segmentation type "
                                               f"'{seg_type}'; valid: {', '.join(SEGMENTATION_TYPES)}.")
        if isinstance(seg_id, bool) or not isinstance(seg_id, (int, str)) or not str(seg_id).strip().isdigit() \
                or not 1 <= int(seg_id) <= 4094:
            raise error(400, "InvalidInput", f"Invalid input for operation: Segmentation ID '{seg_id}' for 'vlan' "
                                             "is not in range [1, 4094].")
        out.append({"port_id": item["port_id"], "segmentation_type": seg_type, "segmentation_id": int(seg_id)})
    return out


class Trunks:
    """Mixed into L3Service."""

    async def trunk_row(self, session: AsyncSession, caller: Caller, trunk_id: Any, rule: str | None = None) -> ml.Trunk:
        self.require_extension("trunk")
        trunk = await session.get(ml.Trunk, trunk_id) if isinstance(trunk_id, str) else None
        if trunk is None or not owns(caller, trunk.project_id) or not caller.allowed("get_trunk", self.target(trunk)):
            raise not_found("TrunkNotFound", f"Trunk {trunk_id} could not be found.")
        if rule is not None:
            caller.enforce(rule, self.target(trunk))
        return trunk

    async def _subports(self, session: AsyncSession, trunk_ids: list[str]) -> dict[str, list[ml.SubPort]]:
        out: dict[str, list[ml.SubPort]] = {t: [] for t in trunk_ids}
        if trunk_ids:
            for sub in (await session.execute(sa.select(ml.SubPort).where(ml.SubPort.trunk_id.in_(trunk_ids))
                                              .order_by(ml.SubPort.segmentation_id))).scalars():
                out[sub.trunk_id].append(sub)
        return out

    @staticmethod
    def r_subport(sub: ml.SubPort) -> dict[str, Any]:
        return {"port_id": sub.port_id, "segmentation_type": sub.segmentation_type,
                "segmentation_id": sub.segmentation_id}

    async def render_trunks(self, session: AsyncSession, trunks: list[ml.Trunk]) -> list[dict[str, Any]]:
        ids = [t.id for t in trunks]
        subs = await self._subports(session, ids)
        tags = await self.tags_of(session, "trunks", ids)
        parents = await ports_by_id(session, [t.port_id for t in trunks])
        out = []
        for t in trunks:
            parent = parents.get(t.port_id)
            status = "ACTIVE" if parent is not None and parent.status == "ACTIVE" else "DOWN"
            out.append({"id": t.id, "name": t.name, **owner_fields(t.project_id), "admin_state_up": t.admin_state_up,
                        "status": status, "port_id": t.port_id, "sub_ports": [self.r_subport(s) for s in subs[t.id]],
                        "tags": tags.get(t.id, []), **standard(t)})
        return out

    TRUNK_SORT = standard_sort(ml.Trunk, "name", "admin_state_up", "port_id")

    def trunk_filters(self) -> dict[str, Any]:
        t = ml.Trunk
        return {**standard_filters(t), "name": str_filter(t.name), "port_id": str_filter(t.port_id),
                "admin_state_up": bool_filter(t.admin_state_up, "admin_state_up"),
                "status": lambda values: sa.true(), "sub_ports": lambda values: sa.true()}

    async def list_trunks(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                          marker: str | None = None, page_reverse: bool = False) -> Page:
        self.require_extension("trunk")
        async def render(session: AsyncSession, trunks: list[ml.Trunk]) -> list[dict[str, Any]]:
            items = await self.render_trunks(session, trunks)
            return [t for t in items if "status" not in params or t["status"] in params["status"]]

        return await self.owned_page(caller, ml.Trunk, "trunk", self.trunk_filters(), self.TRUNK_SORT, params, limit,
                                     marker, page_reverse, "get_trunk", render)

    async def get_trunk(self, session: AsyncSession, caller: Caller, trunk_id: str) -> dict[str, Any]:
        return (await self.render_trunks(session, [await self.trunk_row(session, caller, trunk_id)]))[0]

    async def _usable_port(self, session: AsyncSession, caller: Caller, project_id: str, port_id: str) -> Any:
        port = await get_port(session, port_id)
        if port is None or not (caller.is_admin or port.project_id == project_id):
            raise not_found("PortNotFound", f"Port {port_id} could not be found.")
        return port

    async def _check_port_free(self, session: AsyncSession, port_id: str, as_parent: bool) -> None:
        parent_of = (await session.execute(sa.select(ml.Trunk.id).where(ml.Trunk.port_id == port_id))).scalar()
        if parent_of is not None:
            if as_parent:
                raise conflict("TrunkPortInUse", f"Port {port_id} is in use by another trunk.")
            raise conflict("PortInUseAsTrunkParent", f"Port {port_id} is currently a parent port for trunk "
                                                     f"{parent_of}.")
        sub_of = (await session.execute(sa.select(ml.SubPort.trunk_id).where(ml.SubPort.port_id == port_id))).scalar()
        if sub_of is not None:
            if as_parent:
                raise conflict("ParentPortInUse", f"Port {port_id} is currently in use and is not eligible for use "
                                                  "as a parent port.")
            raise conflict("PortInUseAsSubPort", f"Port {port_id} is currently a subport for trunk {sub_of}.")

    async def _add_subports(self, session: AsyncSession, caller: Caller, trunk: ml.Trunk,
                            subports: list[dict[str, Any]]) -> list[str]:
        seen_ports: set[str] = set()
        taken = {(s.segmentation_type, s.segmentation_id)
                 for s in (await self._subports(session, [trunk.id]))[trunk.id]}
        added = []
        for item in subports:
            port = await self._usable_port(session, caller, trunk.project_id, item["port_id"])
            if port.id == trunk.port_id:
                raise conflict("PortInUseAsTrunkParent", f"Port {port.id} is currently a parent port for trunk "
                                                         f"{trunk.id}.")
            if port.id in seen_ports:
                raise conflict("PortInUseAsSubPort", f"Port {port.id} is currently a subport for trunk {trunk.id}.")
            await self._check_port_free(session, port.id, as_parent=False)
            key = (item["segmentation_type"], item["segmentation_id"])
            if key in taken:
                raise conflict("DuplicateSubPort", f"segmentation_type {key[0]} and segmentation_id {key[1]} already "
                                                   f"in use on trunk {trunk.id}.")
            taken.add(key)
            seen_ports.add(port.id)
            session.add(ml.SubPort(port_id=port.id, trunk_id=trunk.id, segmentation_type=key[0],
                                   segmentation_id=key[1]))
            await self.set_port_owner(session, port, device_owner=TRUNK_SUBPORT_OWNER, device_id=trunk.id)
            added.append(port.id)
        await session.flush()
        return added

    async def create_trunk(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> str:
        self.require_extension("trunk")
        project_id = body["project_id"]
        caller.enforce("create_trunk", {"project_id": project_id, "tenant_id": project_id})
        parent = await self._usable_port(session, caller, project_id, body["port_id"])
        await self._check_port_free(session, parent.id, as_parent=True)
        trunk = ml.Trunk(id=new_id(), project_id=project_id, name=body.get("name") or "",
                         description=body.get("description") or "", admin_state_up=body.get("admin_state_up", True),
                         port_id=parent.id)
        session.add(trunk)
        await session.flush()
        added = await self._add_subports(session, caller, trunk, subport_list(body.get("sub_ports") or []))
        await self.reensure_ports(session, [parent.id, *added])
        return trunk.id

    async def update_trunk(self, session: AsyncSession, caller: Caller, trunk_id: str, body: dict[str, Any],
                           if_match: str | None = None) -> None:
        trunk = await self.trunk_row(session, caller, trunk_id, "update_trunk")
        self.check_revision(trunk, if_match)
        for key in ("name", "description", "admin_state_up"):
            if key in body:
                setattr(trunk, key, body[key] if body[key] is not None else "")
        trunk.touch()

    async def delete_trunk(self, session: AsyncSession, caller: Caller, trunk_id: str) -> None:
        trunk = await self.trunk_row(session, caller, trunk_id, "delete_trunk")
        if not trunk.admin_state_up:
            raise conflict("TrunkDisabled", f"Trunk {trunk.id} is currently disabled.")
        subs = [s.port_id for s in (await self._subports(session, [trunk.id]))[trunk.id]]
        await self._release_subports(session, trunk, subs)
        await session.delete(trunk)
        await session.flush()
        await self.drop_tags(session, "trunks", trunk.id)
        await self.reensure_ports(session, [trunk.port_id, *subs])

    async def _release_subports(self, session: AsyncSession, trunk: ml.Trunk, port_ids: list[str]) -> None:
        if not port_ids:
            return
        await session.execute(sa.delete(ml.SubPort).where(ml.SubPort.trunk_id == trunk.id,
                                                           ml.SubPort.port_id.in_(port_ids)))
        for port_id in port_ids:
            port = await get_port(session, port_id)
            if port is not None and port.device_owner == TRUNK_SUBPORT_OWNER and port.device_id == trunk.id:
                await self.set_port_owner(session, port, device_owner="", device_id="")
        await session.flush()

    async def change_subports(self, session: AsyncSession, caller: Caller, trunk_id: str, body: Any,
                              add: bool) -> None:
        trunk = await self.trunk_row(session, caller, trunk_id, "add_subports" if add else "remove_subports")
        if not isinstance(body, dict) or "sub_ports" not in body or set(body) != {"sub_ports"}:
            raise error(400, "HTTPBadRequest", "Invalid input for sub_ports. Reason: the body must be "
                                               "{\"sub_ports\": [...]}.")
        if not trunk.admin_state_up:
            raise conflict("TrunkDisabled", f"Trunk {trunk.id} is currently disabled.")
        items = subport_list(body["sub_ports"], removing=not add)
        if add:
            changed = await self._add_subports(session, caller, trunk, items)
        else:
            current = {s.port_id for s in (await self._subports(session, [trunk.id]))[trunk.id]}
            changed = []
            for item in items:
                if item["port_id"] not in current:
                    raise not_found("SubPortNotFound", f"SubPort {item['port_id']} on trunk {trunk.id} could not "
                                                       "be found.")
                changed.append(item["port_id"])
            await self._release_subports(session, trunk, changed)
        trunk.touch()
        await session.flush()
        await self.reensure_ports(session, [trunk.port_id, *changed])

    async def get_subports(self, session: AsyncSession, caller: Caller, trunk_id: str) -> list[dict[str, Any]]:
        trunk = await self.trunk_row(session, caller, trunk_id, "get_subports")
        return [self.r_subport(s) for s in (await self._subports(session, [trunk.id]))[trunk.id]]

    async def trunk_details(self, session: AsyncSession, trunk_of_parent: dict[str, str]) -> dict[str, dict[str, Any]]:
        """{parent port id: Neutron's trunk_details} for {parent port id: trunk id}."""
        subs = await self._subports(session, list(trunk_of_parent.values()))
        macs = await ports_by_id(session, [x.port_id for items in subs.values() for x in items])
        out = {}
        for parent, trunk_id in trunk_of_parent.items():
            items = [{**self.r_subport(x), "mac_address": macs[x.port_id].mac_address if x.port_id in macs else None}
                     for x in subs[trunk_id]]
            out[parent] = {"trunk_id": trunk_id, "sub_ports": items}
        return out

    async def trunk_of_port(self, session: AsyncSession, port_id: str) -> tuple[str | None, str | None]:
        """(trunk whose parent the port is, trunk whose subport it is)."""
        parent_of = (await session.execute(sa.select(ml.Trunk.id).where(ml.Trunk.port_id == port_id))).scalar()
        sub_of = (await session.execute(sa.select(ml.SubPort.trunk_id).where(ml.SubPort.port_id == port_id))).scalar()
        return parent_of, sub_of
