"""The network service's logic: networks, subnets, ports (with IPAM and port binding), and the
data-plane driver. Subnet pools, address scopes, RBAC, segments, quotas and tags are in
``service_core_extras.py``; routers, floating IPs, security groups, QoS and trunks in the L3
part (``service_l3.py``), which CORE calls through its hooks inside CORE's transactions.

Every method takes a :class:`Caller` (whose project, whether admin, and the policy check) and
raises Neutron's faults (``errors_core``). Visibility is decided in the queries: what a caller
may not see is a 404. Writes are one transaction each; once it commits, the driver is handed
views of what changed (and the work L3 queued in ``session.info["after_commit"]``). A driver
call that fails leaves the commit standing and marks the data plane out of sync; the next
request (or the service start) converges it with ``driver.sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import ipaddress
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from mcloud.core.db import Database
from mcloud.core.pagination import SortKey
from mcloud.identity.service import IdentityService
from mcloud.network import ipam
from mcloud.network import models as m
from mcloud.network import schemas as s
from mcloud.network.config import NetworkConfig
from mcloud.network.drivers import load_driver
from mcloud.network.drivers.base import (AddressPair, DesiredState, DriverError, ExtraDhcpOpt, FixedIP, HostRoute,
                                         NetworkDriver, NetworkView, PortView, SubnetView)
from mcloud.network.errors_core import (NeutronError, bad_request, conflict, forbidden, invalid_attribute,
                                        invalid_input, not_found, over_quota, policy_denied, revision_mismatch)

log = logging.getLogger("mcloud.network")

ROUTER_OWNERS = ("network:router_interface", "network:router_gateway", "network:router_interface_distributed",
                 "network:ha_router_replicated_interface", "network:router_centralized_snat")
#: device owners whose ports the data plane brings up without a host (OVN's router and DHCP ports)
UP_WITHOUT_HOST = (*ROUTER_OWNERS, "network:dhcp")
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "vdpa", "remote-managed")
IPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless", "slaac")
NETWORK_TYPES = ("flat", "vlan", "geneve", "local")
#: the overhead of a geneve header over IPv4 that Neutron's OVN driver takes off the MTU
GENEVE_OVERHEAD = 58
DNS_DOMAIN = "openstacklocal."
AVAILABILITY_ZONES = ("nova",)


def new_id() -> str:
    return str(uuid.uuid4())


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.replace(microsecond=0).isoformat() + "Z"


def stamp(value: datetime | str | None) -> str | None:
    """A timestamp as Neutron renders it (whole seconds, ``Z``), from a datetime or from the text
    SQLite stores ("2026-11-24 16:55:09.000000", read raw by ``raw_time`` columns)."""
    if value.__class__ is str:
        return f"{value[:10]}T{value[11:19]}Z"  # type: ignore[index]
    return iso(value)  # type: ignore[arg-type]


def raw_time(column: Any) -> Any:
    """A timestamp column read without parsing it into a datetime (SQLite's text; PostgreSQL's
    driver still gives a datetime): ``stamp`` renders both."""
    return sa.type_coerce(column, sa.String).label(column.key)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a large answer made of acyclic dicts and lists is
    built (it would walk the whole heap again and again, for nothing: reference counting frees
    them), back on after (unless it was off already)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def raw_json(column: Any) -> Any:
    """A JSON column read as its text (both drivers give text): ``parsed`` makes the value."""
    return sa.type_coerce(column, sa.String).label(column.key)


def parsed(value: Any) -> Any:
    """The value of a ``raw_json`` column (or the value itself, from an ORM object); the empty
    list and object most rows hold without a parser."""
    if value.__class__ is not str:
        return value
    return [] if value == "[]" else {} if value == "{}" else json.loads(value)


_port = m.Port.__table__.c
#: the columns a port's body is made of, in the order ``render_ports`` unpacks them
PORT_COLUMNS = (_port.id, _port.name, _port.network_id, _port.project_id, _port.mac_address, _port.admin_state_up,
                _port.status, _port.device_id, _port.device_owner, raw_json(_port.allowed_address_pairs),
                raw_json(_port.extra_dhcp_opts), _port.port_security_enabled, _port.vnic_type,
                raw_json(_port.profile), _port.host_id, _port.vif_type, raw_json(_port.vif_details), _port.dns_name,
                _port.description, raw_time(_port.created_at), raw_time(_port.updated_at), _port.revision_number)


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asks: their project (None for a system- or domain-scoped token), whether admin, and
    the policy check (``check(rule, target) -> bool``; None: an internal call, allowed)."""

    project_id: str | None
    is_admin: bool = False
    check: Callable[[str, dict[str, Any]], bool] | None = None

    @classmethod
    def internal(cls) -> Caller:
        return cls(None, True, None)

    def allowed(self, rule: str, target: dict[str, Any]) -> bool:
        return self.check is None or self.check(rule, target)

    def enforce(self, rule: str, target: dict[str, Any]) -> None:
        if not self.allowed(rule, target):
            raise policy_denied(rule)


@dataclasses.dataclass
class Page:
    """One page of a list: the rendered items, and whether more follow (for the links)."""

    items: list[dict[str, Any]]
    more: bool
    #: the marker of the page's first and last row (for the previous/next links)
    first: str | None = None
    last: str | None = None


def check_revision(row: Any, if_match: str | None) -> None:
    """``If-Match: revision_number=N``: 412 unless the row is at revision N."""
    if not if_match:
        return
    for part in if_match.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip() != "revision_number":
            continue
        value = value.strip()
        if not value.isdigit():
            raise bad_request(f"Invalid input for If-Match: '{value}' is not a revision number.")
        if int(value) != row.revision_number:
            raise revision_mismatch(int(value), row.revision_number)


def standard(row: Any) -> dict[str, Any]:
    return {"description": row.description or "", "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at), "revision_number": row.revision_number}


def changed_attr(body: dict[str, Any], name: str, current: Any) -> bool:
    return name in body and body[name] != current


# ---------------------------------------------------------------------- list filters

FilterFn = Callable[[list[str]], Any]


def _bool_filter(column: Any, name: str) -> FilterFn:
    return lambda values: column.in_([s.to_bool(v, name) for v in values])


def _int_filter(column: Any, name: str) -> FilterFn:
    def f(values: list[str]) -> Any:
        try:
            return column.in_([int(v) for v in values])
        except ValueError:
            raise invalid_attribute(name, f"'{values[0]}' is not an integer") from None
    return f


def _str_filter(column: Any) -> FilterFn:
    return lambda values: column.in_(values)


def tag_conditions(id_column: Any, params: dict[str, list[str]]) -> list[Any]:
    """tags (all of), tags-any, not-tags, not-tags-any: comma-separated lists, in SQL."""
    out = []
    tag = m.Tag.__table__

    def split(name: str) -> list[str]:
        return [t for v in params.get(name, []) for t in v.split(",") if t]

    for name in ("tags", "not-tags"):
        wanted = split(name)
        if wanted:
            having = (sa.select(tag.c.resource_id).where(tag.c.tag.in_(wanted)).group_by(tag.c.resource_id)
                      .having(sa.func.count(sa.distinct(tag.c.tag)) == len(set(wanted))))
            out.append(id_column.in_(having) if name == "tags" else id_column.not_in(having))
    for name in ("tags-any", "not-tags-any"):
        wanted = split(name)
        if wanted:
            any_ = sa.select(tag.c.resource_id).where(tag.c.tag.in_(wanted))
            out.append(id_column.in_(any_) if name == "tags-any" else id_column.not_in(any_))
    return out


TAG_PARAMS = ("tags", "tags-any", "not-tags", "not-tags-any")
LIST_PARAMS = ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", *TAG_PARAMS)


def sql_filters(params: dict[str, list[str]], filters: dict[str, FilterFn], resource: str) -> list[Any]:
    conditions = []
    for name, values in params.items():
        if name in LIST_PARAMS:
            continue
        f = filters.get(name)
        if f is None:
            raise bad_request(f"[{name}] is invalid attribute for filtering", "HTTPBadRequest")
        conditions.append(f(values))
    return conditions


def sort_keys(params: dict[str, list[str]], columns: dict[str, Any]) -> list[SortKey]:
    keys = params.get("sort_key", [])
    dirs = params.get("sort_dir", [])
    if dirs and len(dirs) != len(keys):
        raise bad_request("The number of sort_keys and sort_dirs must be same")
    out = []
    for i, name in enumerate(keys):
        if name not in columns:
            raise bad_request(f"{name} is an invalid attribute for sort_keys")
        direction = dirs[i] if dirs else "asc"
        if direction not in ("asc", "desc"):
            raise bad_request(f"{direction} is an invalid value for sort_dirs, valid values are asc and desc")
        out.append(SortKey(columns[name], direction == "desc"))
    return out


async def page_query(session: AsyncSession, query: sa.Select[Any], id_column: Any, sort: list[SortKey],
                     limit: int | None, marker: str | None, page_reverse: bool) -> sa.Select[Any]:
    """``query`` narrowed to one page: in (sort keys, id) order after ``marker`` (before it with
    page_reverse), ``limit`` + 1 rows (the one more says whether more follow). Sorted by id
    alone (the default), the marker is the key itself; other sort keys read the marker's values
    first (a marker that names no row the caller sees starts from the beginning)."""
    keys = [*sort, SortKey(id_column, sort[-1].descending if sort else False)]
    if page_reverse:
        keys = [SortKey(k.column, not k.descending) for k in keys]
    if marker is not None:
        values: Any = (marker,) if len(keys) == 1 else (await session.execute(
            query.with_only_columns(*(k.column for k in keys)).where(id_column == marker))).first()
        if values is not None:
            clauses = []
            for i, k in enumerate(keys):
                equal = [keys[j].column == values[j] for j in range(i)]
                after = k.column < values[i] if k.descending else k.column > values[i]
                clauses.append(sa.and_(*equal, after))
            query = query.where(sa.or_(*clauses))
    query = query.order_by(*(k.column.desc() if k.descending else k.column.asc() for k in keys))
    if limit is not None:
        query = query.limit(limit + 1)
    return query


def page_rows(rows: list[Any], limit: int | None, page_reverse: bool) -> tuple[list[Any], bool]:
    """The page's rows (in order) from what ``page_query`` read, and whether more follow."""
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    if page_reverse:
        rows.reverse()
    return rows, more


async def paged(session: AsyncSession, query: sa.Select[Any], id_column: Any, sort: list[SortKey],
                limit: int | None, marker: str | None, page_reverse: bool,
                as_objects: bool = True) -> tuple[list[Any], bool]:
    """Rows of ``query`` in (sort keys, id) order after ``marker`` (before it with page_reverse),
    at most ``limit``; and whether more rows follow. ``as_objects=False``: plain rows (a query
    of a table's columns), which cost a fraction of ORM objects to load."""
    result = await session.execute(await page_query(session, query, id_column, sort, limit, marker, page_reverse))
    return page_rows(list(result.scalars() if as_objects else result.all()), limit, page_reverse)


#: up to this many ids, related facts are read with the ids as bound values; a bigger page
#: names its rows by its own query instead (never thousands of bound values)
INLINE_IDS = 500


@dataclasses.dataclass(frozen=True)
class Ids:
    """The rows whose related facts (addresses, tags, L3 extras) are read: ``ids``, which
    ``query`` (a SELECT of one id column, or None) selects too. ``where(column)`` is the
    condition on a related table's id column: ``IN`` the bound ids for a small set, ``IN`` the
    query for a large one."""

    ids: Sequence[str]
    query: Any = None

    def where(self, column: Any) -> Any:
        if self.query is None or len(self.ids) <= INLINE_IDS:
            return column.in_(list(self.ids))
        return column.in_(self.query)

    def __len__(self) -> int:
        return len(self.ids)

    def chunks(self) -> Iterable[Ids]:
        """Itself, or (ids without a query) pieces of at most 5,000 bound values."""
        if self.query is not None or len(self.ids) <= 5000:
            yield self
            return
        for chunk in _chunks(self.ids, 5000):
            yield Ids(chunk)


def ids_of(ids: Sequence[str] | Ids) -> Ids:
    return ids if isinstance(ids, Ids) else Ids(list(ids))


# ---------------------------------------------------------------------- the service


class NetworkService:
    def __init__(self, db: Database, config: NetworkConfig, data_dir: Path, identity: IdentityService):
        from mcloud.network.service_core_extras import Extras
        from mcloud.network.service_l3 import L3Service

        self.db = db
        self.config = config
        self.data_dir = data_dir
        self.identity = identity
        self._driver: NetworkDriver | None = None
        self._started = False
        self._start_lock = asyncio.Lock()
        self._in_sync = True
        self._sync_task: asyncio.Task[None] | None = None
        self.extras = Extras(self)
        self.l3 = L3Service(self)

    # ------------------------------------------------------------------ the driver

    @property
    def driver(self) -> NetworkDriver:
        if self._driver is None:
            self._driver = load_driver(self.config, self.data_dir)
        return self._driver

    async def start(self) -> None:
        """Connect the driver and converge the data plane (once per process; every request asks)."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            await self.driver.start(self.port_status_changed)
            self._started = True
            await self.sync()

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(BaseException):
                await self._sync_task
        if self._started and self._driver is not None:
            await self._driver.close()
        self._started = False

    def dataplane_failed(self, exc: BaseException) -> None:
        """A driver call failed: the commit stands; converge the data plane with ``sync`` soon."""
        log.warning("network: data-plane call failed (%s); resyncing", exc)
        self._in_sync = False
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.get_running_loop().create_task(self._resync_later())

    async def _resync_later(self) -> None:
        for delay in (0.5, 1, 2, 5, 10, 30):
            await asyncio.sleep(delay)
            try:
                await self.sync()
                return
            except Exception as exc:  # noqa: BLE001 - keep trying, and say why
                log.warning("network: sync failed (%s); trying again", exc)

    async def sync(self) -> None:
        state = await self.desired_state()
        report = await self.driver.sync(state)
        self._in_sync = True
        if report.created or report.updated or report.deleted:
            log.info("network: data plane synced (%d created, %d updated, %d deleted)",
                     report.created, report.updated, report.deleted)

    async def desired_state(self) -> DesiredState:
        async with self.db.read() as session:
            networks = list((await session.execute(sa.select(m.Network))).scalars())
            net_views = await self.network_views(session, networks)
            subnets = list((await session.execute(sa.select(m.Subnet))).scalars())
            mtu = {n.id: n.mtu for n in networks}
            ports = list((await session.execute(sa.select(m.Port))).scalars())
            port_views = await self.port_views_of(session, ports, await self.port_facts(
                session, ports, Ids([p.id for p in ports], sa.select(m.Port.id))))
            l3 = await self.l3.desired_state(session)
        return DesiredState(
            networks=tuple(net_views[n.id] for n in networks),
            subnets=tuple(subnet_view(x, mtu.get(x.network_id, 1500)) for x in subnets),
            ports=tuple(port_views[p.id] for p in ports),
            security_groups=tuple(l3.get("security_groups", ())), routers=tuple(l3.get("routers", ())),
            floating_ips=tuple(l3.get("floating_ips", ())))

    async def _dataplane(self, calls: Iterable[Callable[[], Awaitable[None]]]) -> None:
        for call in calls:
            try:
                await call()
            except DriverError as exc:
                self.dataplane_failed(exc)
            except Exception as exc:  # noqa: BLE001 - a data-plane bug must not fail a committed change
                log.exception("network: data-plane call failed")
                self.dataplane_failed(exc)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction; the data-plane work queued on it runs after the commit (the views
        of the ports it changed are taken inside it, just before the commit)."""
        queued: list[Callable[[], Awaitable[None]]] = []
        async with self.db.write() as session:
            yield session
            views = await self._queued_port_views(session)
            queued = session.info.pop("after_commit", [])
        if views:
            queued.insert(0, lambda: self._ensure_port_views(views))
        await self._dataplane(queued)

    async def _queued_port_views(self, session: AsyncSession) -> list[PortView]:
        ids: dict[str, None] = session.info.pop("ensure_ports", {})
        known: dict[str, PortView] = session.info.pop("port_views", {})
        if not ids:
            return []
        await session.flush()
        missing = [i for i in ids if i not in known]
        if missing:
            known.update(await self.port_views(session, missing))
        return [known[i] for i in ids if i in known]

    async def _ensure_port_views(self, views: Sequence[PortView]) -> None:
        for view in views:
            await self.driver.ensure_port(view)

    @staticmethod
    def after_commit(session: AsyncSession, call: Callable[[], Awaitable[None]]) -> None:
        session.info.setdefault("after_commit", []).append(call)

    async def port_status_changed(self, port_id: str, up: bool) -> None:
        """The driver's report: a port came up (ACTIVE) or went down (DOWN) on the data plane."""
        status = s.STATUS_ACTIVE if up else s.STATUS_DOWN
        async with self.db.write() as session:
            port = await session.get(m.Port, port_id, with_for_update=True)
            if port is None or port.status == status:
                return
            port.status = status
            port.touch()

    # ------------------------------------------------------------------ views for the driver

    async def network_views(self, session: AsyncSession, networks: Sequence[m.Network]) -> dict[str, NetworkView]:
        segments = await self.primary_segments(session, [n.id for n in networks])
        out = {}
        for n in networks:
            seg = segments.get(n.id)
            out[n.id] = NetworkView(
                id=n.id, name=n.name, project_id=n.project_id, admin_state_up=n.admin_state_up, mtu=n.mtu,
                network_type=seg.network_type if seg else "local",
                physical_network=seg.physical_network if seg else None,
                segmentation_id=seg.segmentation_id if seg else None, external=n.external,
                port_security_enabled=n.port_security_enabled, dns_domain=n.dns_domain or None)
        return out

    async def port_views(self, session: AsyncSession, port_ids: Iterable[str]) -> dict[str, PortView]:
        ids = list(dict.fromkeys(port_ids))
        out: dict[str, PortView] = {}
        for chunk in _chunks(ids, INLINE_IDS):
            ports = list((await session.execute(sa.select(m.Port).where(m.Port.id.in_(chunk)))).scalars())
            out.update(await self.port_views_of(session, ports))
        return out

    async def port_facts(self, session: AsyncSession, ports: Sequence[Any],
                         ids: Ids | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(addresses, L3 extras) of ports: what both their views and their bodies are made of.
        ``ids``: which rows to read them for (default: the ports' ids)."""
        ids = ids or Ids([p.id for p in ports])
        return await self.fixed_ips(session, ids), await self.l3.port_extras(session, list(ports), ids)

    async def port_views_of(self, session: AsyncSession, ports: Sequence[m.Port],
                            facts: tuple[dict[str, Any], dict[str, Any]] | None = None) -> dict[str, PortView]:
        return self.port_views_of_facts(ports, facts or await self.port_facts(session, ports))

    @staticmethod
    def port_views_of_facts(ports: Sequence[m.Port], facts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, PortView]:
        ips, extras = facts
        out = {}
        for p in ports:
            x = extras.get(p.id)
            out[p.id] = PortView(
                id=p.id, network_id=p.network_id, project_id=p.project_id, name=p.name, mac_address=p.mac_address,
                admin_state_up=p.admin_state_up,
                fixed_ips=tuple(FixedIP(subnet_id=sub, ip_address=ip) for sub, ip in ips.get(p.id, ())),
                device_owner=p.device_owner, device_id=p.device_id, port_security_enabled=p.port_security_enabled,
                security_group_ids=tuple(x.security_groups) if x else (),
                allowed_address_pairs=tuple(AddressPair(ip_address=a["ip_address"], mac_address=a["mac_address"])
                                            for a in p.allowed_address_pairs),
                host_id=p.host_id, vnic_type=p.vnic_type, profile=dict(p.profile or {}),
                extra_dhcp_opts=tuple(ExtraDhcpOpt(opt_name=o["opt_name"], opt_value=str(o["opt_value"]),
                                                   ip_version=o.get("ip_version", 4))
                                      for o in p.extra_dhcp_opts if o.get("opt_value") is not None),
                qos=x.qos if x else None, dns_name=p.dns_name,
                parent_port_id=x.parent_port_id if x else None, vlan_tag=x.vlan_tag if x else None)
        return out

    def _ensure_ports_later(self, session: AsyncSession, port_ids: Iterable[str]) -> None:
        """Hand these ports to the driver after the commit (their views are taken at its end)."""
        queued = session.info.setdefault("ensure_ports", {})
        for port_id in port_ids:
            queued[port_id] = None

    # ------------------------------------------------------------------ shared reads

    async def fixed_ips(self, session: AsyncSession, port_ids: Sequence[str] | Ids,
                        with_tags: bool = False) -> Any:
        """{port id: [(subnet id, address), ...]} in address order (IPv4 first); ``with_tags``:
        and the ports' {port id: sorted tags}, read in the same statement."""
        ids = ids_of(port_ids)
        out: dict[str, list[tuple[str, str]]] = {}
        tags: dict[str, list[str]] = {}
        if not ids:
            return (out, tags) if with_tags else out
        a, t = m.IPAllocation.__table__, m.Tag.__table__
        several = set()
        for chunk in ids.chunks():
            query: Any = sa.select(a.c.port_id, a.c.subnet_id, a.c.ip_address).where(chunk.where(a.c.port_id))
            if with_tags:  # a tag row comes with no address (NULL), sorted after the addresses
                query = sa.union_all(query, sa.select(t.c.resource_id, t.c.tag, sa.null()).where(
                    chunk.where(t.c.resource_id)))
            for port_id, subnet_id, ip in await session.execute(query):
                if ip is None:
                    tags.setdefault(port_id, []).append(subnet_id)
                    continue
                have = out.get(port_id)
                if have is None:
                    out[port_id] = [(subnet_id, ip)]
                else:
                    have.append((subnet_id, ip))
                    several.add(port_id)
        for port_id in several:
            out[port_id] = ordered_ips(out[port_id])
        for v in tags.values():
            v.sort()
        return (out, tags) if with_tags else out

    async def primary_segments(self, session: AsyncSession, network_ids: Sequence[str]) -> dict[str, m.Segment]:
        out: dict[str, m.Segment] = {}
        for chunk in _chunks(network_ids, 5000):
            rows = (await session.execute(sa.select(m.Segment).where(m.Segment.network_id.in_(chunk))
                                          .order_by(m.Segment.segment_index.desc()))).scalars()
            for seg in rows:
                out[seg.network_id] = seg
        return out

    async def tags_of(self, session: AsyncSession, ids: Sequence[str] | Ids) -> dict[str, list[str]]:
        """{resource id: sorted tags} (L3 renders its resources' tags with this too)."""
        out: dict[str, list[str]] = {}
        which = ids_of(ids)
        if not which:
            return out
        t = m.Tag.__table__
        for chunk in which.chunks():
            for rid, tag in await session.execute(sa.select(t.c.resource_id, t.c.tag).where(chunk.where(t.c.resource_id))):
                out.setdefault(rid, []).append(tag)
        for v in out.values():
            v.sort()
        return out

    async def set_tags(self, session: AsyncSession, resource_type: str, resource_id: str, tags: Iterable[str]) -> None:
        t = m.Tag.__table__
        await session.execute(sa.delete(t).where(t.c.resource_id == resource_id))
        rows = [{"resource_id": resource_id, "tag": tag, "resource_type": resource_type} for tag in sorted(set(tags))]
        if rows:
            await session.execute(sa.insert(t), rows)

    # ------------------------------------------------------------------ visibility

    def rbac_targets(self, caller: Caller, object_type: str, actions: Sequence[str]) -> Any:
        r = m.RBACPolicy.__table__
        return sa.select(r.c.object_id).where(r.c.object_type == object_type, r.c.action.in_(actions),
                                              r.c.target_project.in_([caller.project_id or "", "*"]))

    def network_visibility(self, caller: Caller) -> Any:
        if caller.is_admin:
            return sa.true()
        n = m.Network
        return sa.or_(n.project_id == caller.project_id, n.shared,
                      n.id.in_(self.rbac_targets(caller, "network", ("access_as_shared", "access_as_external"))))

    def shared_with(self, caller: Caller) -> Any:
        """Networks shared with the caller's project: wildcard or by an RBAC entry naming it."""
        n = m.Network
        return sa.or_(n.shared, n.id.in_(self.rbac_targets(caller, "network", ("access_as_shared",))))

    def subnet_visibility(self, caller: Caller) -> Any:
        if caller.is_admin:
            return sa.true()
        n = m.Network
        nets = sa.select(n.id).where(sa.or_(n.project_id == caller.project_id, self.shared_with(caller)))
        return sa.or_(m.Subnet.project_id == caller.project_id, m.Subnet.network_id.in_(nets))

    def port_visibility(self, caller: Caller) -> Any:
        if caller.is_admin:
            return sa.true()
        owned = sa.select(m.Network.id).where(m.Network.project_id == caller.project_id)
        return sa.or_(m.Port.project_id == caller.project_id, m.Port.network_id.in_(owned))

    async def shared_for(self, session: AsyncSession, caller: Caller, networks: Sequence[m.Network]) -> set[str]:
        """Which of ``networks`` the caller sees as ``shared`` (wildcard, or an entry naming it)."""
        out = {n.id for n in networks if n.shared}
        rest = [n.id for n in networks if not n.shared]
        if rest and caller.project_id:
            r = m.RBACPolicy
            for chunk in _chunks(rest, 5000):
                out.update((await session.execute(sa.select(r.object_id).where(
                    r.object_type == "network", r.action == "access_as_shared", r.object_id.in_(chunk),
                    r.target_project == caller.project_id))).scalars())
        return out

    async def get_network_row(self, session: AsyncSession, caller: Caller, network_id: Any,
                              for_update: bool = False) -> m.Network:
        return await self._row(session, m.Network, "Network", self.network_visibility(caller), network_id, for_update)

    async def _network_and_subnets(self, session: AsyncSession, caller: Caller,
                                   network_id: Any) -> tuple[m.Network, list[m.Subnet]]:
        """The network the caller sees (else NetworkNotFound) and its subnets in creation order,
        in one read (what a new port needs)."""
        if not isinstance(network_id, str) or not s.is_uuid(network_id):
            raise not_found("Network", str(network_id))
        rows = (await session.execute(
            sa.select(m.Network, m.Subnet).outerjoin(m.Subnet, m.Subnet.network_id == m.Network.id)
            .where(m.Network.id == network_id, self.network_visibility(caller))
            .order_by(m.Subnet.created_at, m.Subnet.id))).all()
        if not rows:
            raise not_found("Network", network_id)
        return rows[0][0], [subnet for _, subnet in rows if subnet is not None]

    async def network_target(self, session: AsyncSession, caller: Caller, net: m.Network) -> dict[str, Any]:
        # "shared" matters only to a caller who is neither the admin nor the network's owner
        shared = net.shared or (caller.project_id not in (None, net.project_id) and not caller.is_admin
                                and net.id in await self.shared_for(session, caller, [net]))
        return {"project_id": net.project_id, "tenant_id": net.project_id, "shared": shared,
                "router:external": net.external, "id": net.id}

    async def _list(self, model: Any, visibility: Any, filters: dict[str, FilterFn], sort_columns: dict[str, Any],
                    render: Callable[[AsyncSession, list[Any], Ids], Awaitable[list[dict[str, Any]]]],
                    params: dict[str, list[str]], limit: int | None, marker: str | None, page_reverse: bool,
                    columns: Sequence[Any] | None = None) -> Page:
        """One page of ``model`` the caller sees: filters and tags in SQL, sorted, rendered.
        ``render`` gets the plain rows (``columns``, default all the table's, in that order) and
        the page's ``Ids`` for reading related facts (by the page's own query when it is big)."""
        conditions = sql_filters(params, filters, model.__tablename__) + tag_conditions(model.id, params)
        sort = sort_keys(params, sort_columns)
        id_column = model.__table__.c.id
        async with self.db.read() as session:
            # read-only rows, rendered by attribute as the ORM objects would be
            q = sa.select(*(columns if columns is not None else model.__table__.c)).where(visibility, *conditions)
            q = await page_query(session, q, id_column, sort, limit, marker, page_reverse)
            rows, more = page_rows(list((await session.execute(q)).all()), limit, page_reverse)
            items = await render(session, rows, Ids([r.id for r in rows], q.with_only_columns(id_column)))
        return Page(items, more, rows[0].id if rows else None, rows[-1].id if rows else None)

    async def _row(self, session: AsyncSession, model: Any, kind: str, visibility: Any, row_id: Any,
                   for_update: bool) -> Any:
        """The row ``row_id`` of ``model`` if the caller sees it, else Neutron's <Kind>NotFound."""
        if not isinstance(row_id, str) or not s.is_uuid(row_id):
            raise not_found(kind, str(row_id))
        q = sa.select(model).where(model.id == row_id, visibility)
        if for_update:
            q = q.with_for_update()
        row = (await session.execute(q)).scalar()
        if row is None:
            raise not_found(kind, row_id)
        return row

    # ------------------------------------------------------------------ quotas (see service_core_extras)

    async def check_quota(self, session: AsyncSession, project_id: str, resource: str, adding: int = 1) -> None:
        await self.extras.check_quota(session, project_id, resource, adding)

    # ------------------------------------------------------------------ networks

    NETWORK_SORT = {"id": m.Network.id, "name": m.Network.name, "status": m.Network.status,
                    "admin_state_up": m.Network.admin_state_up, "mtu": m.Network.mtu,
                    "project_id": m.Network.project_id, "tenant_id": m.Network.project_id,
                    "shared": m.Network.shared, "router:external": m.Network.external,
                    "created_at": m.Network.created_at, "updated_at": m.Network.updated_at,
                    "revision_number": m.Network.revision_number, "description": m.Network.description,
                    "port_security_enabled": m.Network.port_security_enabled}

    def _network_filters(self, caller: Caller) -> dict[str, FilterFn]:
        n = m.Network
        seg = m.Segment

        def segment_filter(column: Any, conv: Callable[[str], Any]) -> FilterFn:
            return lambda values: n.id.in_(sa.select(seg.network_id).where(column.in_([conv(v) for v in values])))

        def shared(values: list[str]) -> Any:
            want = [s.to_bool(v, "shared") for v in values]
            cond = self.shared_with(caller) if caller.project_id else n.shared
            if want == [True]:
                return cond
            if want == [False]:
                return sa.not_(cond)
            return sa.true()

        def seg_int(v: str) -> int:
            try:
                return int(v)
            except ValueError:
                raise invalid_attribute("provider:segmentation_id", f"'{v}' is not an integer") from None

        return {"id": _str_filter(n.id), "name": _str_filter(n.name), "description": _str_filter(n.description),
                "project_id": _str_filter(n.project_id), "tenant_id": _str_filter(n.project_id),
                "status": _str_filter(n.status), "admin_state_up": _bool_filter(n.admin_state_up, "admin_state_up"),
                "shared": shared, "router:external": _bool_filter(n.external, "router:external"),
                "mtu": _int_filter(n.mtu, "mtu"),
                "port_security_enabled": _bool_filter(n.port_security_enabled, "port_security_enabled"),
                "revision_number": _int_filter(n.revision_number, "revision_number"),
                "dns_domain": _str_filter(n.dns_domain),
                "provider:network_type": segment_filter(seg.network_type, str),
                "provider:physical_network": segment_filter(seg.physical_network, str),
                "provider:segmentation_id": segment_filter(seg.segmentation_id, seg_int),
                "availability_zone_hints": lambda values: sa.true(), "is_default": lambda values: sa.true(),
                "subnets": lambda values: n.id.in_(sa.select(m.Subnet.network_id).where(m.Subnet.id.in_(values)))}

    async def list_networks(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                            marker: str | None = None, page_reverse: bool = False) -> Page:
        return await self._list(m.Network, self.network_visibility(caller), self._network_filters(caller), self.NETWORK_SORT,
                                lambda session, rows, ids: self.render_networks(session, caller, rows, ids), params, limit,
                                marker, page_reverse)

    async def show_network(self, caller: Caller, network_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            net = await self.get_network_row(session, caller, network_id)
            return (await self.render_networks(session, caller, [net]))[0]

    async def render_networks(self, session: AsyncSession, caller: Caller,
                              nets: Sequence[m.Network], which: Ids | None = None) -> list[dict[str, Any]]:
        ids = [n.id for n in nets]
        which = which or Ids(ids)
        subnets: dict[str, list[str]] = {}
        scopes: dict[str, dict[int, str | None]] = {}
        for chunk in which.chunks():
            q = (sa.select(m.Subnet.network_id, m.Subnet.id, m.Subnet.ip_version, m.SubnetPool.address_scope_id)
                 .outerjoin(m.SubnetPool, m.SubnetPool.id == m.Subnet.subnetpool_id)
                 .where(chunk.where(m.Subnet.network_id)).order_by(m.Subnet.created_at, m.Subnet.id))
            for net_id, sub_id, version, scope in await session.execute(q):
                subnets.setdefault(net_id, []).append(sub_id)
                if scope:
                    scopes.setdefault(net_id, {})[version] = scope
        segments = await self.primary_segments(session, ids)
        tags = await self.tags_of(session, which)
        shared = await self.shared_for(session, caller, nets)
        extras = await self.l3.network_extras(session, list(nets))
        out = []
        for n in nets:
            seg = segments.get(n.id)
            item = {
                "id": n.id, "name": n.name, "tenant_id": n.project_id, "project_id": n.project_id,
                "admin_state_up": n.admin_state_up, "mtu": n.mtu, "status": n.status,
                "subnets": subnets.get(n.id, []), "shared": n.id in shared,
                "availability_zone_hints": list(n.availability_zone_hints or []),
                "availability_zones": list(n.availability_zone_hints or AVAILABILITY_ZONES),
                "ipv4_address_scope": scopes.get(n.id, {}).get(4), "ipv6_address_scope": scopes.get(n.id, {}).get(6),
                "router:external": n.external, "port_security_enabled": n.port_security_enabled,
                "dns_domain": n.dns_domain or "", "l2_adjacency": True, "is_default": False,
                "tags": tags.get(n.id, []), **standard(n),
                "provider:network_type": seg.network_type if seg else None,
                "provider:physical_network": seg.physical_network if seg else None,
                "provider:segmentation_id": seg.segmentation_id if seg else None,
            }
            item.update(extras.get(n.id, {}))
            out.append(item)
        return out

    def _tenant_network_type(self) -> str:
        configured = self.config.tenant_network_type
        return configured if configured in self.driver.network_types else (
            "geneve" if "geneve" in self.driver.network_types else "local")

    def default_mtu(self, network_type: str) -> int:
        base = self.config.global_physnet_mtu
        return base - GENEVE_OVERHEAD if network_type == "geneve" else base

    async def _segment_for(self, session: AsyncSession, network_id: str, body: dict[str, Any],
                           explicit: bool) -> m.Segment:
        """The network's segment: the provider attributes given (admin), else a tenant segment."""
        network_type = body.get("provider:network_type")
        physnet = body.get("provider:physical_network")
        seg_id = body.get("provider:segmentation_id")
        if not explicit:
            network_type, physnet, seg_id = self._tenant_network_type(), None, None
        else:
            if network_type is None:
                raise invalid_input("network_type required")
            s.string(network_type, "provider:network_type", 255)
            if network_type not in NETWORK_TYPES or network_type not in self.driver.network_types:
                raise invalid_input(f"network_type value '{network_type}' not supported")
            if physnet is not None:
                s.string(physnet, "provider:physical_network", 64)
            if seg_id is not None:
                seg_id = s.to_int(seg_id, "provider:segmentation_id")
            if network_type == "flat":
                if seg_id is not None:
                    raise invalid_input("segmentation_id specified for flat provider network")
                if not physnet:
                    raise invalid_input("physical_network required for flat provider network")
            elif network_type == "vlan":
                if not physnet:
                    raise invalid_input("provider:physical_network required for VLAN provider network")
                if seg_id is not None and not 1 <= seg_id <= 4094:
                    raise invalid_input(f"segmentation_id out of range (1 through 4094)")
            elif network_type == "geneve":
                if physnet:
                    raise invalid_input("provider:physical_network specified for geneve network")
                if seg_id is not None and not 1 <= seg_id <= (1 << 24) - 1:
                    raise invalid_input(f"segmentation_id out of range (1 through {(1 << 24) - 1})")
            elif network_type == "local":
                if physnet or seg_id is not None:
                    raise invalid_input("provider:physical_network and provider:segmentation_id are not "
                                        "allowed for local provider network")
        seg = m.Segment(id=new_id(), network_id=network_id, network_type=network_type, physical_network=physnet,
                        segmentation_id=seg_id, segment_index=0, physnet_key=physnet or "")
        await self.place_segment(session, seg, explicit_id=seg_id is not None)
        return seg

    async def place_segment(self, session: AsyncSession, seg: m.Segment, explicit_id: bool) -> None:
        """Insert ``seg``, choosing a free VLAN id/VNI when none is given (unique by constraint)."""
        if seg.network_type == "local":
            seg.seg_key = None
        elif seg.network_type == "flat":
            seg.seg_key = 0
        for _ in range(20):
            if seg.network_type in ("vlan", "geneve") and not explicit_id:
                high = 4094 if seg.network_type == "vlan" else (1 << 24) - 1
                used = (await session.execute(sa.select(sa.func.max(m.Segment.seg_key)).where(
                    m.Segment.network_type == seg.network_type, m.Segment.physnet_key == seg.physnet_key))).scalar()
                candidate = (used or 0) + 1
                if candidate > high:
                    taken = set((await session.execute(sa.select(m.Segment.seg_key).where(
                        m.Segment.network_type == seg.network_type,
                        m.Segment.physnet_key == seg.physnet_key))).scalars())
                    candidate = next((i for i in range(1, high + 1) if i not in taken), 0)
                    if not candidate:
                        raise conflict("NoNetworkAvailable", "Unable to create the network. No tenant network "
                                                             "is available for allocation.")
                seg.segmentation_id = candidate
            if seg.network_type in ("vlan", "geneve"):
                seg.seg_key = seg.segmentation_id
            try:
                async with session.begin_nested():
                    session.add(seg)
                    await session.flush()
                return
            except IntegrityError:
                session.expunge(seg) if seg in session else None
                if explicit_id or seg.network_type == "flat":
                    if seg.network_type == "flat":
                        raise conflict("FlatNetworkInUse", f"Unable to create the flat network. Physical network "
                                                           f"{seg.physical_network} is in use.") from None
                    what = "VLAN" if seg.network_type == "vlan" else "segmentation ID"
                    where = f" on physical network {seg.physical_network}" if seg.physical_network else ""
                    raise conflict("SegmentationIdInUse" if seg.network_type != "vlan" else "VlanIdInUse",
                                   f"Unable to create the network. The {what} {seg.segmentation_id}{where} is in use."
                                   ) from None
        raise conflict("NoNetworkAvailable", "Unable to create the network. No tenant network is available for "
                                             "allocation.")

    async def create_networks(self, caller: Caller, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        views: list[NetworkView] = []
        async with self.write() as session:
            rows = []
            for body in bodies:
                rows.append(await self._create_network(session, caller, body))
            await session.flush()
            views = list((await self.network_views(session, rows)).values())
            out = await self.render_networks(session, caller, rows)
            self.after_commit(session, lambda: self._ensure_networks(views))
        return out

    async def _ensure_networks(self, views: Sequence[NetworkView]) -> None:
        for v in views:
            await self.driver.ensure_network(v)

    async def _create_network(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> m.Network:
        project = s.project_of(body, caller.project_id, caller.is_admin)
        target = {"project_id": project, "tenant_id": project, **body}
        caller.enforce("create_network", target)
        defaults = {"shared": False, "router:external": False, "port_security_enabled": True, "is_default": False}
        for attr in ("shared", "router:external", "provider:network_type", "provider:physical_network",
                     "provider:segmentation_id", "is_default", "segments", "port_security_enabled", "mtu",
                     "availability_zone_hints", "dns_domain", "qos_policy_id"):
            if attr in body and body[attr] != defaults.get(attr, object()):
                caller.enforce(f"create_network:{attr}", target)
        if "segments" in body:
            raise invalid_input("Multi-provider networks (segments) are not supported; use the provider attributes")
        if body.get("is_default") not in (None, False):
            s.to_bool(body["is_default"], "is_default")
            raise invalid_input("is_default (auto-allocated topology) is not supported")
        await self.check_quota(session, project, "network")
        net = m.Network(id=new_id(), project_id=project, name=s.string(body.get("name", ""), "name"),
                        description=s.string(body.get("description", ""), "description"),
                        admin_state_up=s.to_bool(body.get("admin_state_up", True), "admin_state_up"),
                        shared=s.to_bool(body.get("shared", False), "shared"),
                        external=s.to_bool(body.get("router:external", False), "router:external"),
                        port_security_enabled=s.to_bool(body.get("port_security_enabled", True),
                                                        "port_security_enabled"),
                        dns_domain=self._dns_domain(body.get("dns_domain", "")),
                        availability_zone_hints=self._az_hints(body.get("availability_zone_hints", [])),
                        status=s.STATUS_ACTIVE, revision_number=1)
        session.add(net)
        await session.flush()
        explicit = any(k in body for k in ("provider:network_type", "provider:physical_network",
                                           "provider:segmentation_id"))
        seg = await self._segment_for(session, net.id, body, explicit)
        mtu_max = self.default_mtu(seg.network_type)
        if "mtu" in body and body["mtu"] is not None:
            net.mtu = s.to_int(body["mtu"], "mtu", 68)
            if net.mtu > mtu_max:
                raise invalid_input(f"Requested MTU is too big, maximum is {mtu_max}")
        else:
            net.mtu = mtu_max
        if net.shared:
            await self.extras.add_rbac(session, project, "network", net.id, "access_as_shared", "*")
        if net.external:
            await self.extras.add_rbac(session, project, "network", net.id, "access_as_external", "*")
        if "tags" in body:
            await self.set_tags(session, "networks", net.id, s.tags_list(body["tags"]))
        await self.l3.set_network_extras(session, net, body, True)
        return net

    def _dns_domain(self, value: Any) -> str:
        s.string(value, "dns_domain", 255)
        if value and not value.endswith("."):
            value += "."
        if value and any(not part or len(part) > 63 for part in value[:-1].split(".")):
            raise invalid_attribute("dns_domain", f"'{value}' is not a valid domain name")
        return value

    def _az_hints(self, value: Any) -> list[str]:
        hints = s.string_list(value, "availability_zone_hints")
        for hint in hints:
            if hint not in AVAILABILITY_ZONES:
                raise not_found("AvailabilityZone", hint)
        return hints

    async def update_network(self, caller: Caller, network_id: str, body: dict[str, Any],
                             if_match: str | None = None) -> dict[str, Any]:
        async with self.write() as session:
            net = await self.get_network_row(session, caller, network_id, for_update=True)
            target = await self.network_target(session, caller, net)
            caller.enforce("update_network", target)
            current = {"shared": net.shared, "router:external": net.external,
                       "port_security_enabled": net.port_security_enabled, "mtu": net.mtu,
                       "dns_domain": net.dns_domain, "is_default": False}
            for attr in ("shared", "router:external", "provider:network_type", "provider:physical_network",
                         "provider:segmentation_id", "is_default", "port_security_enabled", "mtu", "dns_domain",
                         "qos_policy_id"):
                if attr in body and body[attr] != current.get(attr, object()):
                    caller.enforce(f"update_network:{attr}", target)
            check_revision(net, if_match)
            if any(k in body for k in ("provider:network_type", "provider:physical_network",
                                       "provider:segmentation_id")):
                seg = (await self.primary_segments(session, [net.id])).get(net.id)
                now = {"provider:network_type": seg.network_type if seg else None,
                       "provider:physical_network": seg.physical_network if seg else None,
                       "provider:segmentation_id": seg.segmentation_id if seg else None}
                if any(body[k] != now[k] for k in now if k in body):
                    raise invalid_input("Plugin does not support updating provider attributes")
            if body.get("is_default") not in (None, False):
                raise invalid_input("is_default (auto-allocated topology) is not supported")
            if "name" in body:
                net.name = s.string(body["name"], "name")
            if "description" in body:
                net.description = s.string(body["description"], "description")
            if "admin_state_up" in body:
                net.admin_state_up = s.to_bool(body["admin_state_up"], "admin_state_up")
            if "port_security_enabled" in body:
                net.port_security_enabled = s.to_bool(body["port_security_enabled"], "port_security_enabled")
            if "dns_domain" in body:
                net.dns_domain = self._dns_domain(body["dns_domain"])
            if "mtu" in body:
                seg = (await self.primary_segments(session, [net.id])).get(net.id)
                mtu_max = self.default_mtu(seg.network_type if seg else "local")
                mtu = s.to_int(body["mtu"], "mtu", 68)
                if mtu > mtu_max:
                    raise invalid_input(f"Requested MTU is too big, maximum is {mtu_max}")
                net.mtu = mtu
            if "shared" in body:
                shared = s.to_bool(body["shared"], "shared")
                if shared != net.shared:
                    if shared:
                        await self.extras.add_rbac(session, net.project_id, "network", net.id, "access_as_shared", "*")
                    else:
                        await self.extras.remove_wildcard(session, net, "access_as_shared")
                    net.shared = shared
            if "router:external" in body:
                external = s.to_bool(body["router:external"], "router:external")
                if external != net.external:
                    if external:
                        await self.extras.add_rbac(session, net.project_id, "network", net.id,
                                                   "access_as_external", "*")
                    else:
                        await self.extras.remove_wildcard(session, net, "access_as_external")
                    net.external = external
            await self.l3.set_network_extras(session, net, body, False)
            net.touch()
            await session.flush()
            view = (await self.network_views(session, [net])).values()
            out = (await self.render_networks(session, caller, [net]))[0]
            self.after_commit(session, lambda: self._ensure_networks(list(view)))
            if "port_security_enabled" in body or "mtu" in body:
                port_ids = (await session.execute(sa.select(m.Port.id).where(m.Port.network_id == net.id))).scalars()
                self._ensure_ports_later(session, list(port_ids))
        return out

    async def delete_network(self, caller: Caller, network_id: str) -> None:
        async with self.write() as session:
            net = await self.get_network_row(session, caller, network_id, for_update=True)
            caller.enforce("delete_network", await self.network_target(session, caller, net))
            await self.l3.before_network_delete(session, net)
            ports = list((await session.execute(sa.select(m.Port).where(m.Port.network_id == net.id))).scalars())
            if any(not p.device_owner.startswith("network:dhcp") for p in ports):
                raise conflict("NetworkInUse", f"Unable to complete operation on network {net.id}. There are one or "
                                               f"more ports still in use on the network.")
            for p in ports:
                await self.delete_port_internal(session, p.id)
            subnet_ids = list((await session.execute(
                sa.select(m.Subnet.id).where(m.Subnet.network_id == net.id))).scalars())
            for sid in subnet_ids:
                await self.l3.before_subnet_delete(session, await session.get(m.Subnet, sid))
            await self._delete_rows(session, net.id, subnet_ids)
            await session.delete(net)
            await session.flush()

            async def gone() -> None:
                for sid in subnet_ids:
                    await self.driver.delete_subnet(sid)
                await self.driver.delete_network(network_id)

            self.after_commit(session, gone)

    async def _delete_rows(self, session: AsyncSession, network_id: str, subnet_ids: Sequence[str]) -> None:
        t = m.Tag.__table__
        ids = [network_id, *subnet_ids]
        await session.execute(sa.delete(t).where(t.c.resource_id.in_(ids)))
        r = m.RBACPolicy.__table__
        await session.execute(sa.delete(r).where(r.c.object_type == "network", r.c.object_id == network_id))
        await session.execute(sa.delete(m.Subnet.__table__).where(m.Subnet.network_id == network_id))
        await session.execute(sa.delete(m.Segment.__table__).where(m.Segment.network_id == network_id))

    # ------------------------------------------------------------------ subnets

    SUBNET_SORT = {"id": m.Subnet.id, "name": m.Subnet.name, "network_id": m.Subnet.network_id,
                   "ip_version": m.Subnet.ip_version, "cidr": m.Subnet.cidr, "gateway_ip": m.Subnet.gateway_ip,
                   "enable_dhcp": m.Subnet.enable_dhcp, "project_id": m.Subnet.project_id,
                   "tenant_id": m.Subnet.project_id, "created_at": m.Subnet.created_at,
                   "updated_at": m.Subnet.updated_at, "revision_number": m.Subnet.revision_number,
                   "description": m.Subnet.description, "subnetpool_id": m.Subnet.subnetpool_id,
                   "ipv6_ra_mode": m.Subnet.ipv6_ra_mode, "ipv6_address_mode": m.Subnet.ipv6_address_mode}

    def _subnet_filters(self) -> dict[str, FilterFn]:
        x = m.Subnet
        return {"id": _str_filter(x.id), "name": _str_filter(x.name), "description": _str_filter(x.description),
                "network_id": _str_filter(x.network_id), "project_id": _str_filter(x.project_id),
                "tenant_id": _str_filter(x.project_id), "ip_version": _int_filter(x.ip_version, "ip_version"),
                "cidr": _str_filter(x.cidr), "gateway_ip": _str_filter(x.gateway_ip),
                "enable_dhcp": _bool_filter(x.enable_dhcp, "enable_dhcp"),
                "ipv6_ra_mode": _str_filter(x.ipv6_ra_mode), "ipv6_address_mode": _str_filter(x.ipv6_address_mode),
                "subnetpool_id": _str_filter(x.subnetpool_id), "segment_id": _str_filter(x.segment_id),
                "revision_number": _int_filter(x.revision_number, "revision_number"),
                "dns_publish_fixed_ip": _bool_filter(x.dns_publish_fixed_ip, "dns_publish_fixed_ip"),
                "shared": lambda values: sa.true(), "router:external": lambda values: sa.true()}

    async def list_subnets(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                           marker: str | None = None, page_reverse: bool = False) -> Page:
        return await self._list(m.Subnet, self.subnet_visibility(caller), self._subnet_filters(), self.SUBNET_SORT,
                                self.render_subnets, params, limit, marker, page_reverse)

    async def get_subnet_row(self, session: AsyncSession, caller: Caller, subnet_id: Any,
                             for_update: bool = False) -> m.Subnet:
        return await self._row(session, m.Subnet, "Subnet", self.subnet_visibility(caller), subnet_id, for_update)

    async def show_subnet(self, caller: Caller, subnet_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            return (await self.render_subnets(session, [await self.get_subnet_row(session, caller, subnet_id)]))[0]

    async def render_subnets(self, session: AsyncSession, rows: Sequence[m.Subnet],
                             which: Ids | None = None) -> list[dict[str, Any]]:
        tags = await self.tags_of(session, which or [x.id for x in rows])
        return [{
            "id": x.id, "name": x.name, "tenant_id": x.project_id, "project_id": x.project_id,
            "network_id": x.network_id, "ip_version": x.ip_version, "subnetpool_id": x.subnetpool_id,
            "enable_dhcp": x.enable_dhcp, "ipv6_ra_mode": x.ipv6_ra_mode, "ipv6_address_mode": x.ipv6_address_mode,
            "gateway_ip": x.gateway_ip, "cidr": x.cidr,
            "allocation_pools": [{"start": a, "end": b} for a, b in x.allocation_pools],
            "host_routes": [dict(r) for r in x.host_routes], "dns_nameservers": list(x.dns_nameservers),
            "service_types": list(x.service_types), "segment_id": x.segment_id,
            "dns_publish_fixed_ip": x.dns_publish_fixed_ip, "tags": tags.get(x.id, []), **standard(x),
        } for x in rows]

    async def create_subnets(self, caller: Caller, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with self.write() as session:
            rows = [await self._create_subnet(session, caller, body) for body in bodies]
            await session.flush()
            out = await self.render_subnets(session, rows)
            nets = {x.network_id: (await session.get(m.Network, x.network_id)) for x in rows}
            views = [subnet_view(x, nets[x.network_id].mtu) for x in rows]
            await self._auto_address_existing_ports(session, rows)

            async def ensure() -> None:
                for v in views:
                    await self.driver.ensure_subnet(v)

            self.after_commit(session, ensure)
        return out

    async def _create_subnet(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> m.Subnet:
        network_id = s.to_uuid(s.required(body, "network_id"), "network_id")
        net = await self.get_network_row(session, caller, network_id, for_update=True)
        project = s.project_of(body, caller.project_id, caller.is_admin)
        target = {"project_id": project, "tenant_id": project, "network:project_id": net.project_id,
                  "network:tenant_id": net.project_id, **(await self.network_target(session, caller, net)),
                  }
        target["project_id"] = target["tenant_id"] = project
        caller.enforce("create_subnet", target)
        for attr in ("segment_id", "service_types"):
            if body.get(attr) not in (None, []):
                caller.enforce(f"create_subnet:{attr}", target)
        if net.project_id != project and not caller.is_admin:
            raise forbidden(f"Tenant {project} not allowed to create subnet on this network", "HTTPForbidden")
        await self.check_quota(session, project, "subnet")
        version = body.get("ip_version")
        if version is None:
            raise bad_request("Failed to parse request. Required attribute 'ip_version' not specified")
        version = s.to_int(version, "ip_version")
        if version not in (4, 6):
            raise invalid_attribute("ip_version", f"{version} is not in [4, 6]")
        pool = None
        if body.get("subnetpool_id") is not None or body.get("use_default_subnetpool"):
            if body.get("subnetpool_id") is not None and body.get("use_default_subnetpool"):
                raise bad_request("Bad subnet request: subnetpool_id and use_default_subnetpool cannot both be "
                                  "specified.", "BadRequest")
            pool = await self.extras.pool_for_subnet(session, caller, body, version)
        if pool is None and body.get("cidr") is None:
            raise bad_request("Bad subnet request: a cidr must be specified in the absence of a subnet pool.",
                              "BadRequest")
        if "prefixlen" in body and body.get("cidr") is not None:
            raise bad_request("Bad subnet request: Cannot specify both cidr and prefixlen.", "BadRequest")
        cidr = None
        if body.get("cidr") is not None:
            cidr = ipam.parse_cidr(body["cidr"])
            if cidr.version != version:
                raise invalid_input(f"Cidr {cidr} does not match ip_version {version}")
            if (cidr.prefixlen == 0) and version == 4:
                raise invalid_input("0 is not allowed as CIDR prefix length")
            if version == 4 and cidr.prefixlen > 32 or version == 6 and cidr.prefixlen > 128:
                raise invalid_input(f"Invalid CIDR {cidr}")
        if pool is not None:
            cidr = await self.extras.carve(session, pool, cidr, body, project)
        assert cidr is not None
        ra_mode = body.get("ipv6_ra_mode")
        address_mode = body.get("ipv6_address_mode")
        for name, value in (("ipv6_ra_mode", ra_mode), ("ipv6_address_mode", address_mode)):
            if value is not None and value not in IPV6_MODES:
                raise invalid_attribute(name, f"'{value}' is not in {list(IPV6_MODES)}")
        if version == 4 and (ra_mode or address_mode):
            raise invalid_input("ipv6_ra_mode or ipv6_address_mode set when ip_version is 4")
        if ra_mode and address_mode and ra_mode != address_mode:
            raise invalid_input(f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to '{address_mode}' "
                                f"is not valid. If both attributes are set, they must be the same value")
        if (ra_mode in ("slaac", "dhcpv6-stateless") or address_mode in ("slaac", "dhcpv6-stateless")) \
                and cidr.prefixlen != 64:
            raise invalid_input(f"Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address "
                                f"format, which requires the prefix to be /64")
        # overlaps with the network's other subnets
        others = (await session.execute(sa.select(m.Subnet.cidr).where(m.Subnet.network_id == net.id))).scalars()
        if ipam.overlapping(cidr, others):
            raise invalid_input(f"Requested subnet with cidr: {cidr} for network: {net.id} overlaps with another "
                                f"subnet")
        subnet = m.Subnet(id=new_id(), project_id=project, network_id=net.id, ip_version=version, cidr=str(cidr),
                          name=s.string(body.get("name", ""), "name"),
                          description=s.string(body.get("description", ""), "description"),
                          enable_dhcp=s.to_bool(body.get("enable_dhcp", True), "enable_dhcp"),
                          ipv6_ra_mode=ra_mode, ipv6_address_mode=address_mode,
                          subnetpool_id=pool.id if pool is not None else None,
                          service_types=self._service_types(body.get("service_types", [])),
                          dns_publish_fixed_ip=s.to_bool(body.get("dns_publish_fixed_ip", False),
                                                         "dns_publish_fixed_ip"),
                          revision_number=1)
        if body.get("segment_id") is not None:
            subnet.segment_id = await self.extras.segment_of_network(session, body["segment_id"], net.id)
        gateway = self._gateway(cidr, body.get("gateway_ip", ""), "gateway_ip" in body)
        subnet.gateway_ip = str(gateway) if gateway is not None else None
        if body.get("allocation_pools") is not None:
            pools = self._pools(cidr, body["allocation_pools"])
        else:
            pools = ipam.default_pools(cidr, gateway)
        ipam.check_pools(cidr, pools, gateway)
        subnet.allocation_pools = [[str(a), str(b)] for a, b in pools]
        subnet.dns_nameservers = self._nameservers(body.get("dns_nameservers", []))
        subnet.host_routes = self._host_routes(body.get("host_routes", []), version)
        session.add(subnet)
        await session.flush()
        if "tags" in body:
            await self.set_tags(session, "subnets", subnet.id, s.tags_list(body["tags"]))
        net.touch()
        return subnet

    def _service_types(self, value: Any) -> list[str]:
        types = s.string_list(value, "service_types")
        for t in types:
            if not (t.startswith("network:") or t.startswith("compute:") or t.startswith("neutron:")):
                raise invalid_attribute("service_types", f"'{t}' is not a valid device owner")
        return types

    def _gateway(self, cidr: ipam.IPNetwork, value: Any, given: bool) -> ipam.IPAddress | None:
        if not given:
            return ipam.first_host(cidr) if cidr.num_addresses > 1 else None
        if value is None:
            return None
        gateway = ipam.parse_ip(value, "gateway_ip")
        if gateway.version != cidr.version:
            raise invalid_input(f"Invalid input for gateway_ip. Reason: '{value}' is not an IPv{cidr.version} "
                                f"address")
        if cidr.version == 4 and cidr.prefixlen < 31 and gateway in (cidr.network_address, cidr.broadcast_address):
            raise bad_request(f"Bad subnet request: Gateway is not valid on subnet.", "BadRequest")
        if cidr.version == 6 and gateway == cidr.network_address and cidr.prefixlen < 127:
            raise bad_request(f"Bad subnet request: Gateway is not valid on subnet.", "BadRequest")
        return gateway

    def _pools(self, cidr: ipam.IPNetwork, value: Any) -> list[tuple[ipam.IPAddress, ipam.IPAddress]]:
        items = s.dict_list(value, "allocation_pools", ("start", "end"), ("start", "end"))
        out = []
        for item in items:
            start = ipam.parse_ip(item["start"], "allocation_pools")
            end = ipam.parse_ip(item["end"], "allocation_pools")
            out.append((start, end))
        return out

    def _nameservers(self, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise invalid_attribute("dns_nameservers", f"'{value}' is not a list")
        seen = []
        for item in value:
            addr = ipam.parse_ip(item, "dns_nameservers")
            if str(addr) in seen:
                raise invalid_attribute("dns_nameservers", f"Duplicate nameserver '{item}'")
            seen.append(str(addr))
        if len(seen) > self.config.max_dns_nameservers:
            raise bad_request(f"Number of DNS nameservers exceeds the limit {self.config.max_dns_nameservers}",
                              "DNSNameServersExhausted")
        return seen

    def _host_routes(self, value: Any, version: int) -> list[dict[str, str]]:
        items = s.dict_list(value, "host_routes", ("destination", "nexthop"), ("destination", "nexthop"))
        out: list[dict[str, str]] = []
        for item in items:
            dest = ipam.parse_cidr(item["destination"], "host_routes", strict=False)
            hop = ipam.parse_ip(item["nexthop"], "host_routes")
            if dest.version != version or hop.version != version:
                raise bad_request(f"Invalid route: {item}. The route's IP version does not match the subnet's",
                                  "InvalidInput")
            route = {"destination": str(dest), "nexthop": str(hop)}
            if route in out:
                raise invalid_attribute("host_routes", f"Duplicate hostroute '{item}'")
            out.append(route)
        if len(out) > self.config.max_subnet_host_routes:
            raise bad_request(f"Unable to complete operation for {out}. The number of host routes exceeds the "
                              f"limit {self.config.max_subnet_host_routes}.", "HostRoutesExhausted")
        return out

    async def _auto_address_existing_ports(self, session: AsyncSession, subnets: Sequence[m.Subnet]) -> None:
        """A new SLAAC/stateless subnet gives its address to every port of the network (not router ports)."""
        changed = []
        for subnet in subnets:
            if not ipam.is_auto_address(subnet):
                continue
            ports = (await session.execute(sa.select(m.Port).where(m.Port.network_id == subnet.network_id))).scalars()
            for port in ports:
                if port.device_owner in ROUTER_OWNERS:
                    continue
                addr = ipam.eui64(ipaddress.ip_network(subnet.cidr), port.mac_address)
                await ipam.allocate_specific(session, subnet, addr, port.id)
                port.touch()
                changed.append(port.id)
        self._ensure_ports_later(session, changed)

    async def update_subnet(self, caller: Caller, subnet_id: str, body: dict[str, Any],
                            if_match: str | None = None) -> dict[str, Any]:
        async with self.write() as session:
            subnet = await self.get_subnet_row(session, caller, subnet_id, for_update=True)
            net = await session.get(m.Network, subnet.network_id)
            assert net is not None
            target = {**(await self.network_target(session, caller, net)), "project_id": subnet.project_id,
                      "tenant_id": subnet.project_id, "network:project_id": net.project_id,
                      "network:tenant_id": net.project_id}
            caller.enforce("update_subnet", target)
            for attr in ("segment_id", "service_types"):
                if attr in body and body[attr] != getattr(subnet, attr):
                    caller.enforce(f"update_subnet:{attr}", target)
            check_revision(subnet, if_match)
            cidr = ipaddress.ip_network(subnet.cidr)
            if "name" in body:
                subnet.name = s.string(body["name"], "name")
            if "description" in body:
                subnet.description = s.string(body["description"], "description")
            if "enable_dhcp" in body:
                subnet.enable_dhcp = s.to_bool(body["enable_dhcp"], "enable_dhcp")
            if "dns_publish_fixed_ip" in body:
                subnet.dns_publish_fixed_ip = s.to_bool(body["dns_publish_fixed_ip"], "dns_publish_fixed_ip")
            if "service_types" in body:
                subnet.service_types = self._service_types(body["service_types"])
            if "segment_id" in body:
                subnet.segment_id = (await self.extras.segment_of_network(session, body["segment_id"], net.id)
                                     if body["segment_id"] is not None else None)
            gateway = ipaddress.ip_address(subnet.gateway_ip) if subnet.gateway_ip else None
            if "gateway_ip" in body:
                gateway = self._gateway(cidr, body["gateway_ip"], True)
                if gateway is not None and str(gateway) != subnet.gateway_ip:
                    holder = (await session.execute(sa.select(m.IPAllocation.port_id).where(
                        m.IPAllocation.subnet_id == subnet.id, m.IPAllocation.ip_key == ipam.key(gateway)))).scalar()
                    if holder is not None:
                        owner = (await session.execute(sa.select(m.Port.device_owner).where(m.Port.id == holder))).scalar()
                        if owner not in ROUTER_OWNERS:
                            raise conflict("GatewayIpInUse", f"Gateway ip {gateway} conflicts with allocation pool"
                                                             f" or is in use by port {holder}.")
                subnet.gateway_ip = str(gateway) if gateway is not None else None
            if "allocation_pools" in body:
                pools = self._pools(cidr, body["allocation_pools"]) if body["allocation_pools"] is not None \
                    else ipam.default_pools(cidr, gateway)
            else:
                pools = [(ipaddress.ip_address(a), ipaddress.ip_address(b)) for a, b in subnet.allocation_pools]
            if "allocation_pools" in body or "gateway_ip" in body:
                ipam.check_pools(cidr, pools, gateway)
                subnet.allocation_pools = [[str(a), str(b)] for a, b in pools]
            if "dns_nameservers" in body:
                subnet.dns_nameservers = self._nameservers(body["dns_nameservers"] or [])
            if "host_routes" in body:
                subnet.host_routes = self._host_routes(body["host_routes"] or [], subnet.ip_version)
            subnet.touch()
            await session.flush()
            out = (await self.render_subnets(session, [subnet]))[0]
            view = subnet_view(subnet, net.mtu)
            self.after_commit(session, lambda: self.driver.ensure_subnet(view))
        return out

    async def delete_subnet(self, caller: Caller, subnet_id: str) -> None:
        async with self.write() as session:
            subnet = await self.get_subnet_row(session, caller, subnet_id, for_update=True)
            net = await session.get(m.Network, subnet.network_id)
            assert net is not None
            target = {**(await self.network_target(session, caller, net)), "project_id": subnet.project_id,
                      "tenant_id": subnet.project_id, "network:project_id": net.project_id,
                      "network:tenant_id": net.project_id}
            caller.enforce("delete_subnet", target)
            await self.l3.before_subnet_delete(session, subnet)
            a = m.IPAllocation
            holders = list((await session.execute(
                sa.select(m.Port.id, m.Port.device_owner).join(a, a.port_id == m.Port.id)
                .where(a.subnet_id == subnet.id))).all())
            auto = ipam.is_auto_address(subnet)
            blocking = [pid for pid, owner in holders
                        if not (auto and owner not in ROUTER_OWNERS) and not owner.startswith("network:dhcp")]
            if blocking:
                raise conflict("SubnetInUse", f"Unable to complete operation on subnet {subnet.id}: One or more ports "
                                              f"have an IP allocation from this subnet.")
            await session.execute(sa.delete(a.__table__).where(a.subnet_id == subnet.id))
            for pid, _ in holders:
                port = await session.get(m.Port, pid)
                if port is not None:
                    port.touch()
            await session.execute(sa.delete(m.Tag.__table__).where(m.Tag.resource_id == subnet.id))
            await session.delete(subnet)
            net.touch()
            await session.flush()
            sid = subnet.id
            self.after_commit(session, lambda: self.driver.delete_subnet(sid))
            self._ensure_ports_later(session, [pid for pid, _ in holders])

    # ------------------------------------------------------------------ ports

    PORT_SORT = {"id": m.Port.id, "name": m.Port.name, "network_id": m.Port.network_id,
                 "mac_address": m.Port.mac_address, "admin_state_up": m.Port.admin_state_up,
                 "status": m.Port.status, "device_id": m.Port.device_id, "device_owner": m.Port.device_owner,
                 "project_id": m.Port.project_id, "tenant_id": m.Port.project_id,
                 "created_at": m.Port.created_at, "updated_at": m.Port.updated_at,
                 "revision_number": m.Port.revision_number, "description": m.Port.description,
                 "binding:host_id": m.Port.host_id}

    def _port_filters(self) -> dict[str, FilterFn]:
        p = m.Port
        a = m.IPAllocation

        def fixed_ips(values: list[str]) -> Any:
            conds = []
            for v in values:
                name, _, value = v.partition("=")
                if name == "ip_address":
                    conds.append(a.ip_address == value)
                elif name == "subnet_id":
                    conds.append(a.subnet_id == value)
                elif name == "ip_address_substr":
                    conds.append(a.ip_address.contains(value, autoescape=True))
                else:
                    raise bad_request(f"Invalid fixed_ips filter {v!r}: use ip_address=, subnet_id= or "
                                      f"ip_address_substr=")
            return p.id.in_(sa.select(a.port_id).where(*conds))

        return {"id": _str_filter(p.id), "name": _str_filter(p.name), "description": _str_filter(p.description),
                "network_id": _str_filter(p.network_id), "project_id": _str_filter(p.project_id),
                "tenant_id": _str_filter(p.project_id), "mac_address": lambda v: p.mac_address.in_(
                    [x.lower() for x in v]),
                "admin_state_up": _bool_filter(p.admin_state_up, "admin_state_up"), "status": _str_filter(p.status),
                "device_id": _str_filter(p.device_id), "device_owner": _str_filter(p.device_owner),
                "binding:host_id": _str_filter(p.host_id), "binding:vnic_type": _str_filter(p.vnic_type),
                "binding:vif_type": _str_filter(p.vif_type),
                "port_security_enabled": _bool_filter(p.port_security_enabled, "port_security_enabled"),
                "dns_name": _str_filter(p.dns_name), "revision_number": _int_filter(p.revision_number,
                                                                                    "revision_number"),
                "fixed_ips": fixed_ips, "ip_allocation": lambda values: sa.true(),
                "security_groups": self.l3_port_filter("security_groups"),
                "qos_policy_id": self.l3_port_filter("qos_policy_id")}

    def l3_port_filter(self, name: str) -> FilterFn:
        def f(values: list[str]) -> Any:
            return self.l3.port_filter(name, values)
        return f

    async def list_ports(self, caller: Caller, params: dict[str, list[str]], limit: int | None = None,
                         marker: str | None = None, page_reverse: bool = False) -> Page:
        return await self._list(m.Port, self.port_visibility(caller), self._port_filters(), self.PORT_SORT,
                                lambda session, rows, ids: self.render_ports(session, caller, rows, which=ids),
                                params, limit, marker, page_reverse, columns=PORT_COLUMNS)

    async def get_port_row(self, session: AsyncSession, caller: Caller, port_id: Any,
                           for_update: bool = False) -> m.Port:
        return await self._row(session, m.Port, "Port", self.port_visibility(caller), port_id, for_update)

    async def show_port(self, caller: Caller, port_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            port = await self.get_port_row(session, caller, port_id)
            return (await self.render_ports(session, caller, [port]))[0]

    async def render_ports(self, session: AsyncSession, caller: Caller, rows: Sequence[Any],
                           for_driver: bool = False, tagged: bool = True, which: Ids | None = None,
                           fresh: bool = False) -> list[dict[str, Any]]:
        """The ports' bodies. ``rows``: ORM ports, or plain rows of ``PORT_COLUMNS`` (a list);
        ``which``: the rows' ``Ids`` (a list's page); ``for_driver`` (inside a write): also their
        views, for after the commit; ``tagged=False``: the ports have no tags (new ones made
        without); ``fresh``: ports this transaction has just made, whose addresses and L3 extras
        were kept as they were made (nothing to read back)."""
        if not rows:
            return []
        which = which or Ids([p.id for p in rows])
        facts = self._fresh_facts(session, rows) if fresh else None
        tags: dict[str, list[str]] = {}
        if facts is None:
            if tagged:
                ips, tags = await self.fixed_ips(session, which, with_tags=True)
            else:
                ips = await self.fixed_ips(session, which)
            facts = ips, await self.l3.port_extras(session, list(rows), which)
        elif tagged:
            tags = await self.tags_of(session, which)
        ips, extras = facts
        if for_driver:
            session.info.setdefault("port_views", {}).update(self.port_views_of_facts(rows, facts))
            self._ensure_ports_later(session, which.ids)
        if isinstance(rows[0], m.Port):  # live ORM state: the body gets copies of its containers
            rows = [(p.id, p.name, p.network_id, p.project_id, p.mac_address, p.admin_state_up, p.status, p.device_id,
                     p.device_owner, [dict(x) for x in p.allowed_address_pairs], [dict(x) for x in p.extra_dhcp_opts],
                     p.port_security_enabled, p.vnic_type, dict(p.profile or {}), p.host_id, p.vif_type,
                     dict(p.vif_details or {}), p.dns_name, p.description, p.created_at, p.updated_at,
                     p.revision_number) for p in rows]
        domain = "." + self.config.dns_domain
        out = []
        append = out.append
        with gc_paused():  # thousands of acyclic dicts: nothing for the cyclic collector to find
            for (pid, name, network_id, project, mac, up, status, device_id, owner, pairs, opts, port_security, vnic,
                 profile, host, vif_type, vif_details, dns_name, description, created, updated, revision) in rows:
                fixed = []
                assignment = []
                for sub, ip in ips.get(pid, ()):
                    fixed.append({"subnet_id": sub, "ip_address": ip})
                    hostname = dns_name or "host-" + ip.replace(".", "-").replace(":", "-")
                    assignment.append({"ip_address": ip, "hostname": hostname, "fqdn": hostname + domain})
                item = {
                    "id": pid, "name": name, "network_id": network_id, "tenant_id": project, "project_id": project,
                    "mac_address": mac, "admin_state_up": up, "status": status, "device_id": device_id,
                    "device_owner": owner, "fixed_ips": fixed, "allowed_address_pairs": parsed(pairs),
                    "extra_dhcp_opts": parsed(opts), "port_security_enabled": port_security, "binding:vnic_type": vnic,
                    "binding:profile": parsed(profile) or {}, "binding:host_id": host, "binding:vif_type": vif_type,
                    "binding:vif_details": parsed(vif_details) or {},
                    "dns_name": dns_name, "dns_assignment": assignment, "ip_allocation": "immediate",
                    "propagate_uplink_status": False, "resource_request": None, "tags": tags.get(pid) or [],
                    "description": description or "", "created_at": stamp(created), "updated_at": stamp(updated),
                    "revision_number": revision,
                }
                x = extras.get(pid)
                if x is None:
                    item["security_groups"] = []
                    item["qos_policy_id"] = item["qos_network_policy_id"] = None
                else:
                    item.update(x.fields())
                append(item)
        return out

    def _fresh_facts(self, session: AsyncSession, rows: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The addresses and L3 extras ``create_port_internal`` kept for the ports it just made
        (None if it did not keep them for all of ``rows``)."""
        ips = session.info.get("new_port_ips", {})
        extras = session.info.get("new_port_extras", {})
        if not all(p.id in ips and p.id in extras for p in rows):
            return None
        return {p.id: ips[p.id] for p in rows}, {p.id: extras[p.id] for p in rows}

    def port_target(self, port: m.Port | None, net: m.Network, shared: bool, project: str,
                    device_owner: str = "") -> dict[str, Any]:
        return {"project_id": project, "tenant_id": project, "network:project_id": net.project_id,
                "network:tenant_id": net.project_id, "shared": shared, "router:external": net.external,
                "network_device": (device_owner or (port.device_owner if port else "")).startswith("network:"),
                "device_owner": device_owner or (port.device_owner if port else "")}

    async def create_ports(self, caller: Caller, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with self.write() as session:
            rows = [await self._create_port(session, caller, body) for body in bodies]
            await session.flush()
            out = await self.render_ports(session, caller, rows, for_driver=True,
                                          tagged=any("tags" in b for b in bodies), fresh=True)
        return out

    async def _create_port(self, session: AsyncSession, caller: Caller, body: dict[str, Any]) -> m.Port:
        network_id = s.to_uuid(s.required(body, "network_id"), "network_id")
        net, subnets = await self._network_and_subnets(session, caller, network_id)
        project = s.project_of(body, caller.project_id, caller.is_admin)
        shared = (await self.network_target(session, caller, net))["shared"]
        owner = body.get("device_owner", "")
        s.string(owner, "device_owner")
        target = self.port_target(None, net, shared, project, owner)
        caller.enforce("create_port", target)
        checks = {"device_owner": owner != "", "mac_address": "mac_address" in body,
                  "fixed_ips": "fixed_ips" in body, "port_security_enabled": "port_security_enabled" in body,
                  "binding:host_id": bool(body.get("binding:host_id")),
                  "binding:profile": bool(body.get("binding:profile")),
                  "binding:vnic_type": body.get("binding:vnic_type", "normal") != "normal",
                  "allowed_address_pairs": bool(body.get("allowed_address_pairs"))}
        for attr, present in checks.items():
            if present:
                caller.enforce(f"create_port:{attr}", target)
        if isinstance(body.get("fixed_ips"), list):
            for fip in body["fixed_ips"]:
                if isinstance(fip, dict) and "ip_address" in fip:
                    caller.enforce("create_port:fixed_ips:ip_address", target)
                if isinstance(fip, dict) and "subnet_id" in fip:
                    caller.enforce("create_port:fixed_ips:subnet_id", target)
        if not caller.is_admin and net.project_id != project and not shared:
            raise forbidden(f"Tenant {project} not allowed to create port on this network")
        await self.check_quota(session, project, "port")
        return await self.create_port_internal(
            session, project_id=project, network_id=net.id, fixed_ips=body.get("fixed_ips"),
            device_owner=owner, device_id=body.get("device_id", ""), name=body.get("name", ""),
            admin_state_up=body.get("admin_state_up", True), body=body, network=net, subnets=subnets)

    async def create_port_internal(self, session: AsyncSession, *, project_id: str, network_id: str,
                                   fixed_ips: list[dict[str, Any]] | None = None, device_owner: str = "",
                                   device_id: str = "", name: str = "", admin_state_up: Any = True,
                                   body: dict[str, Any] | None = None, network: m.Network | None = None,
                                   mac_address: str | None = None, subnets: list[m.Subnet] | None = None) -> m.Port:
        """A port with its MAC and addresses (IPAM), no policy checks; its driver call is queued
        for after the commit. L3 makes router, gateway and floating IP ports with this."""
        body = dict(body or {})
        net = network or await session.get(m.Network, network_id)
        if net is None:
            raise not_found("Network", network_id)
        port = m.Port(id=new_id(), project_id=project_id, network_id=net.id, name=s.string(name, "name"),
                      description=s.string(body.get("description", ""), "description"),
                      admin_state_up=s.to_bool(admin_state_up, "admin_state_up"), status=s.STATUS_DOWN,
                      device_id=s.string(device_id, "device_id"), device_owner=s.string(device_owner, "device_owner"),
                      revision_number=1, profile={}, vif_details={}, vnic_type="normal")
        port.port_security_enabled = s.to_bool(body.get("port_security_enabled", net.port_security_enabled),
                                               "port_security_enabled")
        self._apply_port_attrs(port, body, creating=True)
        self._bind(port)
        mac = body.get("mac_address", mac_address)
        await self._insert_port(session, port, mac)
        if port.allowed_address_pairs:  # a pair without a MAC takes the port's
            port.allowed_address_pairs = [{**a, "mac_address": a["mac_address"] or port.mac_address}
                                          for a in port.allowed_address_pairs]
        made = await self._assign_ips(session, port, net, fixed_ips, creating=True, subnets=subnets)
        # what the body and the view of the new port show, kept rather than read back
        session.info.setdefault("new_port_ips", {})[port.id] = ordered_ips(made)
        if port.allowed_address_pairs and not port.port_security_enabled:
            raise conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have "
                                                                 "allowed address pairs on a port.")
        if "tags" in body:
            await self.set_tags(session, "ports", port.id, s.tags_list(body["tags"]))
        await self.l3.set_port_extras(session, port, body, True)
        self._ensure_ports_later(session, [port.id])
        return port

    async def _insert_port(self, session: AsyncSession, port: m.Port, mac: Any) -> None:
        """Insert the port with ``mac`` (409 if its network has it) or a new random MAC that no port
        anywhere has, in one statement: an INSERT of the port's row that inserts nothing when the
        MAC is taken. The unique key (network, MAC) decides races: on PostgreSQL the insert runs
        in a savepoint and a generated MAC is drawn again when it lost; SQLite's writers run one
        at a time, so what the statement saw still holds. The port then joins the session as
        the row it inserted."""
        given = mac is not None
        if given:
            port.mac_address = ipam.normalize_mac(mac)
        in_use = conflict("MacAddressInUse", f"Unable to complete operation for network {port.network_id}. "
                                             f"The mac address {port.mac_address} is in use.")
        table = m.Port.__table__
        for column in table.columns:  # the column defaults an ORM insert would have filled in
            if column.default is not None and getattr(port, column.key) is None:
                setattr(port, column.key, column.default.arg if column.default.is_scalar else column.default.arg(None))
        for _ in range(ipam.RETRIES):
            if not given:
                port.mac_address = ipam.random_mac()
            taken = sa.select(m.Port.id).where(m.Port.mac_address == port.mac_address)
            if given:
                taken = taken.where(m.Port.network_id == port.network_id)
            row = sa.select(*(sa.literal(getattr(port, c.key), c.type) for c in table.columns))
            insert = sa.insert(table).from_select([c.key for c in table.columns], row.where(~taken.exists()))
            try:
                if ipam.serialized(session):
                    inserted = (await session.execute(insert)).rowcount == 1
                else:
                    async with session.begin_nested():
                        inserted = (await session.execute(insert)).rowcount == 1
            except IntegrityError:
                inserted = False
            if inserted:
                make_transient_to_detached(port)
                session.add(port)
                return
            if given:
                raise in_use
        raise conflict("MacAddressGenerationFailure",
                       f"Unable to generate unique mac on network {port.network_id}.")

    def _apply_port_attrs(self, port: m.Port, body: dict[str, Any], creating: bool) -> None:
        if "name" in body and not creating:
            port.name = s.string(body["name"], "name")
        if "description" in body and not creating:
            port.description = s.string(body["description"], "description")
        if "admin_state_up" in body and not creating:
            port.admin_state_up = s.to_bool(body["admin_state_up"], "admin_state_up")
        if "device_id" in body and not creating:
            port.device_id = s.string(body["device_id"], "device_id")
        if "device_owner" in body and not creating:
            port.device_owner = s.string(body["device_owner"], "device_owner")
        if "port_security_enabled" in body and not creating:
            port.port_security_enabled = s.to_bool(body["port_security_enabled"], "port_security_enabled")
        if "allowed_address_pairs" in body:
            port.allowed_address_pairs = self._address_pairs(body["allowed_address_pairs"], port)
        if "extra_dhcp_opts" in body:
            port.extra_dhcp_opts = self._dhcp_opts(body["extra_dhcp_opts"], port.extra_dhcp_opts if not creating else [])
        if "binding:host_id" in body:
            port.host_id = s.string(body["binding:host_id"] or "", "binding:host_id")
        if "binding:vnic_type" in body:
            vnic = body["binding:vnic_type"]
            if vnic not in VNIC_TYPES:
                raise invalid_attribute("binding:vnic_type", f"'{vnic}' is not in {list(VNIC_TYPES)}")
            port.vnic_type = vnic
        if "binding:profile" in body:
            profile = body["binding:profile"]
            if profile is None:
                profile = {}
            if not isinstance(profile, dict):
                raise invalid_attribute("binding:profile", f"'{profile}' is not a dictionary")
            port.profile = profile
        if "dns_name" in body:
            port.dns_name = self._dns_name(body["dns_name"])

    def _dns_name(self, value: Any) -> str:
        s.string(value, "dns_name", 255)
        if value and (len(value) > 63 and "." not in value or
                      not all(part and len(part) <= 63 and all(c.isalnum() or c == "-" for c in part)
                              and not part.startswith("-") and not part.endswith("-")
                              for part in value.rstrip(".").split("."))):
            raise invalid_attribute("dns_name", f"'{value}' not a valid PQDN or FQDN")
        return value.lower() if value else ""

    def _address_pairs(self, value: Any, port: m.Port) -> list[dict[str, str]]:
        if value is None:
            return []
        items = s.dict_list(value, "allowed_address_pairs", ("ip_address", "mac_address"), ("ip_address",))
        if len(items) > self.config.max_allowed_address_pair:
            raise bad_request(f"The number of allowed address pair exceeds the maximum "
                              f"{self.config.max_allowed_address_pair}.", "AllowedAddressPairExhausted")
        out: list[dict[str, str]] = []
        for item in items:
            ip = item["ip_address"]
            if not isinstance(ip, str):
                raise invalid_attribute("allowed_address_pairs", f"'{ip}' is not a valid IP address")
            if "/" in ip:
                net = ipam.parse_cidr(ip, "allowed_address_pairs", strict=False)
                ip = str(net) if net.prefixlen != net.max_prefixlen else str(net.network_address)
            else:
                ip = str(ipam.parse_ip(ip, "allowed_address_pairs"))
            mac = ipam.normalize_mac(item["mac_address"]) if item.get("mac_address") else port.mac_address
            pair = {"ip_address": ip, "mac_address": mac}
            if pair in out:
                raise bad_request("Request contains duplicate address pair: mac_address "
                                  f"{mac} ip_address {ip}.", "DuplicateAddressPairInRequest")
            out.append(pair)
        return out

    def _dhcp_opts(self, value: Any, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if value is None:
            return []
        items = s.dict_list(value, "extra_dhcp_opts", ("opt_name", "opt_value", "ip_version"), ("opt_name",))
        merged = {(o["opt_name"], o.get("ip_version", 4)): dict(o) for o in current}
        for item in items:
            name = item["opt_name"]
            s.string(name, "extra_dhcp_opts")
            if not name:
                raise invalid_attribute("extra_dhcp_opts", "opt_name must be set")
            version = item.get("ip_version", 4)
            version = s.to_int(version, "extra_dhcp_opts") if version is not None else 4
            if version not in (4, 6):
                raise invalid_attribute("extra_dhcp_opts", f"{version} is not in [4, 6]")
            opt_value = item.get("opt_value")
            if opt_value is None:  # Neutron: a null value removes the option
                merged.pop((name, version), None)
                continue
            if not isinstance(opt_value, (str, int)) or isinstance(opt_value, bool):
                raise invalid_attribute("extra_dhcp_opts", f"'{opt_value}' is not a valid string")
            merged[(name, version)] = {"opt_name": name, "opt_value": str(opt_value), "ip_version": version}
        return list(merged.values())

    def _bind(self, port: m.Port) -> None:
        """binding:vif_type/vif_details: bound by the driver on a host, "unbound" without one."""
        if not port.host_id:
            port.vif_type, port.vif_details = "unbound", {}
        elif port.vnic_type != "normal":
            port.vif_type, port.vif_details = "binding_failed", {}
        else:
            port.vif_type = getattr(self.driver, "vif_type", "ovs")
            port.vif_details = dict(getattr(self.driver, "vif_details", {"port_filter": True,
                                                                          "connectivity": "l2"}))

    async def _assign_ips(self, session: AsyncSession, port: m.Port, net: m.Network, requested: Any,
                          creating: bool, subnets: list[m.Subnet] | None = None) -> list[tuple[str, str]]:
        """Give the port the addresses asked for (or Neutron's default: one IPv4 and one stateful IPv6
        address, and one address on every SLAAC subnet), replacing what it had on update. Returns
        the (subnet id, address) pairs it allocated. ``subnets``: the network's, if read already."""
        if subnets is None:
            subnets = list((await session.execute(sa.select(m.Subnet).where(m.Subnet.network_id == net.id)
                                                  .order_by(m.Subnet.created_at, m.Subnet.id))).scalars())
        by_id = {x.id: x for x in subnets}
        a = m.IPAllocation.__table__
        router = port.device_owner in ROUTER_OWNERS
        made: list[tuple[str, str]] = []
        if requested is None:
            if not creating:
                return made
            chosen_v4 = chosen_v6 = False
            for subnet in subnets:
                if subnet.service_types and port.device_owner not in subnet.service_types:
                    continue
                if ipam.is_auto_address(subnet):
                    if not router:
                        made.append((subnet.id, await ipam.allocate_specific(
                            session, subnet, ipam.eui64(ipaddress.ip_network(subnet.cidr), port.mac_address), port.id)))
                    continue
                if (subnet.ip_version == 4 and chosen_v4) or (subnet.ip_version == 6 and chosen_v6):
                    continue
                got = await ipam.allocate_any(session, subnet, port.id)
                if got is not None:
                    made.append((subnet.id, got))
                    if subnet.ip_version == 4:
                        chosen_v4 = True
                    else:
                        chosen_v6 = True
            if subnets and not (chosen_v4 or chosen_v6) and not any(ipam.is_auto_address(x) for x in subnets):
                raise conflict("IpAddressGenerationFailure", f"No more IP addresses available on network {net.id}.")
            return made
        items = s.dict_list(requested, "fixed_ips", ("subnet_id", "ip_address"))
        if len(items) > self.config.max_fixed_ips_per_port:
            raise bad_request("Exceeded maximum amount of fixed ips per port.", "InvalidInput")
        wanted: list[tuple[m.Subnet, ipam.IPAddress | None]] = []
        for item in items:
            subnet = None
            addr = None
            if item.get("subnet_id") is not None:
                sid = item["subnet_id"]
                if not s.is_uuid(sid) or s.to_uuid(sid, "subnet_id") not in by_id:
                    if s.is_uuid(sid) and await session.get(m.Subnet, s.to_uuid(sid, "subnet_id")) is not None:
                        raise bad_request(f"Invalid input for operation: Failed to create port on network "
                                          f"{net.id}, because fixed_ips included invalid subnet {sid}.",
                                          "InvalidInput")
                    raise not_found("Subnet", str(sid))
                subnet = by_id[s.to_uuid(sid, "subnet_id")]
            if item.get("ip_address") is not None:
                addr = ipam.parse_ip(item["ip_address"], "fixed_ips")
                if subnet is None:
                    subnet = next((x for x in subnets if addr in ipaddress.ip_network(x.cidr)), None)
                    if subnet is None:
                        raise bad_request(f"IP address {addr} is not a valid IP for any of the subnets on the "
                                          f"specified network.", "InvalidIpForNetwork")
                ipam.check_fixed_ip(subnet, addr)
                if ipam.is_auto_address(subnet) and not router and addr != ipam.eui64(
                        ipaddress.ip_network(subnet.cidr), port.mac_address):
                    raise bad_request(f"IPv6 address {addr} cannot be directly assigned to a port on subnet "
                                      f"{subnet.id} as the subnet is configured for automatic addresses",
                                      "InvalidInput")
                if subnet.gateway_ip == str(addr) and not router and port.device_owner != "network:dhcp":
                    raise conflict("IpAddressInUse", f"Unable to complete operation for network {net.id}. The IP "
                                                     f"address {addr} is in use.")
            if subnet is None:
                raise bad_request("Invalid input for fixed_ips. Reason: subnet_id or ip_address must be given.",
                                  "HTTPBadRequest")
            wanted.append((subnet, addr))
        if len({(x.id, str(ad)) for x, ad in wanted if ad is not None}) != len([1 for _, ad in wanted if ad is not None]):
            raise bad_request("Invalid input for operation: Duplicate IP address in fixed_ips.", "InvalidInput")
        # what the port keeps, what goes, what comes (a new port holds nothing yet)
        held = set() if creating else {(sid, ip) for sid, ip in (await session.execute(
            sa.select(a.c.subnet_id, a.c.ip_address).where(a.c.port_id == port.id))).all()}
        keep = set()
        new: list[tuple[m.Subnet, ipam.IPAddress | None]] = []
        for subnet, addr in wanted:
            if addr is not None and (subnet.id, str(addr)) in held:
                keep.add((subnet.id, str(addr)))
            else:  # a subnet without an address asks for a new one (Neutron's rule), the old one goes
                new.append((subnet, addr))
        # SLAAC addresses stay unless the request names that subnet otherwise
        for sid, ip in held:
            if sid in by_id and ipam.is_auto_address(by_id[sid]):
                keep.add((sid, ip))
        for sid, ip in held - keep:
            await session.execute(sa.delete(a).where(a.c.port_id == port.id, a.c.subnet_id == sid,
                                                     a.c.ip_address == ip))
        for subnet, addr in new:
            if addr is None and ipam.is_auto_address(subnet):
                addr = ipam.eui64(ipaddress.ip_network(subnet.cidr), port.mac_address)
                if (subnet.id, str(addr)) in keep:
                    continue
            got = await (ipam.allocate_specific(session, subnet, addr, port.id) if addr is not None
                         else ipam.allocate_any(session, subnet, port.id))
            if got is None:
                raise conflict("IpAddressGenerationFailure", f"No more IP addresses available on network {net.id}.")
            made.append((subnet.id, got))
        return made

    async def update_port(self, caller: Caller, port_id: str, body: dict[str, Any],
                          if_match: str | None = None) -> dict[str, Any]:
        async with self.write() as session:
            port = await self.get_port_row(session, caller, port_id, for_update=True)
            net = await session.get(m.Network, port.network_id)
            assert net is not None
            shared = (await self.network_target(session, caller, net))["shared"]
            target = self.port_target(port, net, shared, port.project_id,
                                      body.get("device_owner", port.device_owner) if isinstance(
                                          body.get("device_owner", ""), str) else "")
            caller.enforce("update_port", target)
            current = {"device_owner": port.device_owner, "mac_address": port.mac_address,
                       "port_security_enabled": port.port_security_enabled, "binding:host_id": port.host_id,
                       "binding:profile": port.profile, "binding:vnic_type": port.vnic_type,
                       "allowed_address_pairs": port.allowed_address_pairs}
            for attr in ("device_owner", "mac_address", "fixed_ips", "port_security_enabled", "binding:host_id",
                         "binding:profile", "binding:vnic_type", "allowed_address_pairs"):
                if attr in body and (attr == "fixed_ips" or body[attr] != current.get(attr)):
                    caller.enforce(f"update_port:{attr}", target)
            check_revision(port, if_match)
            if "mac_address" in body and body["mac_address"] != port.mac_address:
                if port.vif_type not in ("unbound", "binding_failed"):
                    raise conflict("PortBound", f"Unable to complete operation on port {port.id}, port is already "
                                                f"bound, port type: {port.vif_type}, old_mac {port.mac_address}, "
                                                f"new_mac {body['mac_address']}.")
                mac = ipam.normalize_mac(body["mac_address"])
                clash = (await session.execute(sa.select(m.Port.id).where(
                    m.Port.network_id == port.network_id, m.Port.mac_address == mac, m.Port.id != port.id))).first()
                if clash is not None:
                    raise conflict("MacAddressInUse", f"Unable to complete operation for network {port.network_id}. "
                                                      f"The mac address {mac} is in use.")
                port.mac_address = mac
            self._apply_port_attrs(port, body, creating=False)
            if "fixed_ips" in body:
                await self._assign_ips(session, port, net, body["fixed_ips"] or [], creating=False)
            if port.allowed_address_pairs and not port.port_security_enabled:
                raise conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to "
                                                                     "have allowed address pairs on a port.")
            if any(k in body for k in ("binding:host_id", "binding:vnic_type")):
                was = port.host_id
                self._bind(port)
                if not port.host_id and was:
                    port.status = s.STATUS_DOWN
            await self.l3.set_port_extras(session, port, body, False)
            port.touch()
            await session.flush()
            out = (await self.render_ports(session, caller, [port], for_driver=True))[0]
        return out

    async def delete_port(self, caller: Caller, port_id: str) -> None:
        async with self.write() as session:
            port = await self.get_port_row(session, caller, port_id, for_update=True)
            net = await session.get(m.Network, port.network_id)
            assert net is not None
            shared = (await self.network_target(session, caller, net))["shared"]
            caller.enforce("delete_port", self.port_target(port, net, shared, port.project_id))
            await self.l3.before_port_delete(session, port, False)
            await self._drop_port(session, port)

    async def delete_port_internal(self, session: AsyncSession, port_id: str) -> None:
        """Delete a port as its owner (a router, a floating IP...): no policy; the L3 hook still runs."""
        port = await session.get(m.Port, port_id)
        if port is None:
            return
        await self.l3.before_port_delete(session, port, True)
        await self._drop_port(session, port)

    async def _drop_port(self, session: AsyncSession, port: m.Port) -> None:
        a = m.IPAllocation.__table__
        await session.execute(sa.delete(a).where(a.c.port_id == port.id))
        await session.execute(sa.delete(m.Tag.__table__).where(m.Tag.resource_id == port.id))
        await session.delete(port)
        await session.flush()
        pid = port.id
        self.after_commit(session, lambda: self.driver.delete_port(pid))


def ordered_ips(ips: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(subnet id, address) pairs in the order a port's fixed_ips are shown: IPv4 first, by address."""
    return [(sub, ip) for _, _, sub, ip in sorted((":" in ip, ipam.key(ipaddress.ip_address(ip)), sub, ip)
                                                  for sub, ip in ips)]


def subnet_view(x: m.Subnet, mtu: int) -> SubnetView:
    return SubnetView(id=x.id, network_id=x.network_id, ip_version=x.ip_version, cidr=x.cidr, gateway_ip=x.gateway_ip,
                      enable_dhcp=x.enable_dhcp, dns_nameservers=tuple(x.dns_nameservers),
                      host_routes=tuple(HostRoute(r["destination"], r["nexthop"]) for r in x.host_routes),
                      ipv6_ra_mode=x.ipv6_ra_mode, ipv6_address_mode=x.ipv6_address_mode, mtu=mtu)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


__all__ = ["Caller", "NetworkService", "NeutronError", "Page", "check_revision", "subnet_view"]
