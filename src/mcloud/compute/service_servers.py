"""Servers: create, list, show, update, delete, metadata and tags (the logic behind
api_servers.py). Actions live in ``service_servers_actions.py``.

A server's network facts (its addresses, its ports) are the network service's ports with
``device_id`` = the server's uuid, read in-process; the server's image comes from the image
service as the caller sees it. Work that takes time is handed to the conductor inside the same
write transaction (``submit_build`` / ``submit_action``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import uuid as uuidlib
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.compute import models as m
from mcloud.compute import states, views
from mcloud.compute.schemas import as_bool, decode_base64, is_uuid, query_limit
from mcloud.compute.service import Caller
from mcloud.core.errors import APIError, BadRequest, Conflict, Forbidden, NotFound

METADATA_ITEMS = 128  # Nova's default metadata_items quota
MAX_TAGS = 50


def instance_not_found(server_id: Any) -> NotFound:
    return NotFound(f"Instance {server_id} could not be found.")


def sanitize_hostname(name: str, default: str) -> str:
    """Nova's utils.sanitize_hostname."""
    hostname = name.encode("latin-1", "ignore").decode("latin-1")[:63]
    hostname = re.sub(r"[ _.]", "-", hostname)
    hostname = re.sub(r"[^\w.-]+", "", hostname, flags=re.ASCII)
    hostname = hostname.lower().strip(".-")
    return hostname or default


def normal_ip(value: str | None) -> str | None:
    """An access IP as Nova keeps it (a netaddr address: ``::babe:dc0c:1602``, not the long
    form); "" clears it."""
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        return value


def parse_time(value: str, name: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"Invalid filter field: {name}.") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def ref_id(value: Any) -> str:
    """An imageRef/flavorRef given as an id or as a URL ending in the id."""
    text = str(value).strip()
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


@dataclasses.dataclass
class ServerList:
    items: list[dict[str, Any]]
    next_marker: str | None


SORT_KEYS = {"access_ip_v4": m.Instance.access_ip_v4, "access_ip_v6": m.Instance.access_ip_v6,
             "availability_zone": m.Instance.availability_zone, "config_drive": m.Instance.config_drive,
             "created_at": m.Instance.created_at, "display_description": m.Instance.description,
             "display_name": m.Instance.name, "host": m.Instance.host, "hostname": m.Instance.hostname,
             "image_ref": m.Instance.image_ref, "instance_type_id": m.Instance.id,
             "kernel_id": m.Instance.id, "key_name": m.Instance.key_name, "launch_index": m.Instance.launch_index,
             "launched_at": m.Instance.launched_at, "locked": m.Instance.locked, "locked_by": m.Instance.locked_by,
             "node": m.Instance.node, "power_state": m.Instance.power_state, "progress": m.Instance.progress,
             "project_id": m.Instance.project_id, "ramdisk_id": m.Instance.id,
             "root_device_name": m.Instance.root_device_name, "task_state": m.Instance.task_state,
             "terminated_at": m.Instance.terminated_at, "updated_at": m.Instance.updated_at,
             "user_id": m.Instance.user_id, "uuid": m.Instance.uuid, "vm_state": m.Instance.vm_state}
ADMIN_ONLY_SORT_KEYS = {"host", "node"}
# what a project (non-admin) may filter by (Nova's 2.83 list); other filters are ignored for them
USER_FILTERS = {"name", "status", "image", "flavor", "changes-since", "changes-before", "reservation_id", "ip",
                "ip6", "tags", "tags-any", "not-tags", "not-tags-any", "locked", "availability_zone",
                "config_drive", "key_name", "created_at", "launched_at", "terminated_at", "power_state",
                "task_state", "vm_state", "progress", "user_id", "description"}
ADMIN_FILTERS = USER_FILTERS | {"host", "node", "deleted", "all_tenants", "project_id", "tenant_id", "uuid",
                                "hostname", "launch_index", "access_ip_v4", "access_ip_v6", "soft_deleted"}
PAGING = {"limit", "marker", "sort_key", "sort_dir"}


class Servers:
    def __init__(self, compute: Any):
        self.compute = compute

    @property
    def db(self) -> Any:
        return self.compute.db

    # ------------------------------------------------------------------ reading

    async def get(self, session: AsyncSession, caller: Caller, server_id: str, *,
                  for_update: bool = False, deleted: bool = False) -> m.Instance:
        """The server the caller may see (404 "Instance X could not be found." otherwise)."""
        if not is_uuid(server_id):
            raise instance_not_found(server_id)
        query = sa.select(m.Instance).where(m.Instance.uuid == str(uuidlib.UUID(server_id)))
        if not deleted:
            query = query.where(m.Instance.deleted.is_(False))
        if not caller.is_admin:
            query = query.where(m.Instance.project_id == caller.project_id)
        if for_update and not self.db.is_sqlite:
            query = query.with_for_update()
        inst = (await session.execute(query)).scalar()
        if inst is None:
            raise instance_not_found(server_id)
        return inst

    async def ports_of(self, uuids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The network service's ports of these servers (device_id), by server."""
        out: dict[str, list[dict[str, Any]]] = {u: [] for u in uuids}
        if not uuids or self.compute.network is None:
            return out
        from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

        page = await self.compute.network.list_ports(NetworkCaller.internal(), {"device_id": list(uuids)})
        for port in page.items:
            out.setdefault(port["device_id"], []).append(port)
        return out

    async def addresses_of(self, uuids: Sequence[str]) -> tuple[dict[str, dict[str, list[dict[str, Any]]]],
                                                                dict[str, list[dict[str, Any]]]]:
        """Nova's ``addresses`` ({network name: [{version, addr, OS-EXT-IPS:type, mac}]}) per
        server, from its ports and the floating IPs on them; and the ports."""
        ports = await self.ports_of(uuids)
        all_ports = [p for ps in ports.values() for p in ps]
        if not all_ports:
            return {u: {} for u in uuids}, ports
        from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

        internal = NetworkCaller.internal()
        net_ids = sorted({p["network_id"] for p in all_ports})
        nets = await self.compute.network.list_networks(internal, {"id": net_ids})
        names = {n["id"]: n["name"] or n["id"] for n in nets.items}
        floating: dict[str, list[str]] = {}
        l3 = getattr(self.compute.network, "l3", None)
        if l3 is not None:
            fips = await l3.list_floatingips(internal, {"port_id": [p["id"] for p in all_ports]})
            for fip in fips.items:
                floating.setdefault(fip["port_id"], []).append(fip["floating_ip_address"])
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for uuid, server_ports in ports.items():
            addresses: dict[str, list[dict[str, Any]]] = {}
            for port in sorted(server_ports, key=lambda p: p.get("created_at") or ""):
                entries = addresses.setdefault(names.get(port["network_id"], port["network_id"]), [])
                for ip in port.get("fixed_ips", []):
                    addr = ip["ip_address"]
                    entries.append({"version": 6 if ":" in addr else 4, "addr": addr,
                                    "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
                for addr in floating.get(port["id"], []):
                    entries.append({"version": 6 if ":" in addr else 4, "addr": addr,
                                    "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
            out[uuid] = addresses
        return out, ports

    async def extras(self, session: AsyncSession, insts: Sequence[m.Instance],
                     addresses: bool = True, groups: bool = False) -> dict[str, dict[str, Any]]:
        """What a server's body needs besides its row: metadata, tags, the newest fault,
        addresses and security groups (and with ``groups`` its server group, for one server's
        body from 2.71)."""
        uuids = [i.uuid for i in insts]
        out: dict[str, dict[str, Any]] = {u: {"metadata": {}, "tags": []} for u in uuids}
        if not uuids:
            return out
        for row in await session.execute(sa.select(m.InstanceMetadata.instance_uuid, m.InstanceMetadata.key,
                                                   m.InstanceMetadata.value)
                                         .where(m.InstanceMetadata.instance_uuid.in_(uuids))):
            out[row[0]]["metadata"][row[1]] = row[2]
        for row in await session.execute(sa.select(m.InstanceTag.instance_uuid, m.InstanceTag.tag)
                                         .where(m.InstanceTag.instance_uuid.in_(uuids))
                                         .order_by(m.InstanceTag.tag)):
            out[row[0]]["tags"].append(row[1])
        errored = [i.uuid for i in insts if i.vm_state in (states.ERROR, states.DELETED)]
        if errored:
            for fault in (await session.execute(sa.select(m.InstanceFault)
                                                .where(m.InstanceFault.instance_uuid.in_(errored))
                                                .order_by(m.InstanceFault.id))).scalars():
                out[fault.instance_uuid]["fault"] = fault
        for inst in insts:
            nets = inst.requested_networks
            if nets != "none" and not inst.deleted:
                out[inst.uuid]["security_groups"] = list(inst.security_groups or ["default"])
        from mcloud.compute.service_servers_volumes import volumes_attached  # noqa: PLC0415

        for uuid, attached in (await volumes_attached(session, uuids)).items():
            out[uuid]["volumes_attached"] = attached
        group_of = getattr(self.compute.resources, "group_of_instance", None)
        if groups and group_of is not None:
            for inst in insts:
                group = await group_of(session, inst.uuid)
                out[inst.uuid]["server_groups"] = [group.id] if group is not None else []
        if addresses:
            addrs, ports = await self.addresses_of(uuids)
            for uuid, value in addrs.items():
                out[uuid]["addresses"] = value
            await self._port_groups(out, ports)
        return out

    async def _port_groups(self, out: dict[str, dict[str, Any]], ports: dict[str, list[dict[str, Any]]]) -> None:
        """Nova's security_groups of a server: the names of its ports' groups (none without
        ports or groups: no ``security_groups`` then), as Nova reads them from Neutron."""
        ids = sorted({g for ps in ports.values() for p in ps for g in p.get("security_groups") or []})
        names: dict[str, str] = {}
        l3 = getattr(self.compute.network, "l3", None)
        if ids and l3 is not None:
            from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

            page = await l3.list_security_groups(NetworkCaller.internal(), {"id": ids})
            names = {g["id"]: g["name"] for g in page.items}
        for uuid, server_ports in ports.items():
            if uuid not in out:
                continue
            groups: list[str] = []
            for port in server_ports:
                for gid in port.get("security_groups") or []:
                    name = names.get(gid, gid)
                    if name not in groups:
                        groups.append(name)
            if groups:
                out[uuid]["security_groups"] = groups
            elif server_ports:
                out[uuid].pop("security_groups", None)

    async def render(self, caller: Caller, base: str, insts: Sequence[m.Instance],
                     session: AsyncSession | None = None, mode: str = "show") -> list[dict[str, Any]]:
        groups = mode != "list" and caller.at(2, 71)
        if session is None:
            async with self.db.read() as session:
                extras = await self.extras(session, insts, groups=groups)
        else:
            extras = await self.extras(session, insts, groups=groups)
        return [views.detail(caller, base, inst, extras[inst.uuid], mode) for inst in insts]

    async def show(self, caller: Caller, base: str, server_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            inst = await self.get(session, caller, server_id)
            caller.authorize("os_compute_api:servers:show", {"project_id": inst.project_id})
            extras = await self.extras(session, [inst], groups=caller.at(2, 71))
        return views.detail(caller, base, inst, extras[inst.uuid], "show")

    async def list(self, caller: Caller, base: str, params: dict[str, list[str]], detail: bool) -> ServerList:
        """Nova's GET /servers[/detail]: the filters the caller may use, sort keys, limit/marker."""
        one = {k: v[-1] for k, v in params.items()}
        admin = caller.is_admin and caller.can("os_compute_api:servers:allow_all_filters")
        allowed = ADMIN_FILTERS if admin else USER_FILTERS
        if caller.at(2, 75):
            from mcloud.compute.schemas import check_query  # noqa: PLC0415

            check_query(params, ADMIN_FILTERS | PAGING | {"all_projects", "fields"} | set(), True)
        conds: list[Any] = []
        all_tenants = "all_tenants" in one and (one["all_tenants"] == "" or as_bool(one["all_tenants"]))
        if "all_tenants" in one and one["all_tenants"] not in ("",) and one["all_tenants"].lower() not in (
                "true", "false", "1", "0", "t", "f", "yes", "no", "y", "n", "on", "off"):
            raise BadRequest(f"Invalid input for query parameters all_tenants. Value: {one['all_tenants']}.")
        if all_tenants:
            caller.authorize("os_compute_api:servers:detail:get_all_tenants" if detail
                             else "os_compute_api:servers:index:get_all_tenants")
        project = one.get("project_id") or one.get("tenant_id")
        if not all_tenants or not caller.is_admin:
            # Nova (lp:#1185290): without all_tenants, tenant_id/project_id are ignored: one's own project
            conds.append(m.Instance.project_id == caller.project_id)
        elif project:
            conds.append(m.Instance.project_id == project)
        f = {k: v for k, v in one.items() if k in allowed}
        deleted = admin and "deleted" in f and as_bool(f["deleted"])
        if "changes-since" in f or "changes-before" in f:
            if "changes-since" in f:
                conds.append(m.Instance.updated_at >= parse_time(f["changes-since"], "changes-since"))
            if "changes-before" in f:
                conds.append(m.Instance.updated_at <= parse_time(f["changes-before"], "changes-before"))
            if "changes-since" in f and "changes-before" in f and \
                    parse_time(f["changes-since"], "x") > parse_time(f["changes-before"], "x"):
                raise BadRequest(f"The value of changes-since must be less than or equal to changes-before.")
            if "deleted" in f:
                conds.append(m.Instance.deleted.is_(deleted))
        else:
            conds.append(m.Instance.deleted.is_(bool(deleted)))
        if "status" in f:
            statuses = params["status"]
            vm, task = set(), set()
            for s in statuses:
                v, t = views.states_of_status(s)
                vm.update(v)
                task.update(t)
            if not vm:
                return ServerList([], None)
            conds.append(m.Instance.vm_state.in_(sorted(vm)))
            if "default" not in task:
                conds.append(m.Instance.task_state.in_([t for t in task if t]))
        for key, column in (("image", m.Instance.image_ref), ("reservation_id", m.Instance.reservation_id),
                            ("host", m.Instance.host), ("node", m.Instance.node),
                            ("availability_zone", m.Instance.availability_zone),
                            ("key_name", m.Instance.key_name), ("user_id", m.Instance.user_id),
                            ("vm_state", m.Instance.vm_state), ("task_state", m.Instance.task_state),
                            ("hostname", m.Instance.hostname), ("uuid", m.Instance.uuid),
                            ("access_ip_v4", m.Instance.access_ip_v4), ("access_ip_v6", m.Instance.access_ip_v6)):
            if key in f:
                value = ref_id(f[key]) if key == "image" else f[key]
                conds.append(column.in_(params[key]) if key in ("vm_state", "task_state") else column == value)
        if "flavor" in f:
            conds.append(sa.func.json_extract(m.Instance.flavor, "$.id") == ref_id(f["flavor"])
                         if self.db.is_sqlite else m.Instance.flavor["id"].as_string() == ref_id(f["flavor"]))
        if "locked" in f and caller.at(2, 73):
            if f["locked"].lower() not in ("true", "false", "1", "0", "t", "f", "yes", "no", "y", "n", "on", "off"):
                raise BadRequest(f"Unrecognized value '{f['locked']}', acceptable values are: '0', '1', 'f', "
                                 f"'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")
            conds.append(m.Instance.locked.is_(as_bool(f["locked"])))
        if "power_state" in f:
            try:
                conds.append(m.Instance.power_state.in_([int(x) for x in params["power_state"]]))
            except ValueError:
                raise BadRequest("Invalid filter field: power_state.") from None
        if "config_drive" in f:
            conds.append(m.Instance.config_drive.is_(as_bool(f["config_drive"])))
        if "description" in f and caller.at(2, 83):
            conds.append(m.Instance.description == f["description"])
        tag_table = m.InstanceTag
        if caller.at(2, 26):
            for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
                if key not in f:
                    continue
                tags = [t for t in f[key].split(",") if t]
                if not tags:
                    continue
                have = [sa.exists().where(tag_table.instance_uuid == m.Instance.uuid, tag_table.tag == t)
                        for t in tags]
                conds.append({"tags": sa.and_(*have), "tags-any": sa.or_(*have),
                              "not-tags": sa.not_(sa.and_(*have)), "not-tags-any": sa.not_(sa.or_(*have))}[key])
        # sorting
        keys = params.get("sort_key", [])
        dirs = params.get("sort_dir", [])
        sort: list[tuple[Any, bool]] = []
        for i, key in enumerate(keys):
            if key not in SORT_KEYS or (key in ADMIN_ONLY_SORT_KEYS and not caller.is_admin):
                if key in ADMIN_ONLY_SORT_KEYS:
                    raise Forbidden(f"Only administrators can sort servers by {key}")
                raise BadRequest(f"Invalid input for query parameters sort_key. Value: {key}.")
            direction = dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "desc")
            if direction not in ("asc", "desc"):
                raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {direction}.")
            sort.append((SORT_KEYS[key], direction == "desc"))
        if not sort:
            sort = [(m.Instance.created_at, True)]
        sort.append((m.Instance.id, sort[-1][1]))
        maximum = self.compute.config.max_limit
        limit = query_limit(params, maximum)
        if limit is None:
            limit = maximum
        name_re = ip_re = None
        if "name" in f:
            name_re = _regex(f["name"], "name")
        if "ip" in f:
            ip_re = _regex(f["ip"], "ip")
        ip6_re = _regex(f["ip6"], "ip6") if "ip6" in f and caller.at(2, 5) else None
        marker = one.get("marker")
        async with self.db.read() as session:
            query = sa.select(m.Instance).where(*conds).order_by(
                *(c.desc() if desc else c.asc() for c, desc in sort))
            rows = list((await session.execute(query)).scalars())
            if name_re is not None:
                rows = [r for r in rows if name_re.search(r.name or "")]
            if ip_re is not None or ip6_re is not None:
                addrs, _ = await self.addresses_of([r.uuid for r in rows])
                def matches(r: m.Instance) -> bool:
                    ips = [a["addr"] for net in addrs.get(r.uuid, {}).values() for a in net]
                    return ((ip_re is None or any(ip_re.search(a) for a in ips if ":" not in a)) and
                            (ip6_re is None or any(ip6_re.search(a) for a in ips if ":" in a)))
                rows = [r for r in rows if matches(r)]
            if marker is not None:
                index = next((i for i, r in enumerate(rows) if r.uuid == marker), None)
                if index is None:
                    # a marker may be a server deleted since
                    raise BadRequest(f"marker [{marker}] not found")
                rows = rows[index + 1:]
            page = rows[:limit]
            if not detail:
                items = [views.brief(base, r) for r in page]
            else:
                extras = await self.extras(session, page)
                items = [views.detail(caller, base, r, extras[r.uuid]) for r in page]
        # Nova links the next page whenever a page is full
        next_marker = page[-1].uuid if page and len(page) == limit else None
        return ServerList(items, next_marker)

    # ------------------------------------------------------------------ update and delete

    async def update(self, caller: Caller, base: str, server_id: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.db.write() as session:
            inst = await self.get(session, caller, server_id, for_update=True)
            caller.authorize("os_compute_api:servers:update", {"project_id": inst.project_id,
                                                               "user_id": inst.user_id})
            if "name" in body:
                inst.name = body["name"]
            if "description" in body:
                inst.description = body["description"]
            if "accessIPv4" in body:
                inst.access_ip_v4 = normal_ip(body["accessIPv4"])
            if "accessIPv6" in body:
                inst.access_ip_v6 = normal_ip(body["accessIPv6"])
            if "hostname" in body:
                inst.hostname = body["hostname"]
            if "OS-DCF:diskConfig" in body:
                inst.system_metadata = {**(inst.system_metadata or {}), "disk_config": body["OS-DCF:diskConfig"]}
            if "pinned_availability_zone" in body:
                self._pin_zone(inst, body["pinned_availability_zone"])
            inst.updated_at = m.now()
            await session.flush()
            extras = await self.extras(session, [inst], addresses=False, groups=caller.at(2, 71))
        addrs, ports = await self.addresses_of([inst.uuid])
        extras[inst.uuid]["addresses"] = addrs[inst.uuid]
        await self._port_groups(extras, ports)
        return views.detail(caller, base, inst, extras[inst.uuid], "update")

    @staticmethod
    def _pin_zone(inst: m.Instance, wanted: str | None) -> None:
        """2.104: unpin (None) or pin the server to the zone it is in (Nova's 409s otherwise); the
        pinned zone is the one moves must stay in (the requested zone of its request spec)."""
        current = inst.requested_availability_zone
        if wanted is None:
            inst.requested_availability_zone = None
        elif current is not None:
            if wanted != current:
                raise Conflict("Cannot change pinned availability zone directly. Unpin first by setting "
                               "pinned_availability_zone to null.")
        elif wanted != (inst.availability_zone or ""):
            raise Conflict(f"Server can only be pinned to its current availability zone '{inst.availability_zone}', "
                           f"but '{wanted}' was requested.")
        else:
            inst.requested_availability_zone = wanted

    async def delete(self, caller: Caller, server_id: str, action: str = "delete") -> None:
        """DELETE /servers/{id} (and forceDelete): refused when locked (409); the host's part is the
        conductor's "delete" action; a server that never reached a host is deleted at once."""
        async with self.db.write() as session:
            inst = await self.get(session, caller, server_id, for_update=True)
            rule = "os_compute_api:servers:delete" if action == "delete" else "os_compute_api:os-deferred-delete:force"
            caller.authorize(rule, {"project_id": inst.project_id, "user_id": inst.user_id})
            if action == "forceDelete" and inst.vm_state != states.SOFT_DELETED:
                raise Conflict(f"Cannot 'forceDelete' instance {inst.uuid} while it is in vm_state {inst.vm_state}")
            self.check_lock(caller, inst)
            if inst.task_state == states.DELETING:
                return
            await self.record_action(session, caller, inst, "delete")
            submit = getattr(self.compute.conductor, "submit_action", None)
            if submit is None:
                await self.local_delete(session, inst)
                return
            inst.task_state = states.DELETING
            inst.updated_at = m.now()
            await session.flush()
            await submit(session, inst, "delete", {}, caller.request_id, caller)
        self.compute.tasks.wake()

    async def local_delete(self, session: AsyncSession, inst: m.Instance) -> None:
        """Mark a server deleted in the database (what remains after the host's part, or all of it
        for a server no host holds)."""
        now = m.now()
        inst.vm_state, inst.task_state, inst.power_state = states.DELETED, None, states.NOSTATE
        inst.deleted, inst.deleted_at, inst.terminated_at, inst.updated_at = True, now, now, now
        remove = getattr(self.compute.resources, "remove_instance_from_groups", None)
        if remove is not None:
            await remove(session, inst.uuid)
        await session.flush()

    def check_lock(self, caller: Caller, inst: m.Instance) -> None:
        """Nova's check_instance_lock: a locked server takes no action but from the admin."""
        if inst.locked and not caller.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")

    # ------------------------------------------------------------------ metadata and tags

    async def metadata(self, session: AsyncSession, uuid: str) -> dict[str, str]:
        rows = await session.execute(sa.select(m.InstanceMetadata.key, m.InstanceMetadata.value)
                                     .where(m.InstanceMetadata.instance_uuid == uuid))
        return {k: v for k, v in rows}

    async def set_metadata(self, session: AsyncSession, inst: m.Instance, items: dict[str, str],
                           replace: bool) -> dict[str, str]:
        current = await self.metadata(session, inst.uuid)
        wanted = dict(items) if replace else {**current, **items}
        if len(wanted) > METADATA_ITEMS:
            raise Forbidden(f"Quota exceeded for metadata_items: Requested {len(wanted)}, but already used 0 "
                            f"of {METADATA_ITEMS} metadata_items")
        table = m.InstanceMetadata.__table__
        await session.execute(sa.delete(table).where(table.c.instance_uuid == inst.uuid))
        if wanted:
            await session.execute(sa.insert(table), [{"instance_uuid": inst.uuid, "key": k, "value": v}
                                                     for k, v in wanted.items()])
        inst.updated_at = m.now()
        return wanted

    async def tags(self, session: AsyncSession, uuid: str) -> list[str]:
        rows = await session.execute(sa.select(m.InstanceTag.tag).where(m.InstanceTag.instance_uuid == uuid)
                                     .order_by(m.InstanceTag.tag))
        return list(rows.scalars())

    async def set_tags(self, session: AsyncSession, inst: m.Instance, tags: Sequence[str]) -> list[str]:
        unique = sorted(set(tags))
        if len(unique) > MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        table = m.InstanceTag.__table__
        await session.execute(sa.delete(table).where(table.c.instance_uuid == inst.uuid))
        if unique:
            await session.execute(sa.insert(table), [{"instance_uuid": inst.uuid, "tag": t} for t in unique])
        inst.updated_at = m.now()
        return unique

    # ------------------------------------------------------------------ actions' bookkeeping

    async def record_action(self, session: AsyncSession, caller: Caller, inst: m.Instance, action: str) -> m.InstanceAction:
        row = m.InstanceAction(instance_uuid=inst.uuid, action=action, request_id=caller.request_id or
                               f"req-{uuidlib.uuid4()}", user_id=caller.user_id, project_id=caller.project_id)
        session.add(row)
        await session.flush()
        return row


def _regex(value: str, name: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error:
        raise BadRequest(f"Invalid filter field: {name}.") from None


__all__ = ["APIError", "Conflict", "Servers", "ServerList", "decode_base64", "instance_not_found",
           "sanitize_hostname"]
