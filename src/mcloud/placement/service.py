"""The placement service's logic: resource providers, inventories, classes, traits, aggregates,
consumers, allocations, usages, allocation candidates and the reshaper.

Every write is one transaction. Writes that change what a provider offers or holds bump that
provider's generation with a compare-and-swap (``UPDATE ... WHERE generation = <read>``): on
SQLite the write transaction already holds the database lock (``BEGIN IMMEDIATE``), on
PostgreSQL a concurrent writer of the same provider blocks on the row and then finds the
generation moved, so its transaction is rolled back and retried from a fresh read. Two claims
for the last unit therefore never both win.

Reads for allocation candidates come from :class:`Index`, an in-process picture of every
provider (tree, traits, aggregates, inventories, usage). It is checked against two generation
counters on every request: ``placement`` (anything but usage changed: rebuilt) and
``placement_usage`` (allocations changed: only the inventory rows written since are re-read,
by their ``usage_version``). So the index is exact for the request that reads it, in any
process sharing the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import os_resource_classes
import os_traits
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core import generations
from mcloud.core.db import Database
from mcloud.core.errors import APIError, BadRequest, Conflict, NotFound
from mcloud.placement import models as m
from mcloud.placement.config import PlacementConfig

TOPOLOGY = "placement"
USAGE = "placement_usage"
SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"
MAX_INT = 2147483647
MAX_CAPACITY = 2.0 ** 63

# error codes (placement/errors.py)
CONCURRENT_UPDATE = "placement.concurrent_update"
DUPLICATE_NAME = "placement.duplicate_name"
INVENTORY_INUSE = "placement.inventory.inuse"
PROVIDER_IN_USE = "placement.resource_provider.inuse"
PROVIDER_CANNOT_DELETE_PARENT = "placement.resource_provider.cannot_delete_parent"
RESOURCE_PROVIDER_NOT_FOUND = "placement.resource_provider.not_found"

INVENTORY_DEFAULTS = {"reserved": 0, "min_unit": 1, "max_unit": MAX_INT, "step_size": 1, "allocation_ratio": 1.0}

_P = m.ResourceProvider.__table__
_INV = m.Inventory.__table__
_RC = m.ResourceClass.__table__
_TR = m.Trait.__table__
_AGG = m.Aggregate.__table__
_PAGG = m.ProviderAggregate.__table__
_PTR = m.ProviderTrait.__table__
_CON = m.Consumer.__table__
_CT = m.ConsumerType.__table__
_AL = m.Allocation.__table__


def now() -> datetime:
    return datetime.utcnow().replace(microsecond=0)


def conflict(message: str, code: str | None = None) -> Conflict:
    return Conflict(message, code=code) if code else Conflict(message)


class _Retry(Exception):
    """A provider's generation moved under a write: roll back and try again from a fresh read."""


# ------------------------------------------------------------------ views


@dataclasses.dataclass
class Provider:
    id: int
    uuid: str
    name: str
    generation: int
    parent_provider_uuid: str | None
    root_provider_uuid: str
    parent_provider_id: int | None
    root_provider_id: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclasses.dataclass
class Inventory:
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = MAX_INT
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        product = (self.total - self.reserved) * self.allocation_ratio
        return int(max(-MAX_CAPACITY, min(MAX_CAPACITY, product)))  # a huge negative ratio gives -inf

    def fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ConsumerWrite:
    """What one consumer's allocations become (``allocations`` empty: removed)."""

    uuid: str
    allocations: dict[str, dict[str, int]]  # provider uuid -> class -> amount
    project_id: str | None
    user_id: str | None
    generation: Any = None  # the generation the caller believes; checked when check_generation
    check_generation: bool = False
    consumer_type: str | None = None


@dataclasses.dataclass
class RequestGroup:
    suffix: str
    resources: dict[str, int] = dataclasses.field(default_factory=dict)
    required: list[frozenset[str]] = dataclasses.field(default_factory=list)
    forbidden: set[str] = dataclasses.field(default_factory=set)
    member_of: list[set[str]] = dataclasses.field(default_factory=list)
    forbidden_aggs: set[str] = dataclasses.field(default_factory=set)
    in_tree: str | None = None

    @property
    def same_provider(self) -> bool:
        return self.suffix != ""


@dataclasses.dataclass
class CandidateQuery:
    groups: dict[str, RequestGroup]
    limit: int | None = None
    group_policy: str | None = None
    root_required: set[str] = dataclasses.field(default_factory=set)
    root_forbidden: set[str] = dataclasses.field(default_factory=set)
    same_subtrees: list[set[str]] = dataclasses.field(default_factory=list)
    nested_aware: bool = True


@dataclasses.dataclass(slots=True)
class Candidate:
    anchor: int
    resources: dict[tuple[int, str], int]  # (provider id, class) -> amount
    mappings: dict[str, frozenset[int]]
    same_provider: bool = False

    def key(self) -> tuple[Any, ...]:
        return (frozenset(self.resources.items()), frozenset(self.mappings.items()))


# ------------------------------------------------------------------ the candidate index


@dataclasses.dataclass(slots=True)
class _Node:
    id: int
    uuid: str
    parent_id: int | None
    root_id: int
    traits: frozenset[str]
    aggs: frozenset[int]


class Index:
    """Every provider, its tree, traits, aggregates, inventories and usage, in memory."""

    def __init__(self, topology: int):
        self.topology = topology
        self.usage_version = 0
        self.nodes: dict[int, _Node] = {}
        self.by_uuid: dict[str, int] = {}
        self.inv: dict[int, dict[str, Inventory]] = defaultdict(dict)
        self.inv_row: dict[int, tuple[int, str]] = {}
        self.used: dict[tuple[int, str], int] = {}
        self.by_class: dict[str, list[int]] = defaultdict(list)
        self.children: dict[int, list[int]] = defaultdict(list)
        self.tree: dict[int, list[int]] = defaultdict(list)
        self.agg_members: dict[int, set[int]] = defaultdict(set)
        self.agg_ids: dict[str, int] = {}
        self.sharing: set[int] = set()
        self.classes: set[str] = set()
        self.traits: set[str] = set()
        self.has_trees = False


    # --- filters

    def fits(self, rp: int, rc: str, amount: int) -> bool:
        inv = self.inv[rp].get(rc)
        if inv is None:
            return False
        return (self.used.get((rp, rc), 0) + amount <= (inv.total - inv.reserved) * inv.allocation_ratio
                and inv.min_unit <= amount <= inv.max_unit and amount % inv.step_size == 0)

    def with_resource(self, rc: str, amount: int, root: int | None = None) -> list[int]:
        return [rp for rp in self.by_class.get(rc, ()) if self.fits(rp, rc, amount)
                and (root is None or self.nodes[rp].root_id == root)]

    def in_aggregates(self, member_of: list[set[str]]) -> set[int]:
        """Providers in at least one aggregate of every set."""
        result: set[int] | None = None
        for any_of in member_of:
            found: set[int] = set()
            for agg in any_of:
                found |= self.agg_members.get(self.agg_ids.get(agg, -1), set())
            result = found if result is None else result & found
        return result or set()

    def in_any_aggregate(self, aggs: Iterable[str]) -> set[int]:
        return self.in_aggregates([set(aggs)]) if aggs else set()

    def anchors(self, rp: int) -> set[int]:
        """Roots of the trees that share an aggregate with ``rp`` (a sharing provider)."""
        roots = set()
        for agg in self.nodes[rp].aggs:
            roots |= {self.nodes[x].root_id for x in self.agg_members[agg]}
        return roots

    def ancestors(self, rp: int) -> set[int]:
        out = {rp}
        node = self.nodes[rp]
        while node.parent_id is not None:
            out.add(node.parent_id)
            node = self.nodes[node.parent_id]
        return out


# ------------------------------------------------------------------ the service


class PlacementService:
    def __init__(self, db: Database, config: PlacementConfig):
        self.db = db
        self.config = config
        self._index: Index | None = None
        self._index_lock = asyncio.Lock()
        self._standards_synced = False
        self._consumer_types: dict[str, int] = {}

    async def close(self) -> None:
        pass

    # ---------------------------------------------------------------- names

    async def ensure_standards(self) -> None:
        """Standard resource classes (os-resource-classes) and traits (os-traits) exist."""
        if self._standards_synced:
            return
        async with self.db.read() as s:
            have_rc = set((await s.execute(sa.select(_RC.c.name))).scalars())
            have_tr = set((await s.execute(sa.select(_TR.c.name))).scalars())
        missing_rc = [n for n in os_resource_classes.STANDARDS if n not in have_rc]
        missing_tr = [n for n in os_traits.get_traits() if n not in have_tr]
        if missing_rc or missing_tr:
            async with self.db.write() as s:
                for table, names in ((_RC, missing_rc), (_TR, missing_tr)):
                    if names:
                        await s.execute(self._insert_ignore(table, ["name"]),
                                        [{"name": n, "created_at": now()} for n in names])
                await generations.bump(s, TOPOLOGY)
        self._standards_synced = True

    def _insert_ignore(self, table: sa.Table, keys: list[str]) -> Any:
        if self.db.backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)

    async def _class_ids(self, s: AsyncSession, names: Iterable[str]) -> dict[str, int]:
        names = set(names)
        if not names:
            return {}
        rows = await s.execute(sa.select(_RC.c.name, _RC.c.id).where(_RC.c.name.in_(names)))
        return dict(rows.all())

    async def _class_names(self, s: AsyncSession) -> dict[int, str]:
        return {i: n for i, n in (await s.execute(sa.select(_RC.c.id, _RC.c.name))).all()}

    # ---------------------------------------------------------------- resource providers

    def _provider_query(self) -> sa.Select[Any]:
        return _PROVIDER_QUERY

    @staticmethod
    def _build_provider_query() -> sa.Select[Any]:
        """A provider with its parent's and root's UUIDs (built once: statements are immutable)."""
        parent = _P.alias("parent")
        root = _P.alias("root")
        return (sa.select(_P.c.id, _P.c.uuid, _P.c.name, _P.c.generation, parent.c.uuid.label("parent_uuid"),
                          root.c.uuid.label("root_uuid"), _P.c.parent_provider_id, _P.c.root_provider_id,
                          _P.c.created_at, _P.c.updated_at)
                .select_from(_P.outerjoin(parent, _P.c.parent_provider_id == parent.c.id)
                             .outerjoin(root, _P.c.root_provider_id == root.c.id)))

    @staticmethod
    def _provider(row: Any) -> Provider:
        return Provider(row.id, row.uuid, row.name, row.generation, row.parent_uuid, row.root_uuid or row.uuid,
                        row.parent_provider_id, row.root_provider_id or row.id, row.created_at, row.updated_at)

    async def _find_provider(self, s: AsyncSession, uuid: str) -> Provider | None:
        row = (await s.execute(self._provider_query().where(_P.c.uuid == uuid))).first()
        return None if row is None else self._provider(row)

    async def provider(self, s: AsyncSession, uuid: str) -> Provider:
        found = await self._find_provider(s, uuid)
        if found is None:
            raise NotFound(f"No resource provider with uuid {uuid} found")
        return found

    async def get_provider(self, uuid: str) -> Provider:
        async with self.db.read() as s:
            return await self.provider(s, uuid)

    async def list_providers(self, *, name: str | None = None, uuid: str | None = None,
                             in_tree: str | None = None, resources: dict[str, int] | None = None,
                             required: list[frozenset[str]] | None = None, forbidden: set[str] | None = None,
                             member_of: list[set[str]] | None = None,
                             forbidden_aggs: set[str] | None = None) -> list[Provider]:
        idx = None
        if resources or required or forbidden or member_of or forbidden_aggs:
            idx = await self.index()
            self.check_names(idx, resources or {}, set().union(*(required or [set()]), forbidden or set()),
                             where="resources")
        q = self._provider_query().order_by(_P.c.id)
        if name is not None:
            q = q.where(_P.c.name == name)
        if uuid is not None:
            q = q.where(_P.c.uuid == uuid)
        async with self.db.read() as s:
            if in_tree is not None:
                tree = await self._find_provider(s, in_tree)
                if tree is None:
                    return []
                q = q.where(_P.c.root_provider_id == tree.root_provider_id)
            rows = [self._provider(r) for r in (await s.execute(q)).all()]
        if idx is None:
            return rows
        keep: set[int] | None = None
        if member_of:
            keep = idx.in_aggregates(member_of)
        bad = idx.in_any_aggregate(forbidden_aggs or ())

        def wanted(p: Provider) -> bool:
            node = idx.nodes.get(p.id)
            if node is None or (keep is not None and p.id not in keep) or p.id in bad:
                return False
            if any(not (any_of & node.traits) for any_of in required or ()):
                return False
            if (forbidden or set()) & node.traits:
                return False
            return all(idx.fits(p.id, rc, n) for rc, n in (resources or {}).items())

        return [p for p in rows if wanted(p)]

    async def create_provider(self, name: str, uuid: str | None = None,
                              parent_uuid: str | None = None) -> Provider:
        uuid = str(uuidlib.UUID(uuid)) if uuid else str(uuidlib.uuid4())
        try:
            async with self.db.write() as s:
                dup = (await s.execute(sa.select(_P.c.uuid, _P.c.name).where(
                    sa.or_(_P.c.uuid == uuid, _P.c.name == name)))).all()
                if dup:
                    what = [f"uuid: {uuid}" for d in dup if d.uuid == uuid][:1] + \
                           [f"name: {name}" for d in dup if d.name == name][:1]
                    raise conflict(f"Conflicting resource provider {', '.join(what)} already exists.",
                                   DUPLICATE_NAME)
                parent_id = root_id = None
                if parent_uuid is not None:
                    if parent_uuid == uuid:
                        raise BadRequest(
                            f'Unable to create resource provider "{name}", {uuid}: parent provider UUID '
                            "cannot be same as UUID. Please set parent provider UUID to None if there is "
                            "no parent.")
                    parent = await self._find_provider(s, parent_uuid)
                    if parent is None:
                        raise BadRequest(f'Unable to create resource provider "{name}", {uuid}: '
                                         "parent provider UUID does not exist.")
                    parent_id, root_id = parent.id, parent.root_provider_id
                t = now()
                new_id = (await s.execute(sa.insert(_P).values(
                    uuid=uuid, name=name, generation=0, parent_provider_id=parent_id, root_provider_id=root_id,
                    created_at=t, updated_at=t).returning(_P.c.id))).scalar_one()
                if root_id is None:
                    await s.execute(sa.update(_P).where(_P.c.id == new_id).values(root_provider_id=new_id))
                await generations.bump(s, TOPOLOGY)
                return await self.provider(s, uuid)
        except sa.exc.IntegrityError:
            raise conflict(f"Conflicting resource provider {name} already exists.", DUPLICATE_NAME) from None

    async def update_provider(self, uuid: str, changes: dict[str, Any], allow_reparenting: bool) -> Provider:
        try:
            async with self.db.write() as s:
                rp = await self.provider(s, uuid)
                values: dict[str, Any] = {"updated_at": now()}
                if "name" in changes and changes["name"] != rp.name:
                    if (await s.execute(sa.select(_P.c.id).where(_P.c.name == changes["name"]))).first():
                        raise conflict(f"Conflicting resource provider {changes['name']} already exists.",
                                       DUPLICATE_NAME)
                    values["name"] = changes["name"]
                new_root: int | None = None
                if "parent_provider_uuid" in changes:
                    new_root = await self._reparent(s, rp, changes["parent_provider_uuid"], allow_reparenting, values)
                moving = new_root is not None and new_root != rp.root_provider_id
                subtree = await self._subtree(s, rp.id) if moving else set()
                await s.execute(sa.update(_P).where(_P.c.id == rp.id).values(**values))
                if moving:
                    await s.execute(sa.update(_P).where(_P.c.id.in_(subtree)).values(root_provider_id=new_root))
                await generations.bump(s, TOPOLOGY)
                return await self.provider(s, uuid)
        except sa.exc.IntegrityError:
            raise conflict(f"Conflicting resource provider {changes.get('name')} already exists.",
                           DUPLICATE_NAME) from None

    async def _reparent(self, s: AsyncSession, rp: Provider, parent_uuid: str | None, allow: bool,
                        values: dict[str, Any]) -> int | None:
        prefix = f"Unable to save resource provider {rp.uuid}: "
        if parent_uuid is None:
            if rp.parent_provider_id is None:
                return None
            if not allow:
                raise BadRequest(prefix + "un-parenting a provider is not currently allowed.")
            values.update(parent_provider_id=None, root_provider_id=rp.id)
            return rp.id
        parent = await self._find_provider(s, parent_uuid)
        if parent is None:
            raise BadRequest(prefix + "parent provider UUID does not exist.")
        if parent.id == rp.parent_provider_id:
            return None
        if rp.parent_provider_id is not None and not allow:
            raise BadRequest(prefix + "re-parenting a provider is not currently allowed.")
        if parent.id in await self._subtree(s, rp.id):
            raise BadRequest(prefix + "creating loop in the provider tree is not allowed.")
        values.update(parent_provider_id=parent.id, root_provider_id=parent.root_provider_id)
        return parent.root_provider_id

    async def _subtree(self, s: AsyncSession, rp_id: int) -> set[int]:
        rows = (await s.execute(sa.select(_P.c.id, _P.c.parent_provider_id).where(
            _P.c.root_provider_id == sa.select(_P.c.root_provider_id).where(_P.c.id == rp_id).scalar_subquery()
        ))).all()
        children: dict[int, list[int]] = defaultdict(list)
        for i, parent in rows:
            if parent is not None:
                children[parent].append(i)
        out, todo = set(), [rp_id]
        while todo:
            x = todo.pop()
            out.add(x)
            todo.extend(children[x])
        return out

    async def delete_provider(self, uuid: str) -> None:
        async with self.db.write() as s:
            rp = await self._find_provider(s, uuid)
            if rp is None:
                raise NotFound(f"No resource provider with uuid {uuid} found for delete")
            # take the provider's generation first: a claim racing this delete then either
            # committed before (and is seen below) or finds the provider gone
            await self._bump(s, rp, f"Unable to delete resource provider {uuid}: it was changed by another "
                                    "request. Please retry.")
            if (await s.execute(sa.select(_P.c.id).where(_P.c.parent_provider_id == rp.id).limit(1))).first():
                raise conflict(f"Unable to delete parent resource provider {uuid}: It has child resource "
                               "providers.", PROVIDER_CANNOT_DELETE_PARENT)
            if (await s.execute(sa.select(_AL.c.id).where(_AL.c.resource_provider_id == rp.id).limit(1))).first():
                raise conflict(f"Unable to delete resource provider {uuid}: Resource provider has allocations.",
                               PROVIDER_IN_USE)
            for table in (_INV, _PAGG, _PTR):
                await s.execute(sa.delete(table).where(table.c.resource_provider_id == rp.id))
            await s.execute(sa.delete(_P).where(_P.c.id == rp.id))
            await generations.bump(s, TOPOLOGY)

    async def _bump(self, s: AsyncSession, rp: Provider, code_message: str | None = None) -> int:
        """Compare-and-swap the provider's generation; returns the new one.

        ``code_message`` given: a moved generation is the caller's 409 (``placement.concurrent_update``);
        otherwise it is retried (:class:`_Retry`)."""
        done = await s.execute(sa.update(_P).where(_P.c.id == rp.id, _P.c.generation == rp.generation)
                               .values(generation=rp.generation + 1, updated_at=now()))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            if code_message is None:
                raise _Retry()
            raise conflict(code_message, CONCURRENT_UPDATE)
        rp.generation += 1
        return rp.generation

    # ---------------------------------------------------------------- inventories

    async def _inventories(self, s: AsyncSession, rp_id: int) -> dict[str, tuple[Inventory, int]]:
        """class -> (inventory, used)."""
        rows = await s.execute(sa.select(_RC.c.name, _INV.c.total, _INV.c.reserved, _INV.c.min_unit, _INV.c.max_unit,
                                         _INV.c.step_size, _INV.c.allocation_ratio, _INV.c.used)
                               .select_from(_INV.join(_RC, _INV.c.resource_class_id == _RC.c.id))
                               .where(_INV.c.resource_provider_id == rp_id).order_by(_RC.c.name))
        return {r.name: (Inventory(r.total, r.reserved, r.min_unit, r.max_unit, r.step_size, r.allocation_ratio),
                         r.used) for r in rows}

    async def get_inventories(self, uuid: str) -> tuple[Provider, dict[str, Inventory]]:
        async with self.db.read() as s:
            rp = await self.provider(s, uuid)
            return rp, {rc: inv for rc, (inv, _) in (await self._inventories(s, rp.id)).items()}

    @staticmethod
    def check_capacity(rp_uuid: str, invs: dict[str, Inventory], reserved_can_be_total: bool) -> None:
        for rc, inv in invs.items():
            if inv.capacity < 0 or (inv.capacity == 0 and not reserved_can_be_total):
                if reserved_can_be_total:
                    raise BadRequest(f"Unable to update inventory for resource provider {rp_uuid}: Invalid inventory "
                                     f"for '{rc}' on resource provider '{rp_uuid}'. The reserved value is greater "
                                     "than total.")
                raise BadRequest(f"Unable to update inventory for resource provider {rp_uuid}: Invalid inventory "
                                 f"for '{rc}' on resource provider '{rp_uuid}'. The reserved value is greater than "
                                 "or equal to total.")
            if inv.min_unit > inv.max_unit:
                raise BadRequest(f"Unable to update inventory for resource provider {rp_uuid}: Invalid inventory "
                                 f"for '{rc}': min_unit {inv.min_unit} is greater than max_unit {inv.max_unit}.")

    async def _write_inventories(self, s: AsyncSession, rp: Provider, wanted: dict[str, Inventory],
                                 replace: bool, in_use_code: str | None = INVENTORY_INUSE) -> None:
        """Make the provider's inventory ``wanted`` (all of it when ``replace``)."""
        current = await self._inventories(s, rp.id)
        ids = await self._class_ids(s, set(wanted) | set(current))
        unknown = sorted(set(wanted) - set(ids))
        if unknown:
            raise BadRequest(f"Unknown resource class in inventory for resource provider {rp.uuid}: "
                             f"No such resource class {', '.join(unknown)}.")
        gone = set(current) - set(wanted) if replace else set()
        in_use = sorted(rc for rc in gone if current[rc][1] > 0) if in_use_code else []
        if in_use:
            raise conflict(f"update conflict: Inventory for '{', '.join(in_use)}' on resource provider "
                           f"'{rp.uuid}' in use.", in_use_code)
        if gone:
            await s.execute(sa.delete(_INV).where(_INV.c.resource_provider_id == rp.id,
                                                  _INV.c.resource_class_id.in_([ids[rc] for rc in gone])))
        t = now()
        for rc, inv in wanted.items():
            if rc in current:
                await s.execute(sa.update(_INV).where(_INV.c.resource_provider_id == rp.id,
                                                      _INV.c.resource_class_id == ids[rc])
                                .values(**inv.fields(), updated_at=t))
            else:
                await s.execute(sa.insert(_INV).values(resource_provider_id=rp.id, resource_class_id=ids[rc],
                                                       **inv.fields(), used=0, usage_version=0, created_at=t,
                                                       updated_at=t))

    async def set_inventories(self, uuid: str, generation: int, wanted: dict[str, Inventory],
                              reserved_can_be_total: bool) -> tuple[Provider, dict[str, Inventory]]:
        async with self.db.write() as s:
            rp = await self.provider(s, uuid)
            if rp.generation != generation:
                raise conflict("resource provider generation conflict", CONCURRENT_UPDATE)
            self.check_capacity(uuid, wanted, reserved_can_be_total)
            await self._write_inventories(s, rp, wanted, replace=True)
            await self._bump(s, rp, "update conflict: resource provider generation conflict")
            await generations.bump(s, TOPOLOGY)
            return rp, wanted

    async def add_inventory(self, uuid: str, rc: str, inv: Inventory,
                            reserved_can_be_total: bool) -> tuple[Provider, Inventory]:
        async with self.db.write() as s:
            rp = await self.provider(s, uuid)
            self.check_capacity(uuid, {rc: inv}, reserved_can_be_total)
            if not await self._class_ids(s, [rc]):
                raise BadRequest(f"Unable to create inventory for resource provider {uuid}: "
                                 f"No such resource class {rc}.")
            if rc in await self._inventories(s, rp.id):
                raise conflict(f"Update conflict: inventory of class {rc} already exists on resource provider "
                               f"{uuid}.", CONCURRENT_UPDATE)
            await self._write_inventories(s, rp, {rc: inv}, replace=False)
            await self._bump(s, rp, "Update conflict: resource provider generation conflict")
            await generations.bump(s, TOPOLOGY)
            return rp, inv

    async def update_inventory(self, uuid: str, rc: str, generation: int, inv: Inventory,
                               reserved_can_be_total: bool) -> tuple[Provider, Inventory]:
        async with self.db.write() as s:
            rp = await self.provider(s, uuid)
            if rp.generation != generation:
                raise conflict("resource provider generation conflict", CONCURRENT_UPDATE)
            self.check_capacity(uuid, {rc: inv}, reserved_can_be_total)
            if rc not in await self._inventories(s, rp.id):
                raise BadRequest(f"No inventory record with resource class for resource provider {uuid}: "
                                 f"No inventory of class {rc} found.")
            await self._write_inventories(s, rp, {rc: inv}, replace=False)
            await self._bump(s, rp, "update conflict: resource provider generation conflict")
            await generations.bump(s, TOPOLOGY)
            return rp, inv

    async def delete_inventory(self, uuid: str, rc: str | None) -> None:
        """Delete one class of the provider's inventory, or (``rc`` None) all of it."""
        async with self.db.write() as s:
            rp = await self.provider(s, uuid)
            current = await self._inventories(s, rp.id)
            if rc is not None:
                if rc not in current:
                    raise NotFound(f"No inventory of class {rc} found for delete")
                wanted = {k: inv for k, (inv, _) in current.items() if k != rc}
                await self._write_inventories(s, rp, wanted, replace=True, in_use_code=CONCURRENT_UPDATE)
            else:
                await self._write_inventories(s, rp, {}, replace=True)
            await self._bump(s, rp, f"Unable to delete inventory for resource provider {uuid} because the "
                                    "inventory was updated by another process. Please retry your request.")
            await generations.bump(s, TOPOLOGY)

    # ---------------------------------------------------------------- aggregates

    async def get_aggregates(self, uuid: str) -> tuple[Provider, list[str]]:
        async with self.db.read() as s:
            rp = await self.provider(s, uuid)
            return rp, await self._aggregates(s, rp.id)

    async def _aggregates(self, s: AsyncSession, rp_id: int) -> list[str]:
        rows = await s.execute(sa.select(_AGG.c.uuid).select_from(_PAGG.join(_AGG, _PAGG.c.aggregate_id == _AGG.c.id))
                               .where(_PAGG.c.resource_provider_id == rp_id).order_by(_AGG.c.uuid))
        return list(rows.scalars())

    async def set_aggregates(self, uuid: str, aggregates: list[str], generation: int | None) -> Provider:
        """Replace the provider's aggregates; ``generation`` given (>= 1.19): checked and bumped."""
        async with self.db.write() as s:
            rp = await self.provider(s, uuid)
            if generation is not None and rp.generation != generation:
                raise conflict("Resource provider's generation already changed. Please update the generation "
                               "and try again.", CONCURRENT_UPDATE)
            wanted = set(aggregates)
            if wanted:
                await s.execute(self._insert_ignore(_AGG, ["uuid"]), [{"uuid": a} for a in sorted(wanted)])
            ids = dict((await s.execute(sa.select(_AGG.c.uuid, _AGG.c.id).where(_AGG.c.uuid.in_(wanted)))).all())
            current = set(await self._aggregates(s, rp.id))
            await s.execute(sa.delete(_PAGG).where(_PAGG.c.resource_provider_id == rp.id,
                                                   _PAGG.c.aggregate_id.notin_(list(ids.values()))))
            for agg in sorted(wanted - current):
                await s.execute(sa.insert(_PAGG).values(resource_provider_id=rp.id, aggregate_id=ids[agg]))
            if generation is not None:
                await self._bump(s, rp, "Update conflict: resource provider generation conflict")
            await generations.bump(s, TOPOLOGY)
            return rp

    # ---------------------------------------------------------------- traits

    async def list_traits(self, name_in: list[str] | None = None, prefix: str | None = None,
                          associated: bool | None = None) -> list[str]:
        await self.ensure_standards()
        q = sa.select(_TR.c.name).order_by(_TR.c.name)
        if name_in is not None:
            q = q.where(_TR.c.name.in_(name_in))
        if prefix is not None:
            q = q.where(sa.func.substr(_TR.c.name, 1, len(prefix)) == prefix)
        if associated is not None:
            used = sa.select(_PTR.c.trait_id)
            q = q.where(_TR.c.id.in_(used) if associated else _TR.c.id.notin_(used))
        async with self.db.read() as s:
            return list((await s.execute(q)).scalars())

    async def trait_exists(self, name: str) -> bool:
        await self.ensure_standards()
        async with self.db.read() as s:
            return (await s.execute(sa.select(_TR.c.id).where(_TR.c.name == name))).first() is not None

    async def put_trait(self, name: str) -> bool:
        """Create custom trait ``name``; False when it already existed."""
        await self.ensure_standards()
        async with self.db.write() as s:
            done = await s.execute(self._insert_ignore(_TR, ["name"]), [{"name": name, "created_at": now()}])
            created = bool(done.rowcount)  # type: ignore[attr-defined]
            if created:
                await generations.bump(s, TOPOLOGY)
            return created

    async def delete_trait(self, name: str) -> None:
        await self._delete_custom(_TR, name, _PTR.c.trait_id, f"No such trait(s): {name}.",
                                  f"Cannot delete standard trait {name}.",
                                  f"The trait {name} is in use by a resource provider.")

    async def _delete_custom(self, table: sa.Table, name: str, used_by: sa.Column[Any], missing: str,
                             standard: str, in_use: str) -> None:
        """Delete a custom trait or class: 404 unknown, 400 standard, 409 still in use."""
        await self.ensure_standards()
        async with self.db.write() as s:
            row_id = (await s.execute(sa.select(table.c.id).where(table.c.name == name))).scalar()
            if row_id is None:
                raise NotFound(missing)
            if not name.startswith("CUSTOM_"):
                raise BadRequest(standard)
            if (await s.execute(sa.select(used_by).where(used_by == row_id).limit(1))).first():
                raise Conflict(in_use)
            await s.execute(sa.delete(table).where(table.c.id == row_id))
            await generations.bump(s, TOPOLOGY)

    async def _provider_traits(self, s: AsyncSession, rp_id: int) -> list[str]:
        rows = await s.execute(sa.select(_TR.c.name).select_from(_PTR.join(_TR, _PTR.c.trait_id == _TR.c.id))
                               .where(_PTR.c.resource_provider_id == rp_id).order_by(_TR.c.name))
        return list(rows.scalars())

    async def get_provider_traits(self, uuid: str) -> tuple[Provider, list[str]]:
        async with self.db.read() as s:
            rp = await self.provider(s, uuid)
            return rp, await self._provider_traits(s, rp.id)

    async def set_provider_traits(self, uuid: str, traits: list[str], generation: int | None) -> Provider:
        """Replace the provider's traits (``generation`` None: no check, as DELETE does)."""
        await self.ensure_standards()
        async with self.db.write() as s:
            rp = await self.provider(s, uuid)
            if generation is not None and rp.generation != generation:
                raise conflict("Resource provider's generation already changed. Please update the generation "
                               "and try again.", CONCURRENT_UPDATE)
            wanted = set(traits)
            ids = dict((await s.execute(sa.select(_TR.c.name, _TR.c.id).where(_TR.c.name.in_(wanted)))).all())
            missing = sorted(wanted - set(ids))
            if missing:
                raise BadRequest(f"No such trait {', '.join(missing)}")
            current = set(await self._provider_traits(s, rp.id))
            if current == wanted:
                return rp
            await s.execute(sa.delete(_PTR).where(_PTR.c.resource_provider_id == rp.id))
            if wanted:
                await s.execute(sa.insert(_PTR), [{"resource_provider_id": rp.id, "trait_id": ids[t]}
                                                  for t in sorted(wanted)])
            await self._bump(s, rp, "Resource provider's generation already changed. Please update the "
                                    "generation and try again.")
            await generations.bump(s, TOPOLOGY)
            return rp

    # ---------------------------------------------------------------- resource classes

    async def list_classes(self) -> list[str]:
        await self.ensure_standards()
        async with self.db.read() as s:
            return list((await s.execute(sa.select(_RC.c.name).order_by(_RC.c.id))).scalars())

    async def class_exists(self, name: str) -> bool:
        await self.ensure_standards()
        async with self.db.read() as s:
            return bool(await self._class_ids(s, [name]))

    async def create_class(self, name: str, exist_ok: bool = False) -> bool:
        """Create custom class ``name``: False if it existed (409 unless ``exist_ok``)."""
        await self.ensure_standards()
        async with self.db.write() as s:
            done = await s.execute(self._insert_ignore(_RC, ["name"]), [{"name": name, "created_at": now()}])
            if not done.rowcount:  # type: ignore[attr-defined]
                if exist_ok:
                    return False
                raise Conflict(f"Conflicting resource class already exists: {name}")
            await generations.bump(s, TOPOLOGY)
            return True

    async def rename_class(self, name: str, new_name: str) -> None:
        await self.ensure_standards()
        async with self.db.write() as s:
            rid = (await s.execute(sa.select(_RC.c.id).where(_RC.c.name == name))).scalar()
            if rid is None:
                raise NotFound(f"No such resource class {name}.")
            if not name.startswith("CUSTOM_"):
                raise BadRequest(f"Cannot update standard resource class {name}")
            if await self._class_ids(s, [new_name]):
                raise Conflict(f"Resource class already exists: {new_name}")
            await s.execute(sa.update(_RC).where(_RC.c.id == rid).values(name=new_name))
            await generations.bump(s, TOPOLOGY)

    async def delete_class(self, name: str) -> None:
        await self._delete_custom(_RC, name, _INV.c.resource_class_id, f"No such resource class {name}.",
                                  f"Error in delete resource class: Cannot delete standard resource class {name}.",
                                  f"Error in delete resource class: Cannot delete resource class {name}. "
                                  "Class is in use in inventory.")

    # ---------------------------------------------------------------- allocations (reads)

    async def consumer_allocations(self, consumer: str) -> dict[str, Any] | None:
        """{providers: {uuid: {generation, resources}}, project_id, user_id, generation, consumer_type}."""
        async with self.db.read() as s:
            c = (await s.execute(sa.select(_CON, _CT.c.name.label("type_name"))
                                 .select_from(_CON.outerjoin(_CT, _CON.c.consumer_type_id == _CT.c.id))
                                 .where(_CON.c.uuid == consumer))).first()
            if c is None:
                return None
            rows = await s.execute(sa.select(_P.c.uuid, _P.c.generation, _RC.c.name, _AL.c.used)
                                   .select_from(_AL.join(_P, _AL.c.resource_provider_id == _P.c.id)
                                                .join(_RC, _AL.c.resource_class_id == _RC.c.id))
                                   .where(_AL.c.consumer_id == consumer).order_by(_P.c.id, _RC.c.name))
            providers: dict[str, Any] = {}
            for rp_uuid, gen, rc, used in rows:
                providers.setdefault(rp_uuid, {"generation": gen, "resources": {}})["resources"][rc] = used
        return {"providers": providers, "project_id": c.project_id, "user_id": c.user_id,
                "generation": c.generation, "consumer_type": c.type_name or "unknown"}

    async def provider_allocations(self, uuid: str) -> tuple[Provider, dict[str, Any]]:
        async with self.db.read() as s:
            rp = await self.provider(s, uuid)
            rows = await s.execute(sa.select(_AL.c.consumer_id, _CON.c.generation, _RC.c.name, _AL.c.used)
                                   .select_from(_AL.join(_CON, _AL.c.consumer_id == _CON.c.uuid)
                                                .join(_RC, _AL.c.resource_class_id == _RC.c.id))
                                   .where(_AL.c.resource_provider_id == rp.id).order_by(_AL.c.consumer_id))
            out: dict[str, Any] = {}
            for consumer, gen, rc, used in rows:
                out.setdefault(consumer, {"resources": {}, "consumer_generation": gen})["resources"][rc] = used
            return rp, out

    async def provider_usages(self, uuid: str) -> tuple[Provider, dict[str, int]]:
        async with self.db.read() as s:
            rp = await self.provider(s, uuid)
            return rp, {rc: used for rc, (_, used) in (await self._inventories(s, rp.id)).items()}

    async def total_usages(self, project_id: str, user_id: str | None = None,
                           consumer_type: str | None = None, by_type: bool = False) -> dict[str, Any]:
        """{class: used}; ``by_type`` (>= 1.38): {type: {class: used, consumer_count: n}}."""
        join = (_AL.join(_CON, _AL.c.consumer_id == _CON.c.uuid).join(_RC, _AL.c.resource_class_id == _RC.c.id)
                .outerjoin(_CT, _CON.c.consumer_type_id == _CT.c.id))
        where = [_CON.c.project_id == project_id]
        if user_id is not None:
            where.append(_CON.c.user_id == user_id)
        if by_type and consumer_type == "unknown":
            where.append(_CON.c.consumer_type_id.is_(None))
        elif by_type and consumer_type not in (None, "all"):
            where.append(_CT.c.name == consumer_type)
        async with self.db.read() as s:
            if not by_type or consumer_type in ("all", "unknown"):
                rows = await s.execute(sa.select(_RC.c.name, sa.func.sum(_AL.c.used)).select_from(join)
                                       .where(*where).group_by(_RC.c.name))
                totals = {rc: int(n) for rc, n in rows}
                if not by_type:
                    return totals
                count = (await s.execute(sa.select(sa.func.count(sa.distinct(_AL.c.consumer_id)))
                                         .select_from(join).where(*where))).scalar() or 0
                return {consumer_type: {**totals, "consumer_count": int(count)}} if totals else {}
            kind = _CT.c.name
            out: dict[str, dict[str, int]] = {}
            for t, rc, n in await s.execute(sa.select(kind, _RC.c.name, sa.func.sum(_AL.c.used)).select_from(join)
                                            .where(*where).group_by(kind, _RC.c.name)):
                out.setdefault(t or "unknown", {})[rc] = int(n)
            for t, n in await s.execute(sa.select(kind, sa.func.count(sa.distinct(_AL.c.consumer_id)))
                                        .select_from(join).where(*where).group_by(kind)):
                if (t or "unknown") in out:
                    out[t or "unknown"]["consumer_count"] = int(n)
            return out

    # ---------------------------------------------------------------- allocations (writes)

    async def write_allocations(self, consumers: list[ConsumerWrite],
                                inventories: dict[str, tuple[int, dict[str, Inventory]]] | None = None,
                                reserved_can_be_total: bool = True) -> None:
        """Replace the allocations of ``consumers`` in one transaction (with ``inventories``,
        {provider uuid: (generation, {class: inventory})}: the reshaper, which also replaces
        those providers' inventories in the same transaction)."""
        await self.ensure_standards()
        for _attempt in range(max(1, self.config.allocation_conflict_retry_count)):
            try:
                async with self.db.write() as s:
                    await self._write_allocations(s, consumers, inventories, reserved_can_be_total)
                return
            except _Retry:
                continue
            except sa.exc.IntegrityError:
                raise conflict("Inventory and/or allocations changed while attempting to allocate: another "
                               "request wrote the same consumer.", CONCURRENT_UPDATE) from None
            except sa.exc.DBAPIError as exc:  # PostgreSQL deadlock or serialization failure: retry
                if getattr(exc.orig, "sqlstate", None) not in ("40P01", "40001"):
                    raise
        raise conflict("Inventory and/or allocations changed while attempting to allocate: Another thread "
                       "concurrently updated the resource provider data. Please retry your update",
                       CONCURRENT_UPDATE)

    async def _write_allocations(self, s: AsyncSession, consumers: list[ConsumerWrite],
                                 inventories: dict[str, tuple[int, dict[str, Inventory]]] | None,
                                 reserved_can_be_total: bool) -> None:
        uuids = {c.uuid for c in consumers}
        old = (await s.execute(sa.select(_AL.c.consumer_id, _AL.c.resource_provider_id, _AL.c.resource_class_id,
                                         _AL.c.used, _RC.c.name)
                               .select_from(_AL.join(_RC, _AL.c.resource_class_id == _RC.c.id))
                               .where(_AL.c.consumer_id.in_(uuids)))).all()
        wanted_rps = {rp for c in consumers for rp in c.allocations} | set(inventories or {})
        providers: dict[str, Provider] = {}
        for rp_uuid in sorted(wanted_rps):
            found = await self._find_provider(s, rp_uuid)
            if found is None:
                if inventories and rp_uuid in inventories:
                    raise BadRequest(f"Resource provider {rp_uuid} in inventories not found",
                                     code=RESOURCE_PROVIDER_NOT_FOUND)
                raise BadRequest(f"Allocation for resource provider '{rp_uuid}' that does not exist.")
            providers[rp_uuid] = found
        by_id = {p.id: p for p in providers.values()}
        old_ids = {row.resource_provider_id for row in old} - set(by_id)
        if old_ids:
            for row in (await s.execute(self._provider_query().where(_P.c.id.in_(old_ids)))).all():
                by_id[row.id] = self._provider(row)
        classes = await self._class_ids(s, {rc for c in consumers for a in c.allocations.values() for rc in a})
        for c in consumers:
            for a in c.allocations.values():
                for rc in a:
                    if rc not in classes:
                        raise BadRequest(f"Unable to allocate inventory for consumer {c.uuid}: "
                                         f"No such resource class {rc}.")

        # the reshaper: new inventories first (generation-checked)
        if inventories:
            for rp_uuid, (generation, invs) in inventories.items():
                rp = providers[rp_uuid]
                if rp.generation != generation:
                    raise conflict(f"resource provider generation conflict for provider {rp_uuid}: actual: "
                                   f"{rp.generation}, given: {generation}", CONCURRENT_UPDATE)
                self.check_capacity(rp_uuid, invs, reserved_can_be_total)

        # consumers: generation checks, creation
        await self._ensure_consumers(s, consumers)

        # the new state of every touched (provider, class)
        state: dict[int, dict[str, tuple[Inventory, int]]] = {}
        for rp_id in by_id:
            state[rp_id] = await self._inventories(s, rp_id)
        prev_used = {(rp, rc): used for rp, invs in state.items() for rc, (_, used) in invs.items()}
        freed: dict[tuple[int, str], int] = defaultdict(int)
        for row in old:
            freed[(row.resource_provider_id, row.name)] += row.used
        needed: dict[tuple[int, str], int] = defaultdict(int)
        for c in consumers:
            for rp_uuid, resources in c.allocations.items():
                rp = providers[rp_uuid]
                for rc, amount in resources.items():
                    needed[(rp.id, rc)] += amount
        final_inv = {rp_id: {rc: inv for rc, (inv, _) in invs.items()} for rp_id, invs in state.items()}
        if inventories:
            for rp_uuid, (_, invs) in inventories.items():
                final_inv[providers[rp_uuid].id] = dict(invs)
        for c in consumers:
            for rp_uuid, resources in c.allocations.items():
                rp = providers[rp_uuid]
                for rc, amount in resources.items():
                    inv = final_inv[rp.id].get(rc)
                    if inv is None:
                        raise Conflict(f"Unable to allocate inventory: Inventory for '{rc}' on resource provider "
                                       f"'{rp_uuid}' invalid.")
                    if amount < inv.min_unit or amount > inv.max_unit or amount % inv.step_size:
                        raise Conflict(f"Unable to allocate inventory: Unable to create allocation for '{rc}' on "
                                       f"resource provider '{rp_uuid}'. The requested amount would violate "
                                       "inventory constraints.")
        for (rp_id, rc), amount in needed.items():
            inv = final_inv[rp_id][rc]
            before = prev_used.get((rp_id, rc), 0)
            after = before - freed.get((rp_id, rc), 0) + amount
            capacity = (inv.total - inv.reserved) * inv.allocation_ratio
            if after > capacity and after > before:
                raise Conflict(f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource "
                               f"provider '{by_id[rp_id].uuid}'. The requested amount would exceed the capacity.")
        if inventories:
            for rp_uuid, (_, invs) in inventories.items():
                rp = providers[rp_uuid]
                kept = {rc for (rp_id, rc), amount in needed.items() if rp_id == rp.id and amount}
                left = {rc for (rp_id, rc), used in prev_used.items() if rp_id == rp.id
                        and used - freed.get((rp_id, rc), 0) > 0}
                in_use = sorted((kept | left) - set(invs))
                if in_use:
                    raise conflict(f"update conflict: Inventory for '{', '.join(in_use)}' on resource provider "
                                   f"'{rp_uuid}' in use.", INVENTORY_INUSE)

        # generations: every touched provider, in id order (a fixed lock order)
        for rp_id in sorted(by_id):
            await self._bump(s, by_id[rp_id])

        # write: allocations out, inventories (reshaper), allocations in, usage
        t = now()
        if old:
            await s.execute(sa.delete(_AL).where(_AL.c.consumer_id.in_(uuids)))
        if inventories:
            for rp_uuid, (_, invs) in inventories.items():
                # in use was checked above against the allocations as they will be
                await self._write_inventories(s, providers[rp_uuid], invs, replace=True, in_use_code=None)
        rows = [{"resource_provider_id": providers[rp_uuid].id, "consumer_id": c.uuid,
                 "resource_class_id": classes[rc], "used": amount, "created_at": t, "updated_at": t}
                for c in consumers for rp_uuid, resources in c.allocations.items()
                for rc, amount in resources.items()]
        if rows:
            await s.execute(sa.insert(_AL), rows)
        empty = [c.uuid for c in consumers if not c.allocations]
        if empty:
            await s.execute(sa.delete(_CON).where(_CON.c.uuid.in_(empty)))
        version = await self._bump_usage(s)
        touched = {(row.resource_provider_id, row.resource_class_id) for row in old} | \
            {(r["resource_provider_id"], r["resource_class_id"]) for r in rows}
        if inventories:
            for u, (_, invs) in inventories.items():
                touched |= {(providers[u].id, cid) for cid in (await self._class_ids(s, invs)).values()}
            await generations.bump(s, TOPOLOGY)
        await self._refresh_used(s, sorted(touched), version)

    async def _ensure_consumers(self, s: AsyncSession, consumers: list[ConsumerWrite]) -> None:
        existing = {r.uuid: r for r in (await s.execute(sa.select(_CON).where(
            _CON.c.uuid.in_([c.uuid for c in consumers])))).all()}
        t = now()
        for c in sorted(consumers, key=lambda c: c.uuid):
            row = existing.get(c.uuid)
            if c.check_generation:
                have = None if row is None else row.generation
                if have != c.generation:
                    expected = "null" if have is None else have
                    raise conflict(f"consumer generation conflict - expected {expected} but got "
                                   f"{'null' if c.generation is None else c.generation}", CONCURRENT_UPDATE)
            type_id = None
            if c.consumer_type is not None:
                type_id = await self._consumer_type(s, c.consumer_type)
            project = c.project_id or self.config.incomplete_consumer_project_id
            user = c.user_id or (self.config.incomplete_consumer_user_id if not c.project_id else "")
            if row is None:
                if not c.allocations:
                    continue
                await s.execute(sa.insert(_CON).values(uuid=c.uuid, project_id=project, user_id=user,
                                                       consumer_type_id=type_id, generation=1, created_at=t,
                                                       updated_at=t))
                continue
            values: dict[str, Any] = {"generation": row.generation + 1, "updated_at": t}
            if c.project_id:
                values.update(project_id=project, user_id=user)
            if type_id is not None:
                values["consumer_type_id"] = type_id
            done = await s.execute(sa.update(_CON).where(_CON.c.uuid == c.uuid, _CON.c.generation == row.generation)
                                   .values(**values))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise conflict("Inventory and/or allocations changed while attempting to allocate: Another thread "
                               "concurrently updated the data. Please retry your update", CONCURRENT_UPDATE)

    async def _consumer_type(self, s: AsyncSession, name: str) -> int:
        """The id of consumer type ``name``, made on first use (types are never deleted)."""
        found = self._consumer_types.get(name)
        if found is None:
            found = (await s.execute(sa.select(_CT.c.id).where(_CT.c.name == name))).scalar()
            if found is not None:  # committed: safe to remember
                self._consumer_types[name] = found
            else:  # made by this transaction, which may yet roll back: not remembered
                await s.execute(self._insert_ignore(_CT, ["name"]), [{"name": name}])
                found = (await s.execute(sa.select(_CT.c.id).where(_CT.c.name == name))).scalar_one()
        return found

    async def _bump_usage(self, s: AsyncSession) -> int:
        return await generations.bump(s, USAGE)

    async def _refresh_used(self, s: AsyncSession, pairs: list[tuple[int, int]], version: int | None) -> None:
        """Recount ``used`` of the inventory rows of these (provider id, class id) pairs."""
        if version is None:
            version = await self._bump_usage(s)
        for rp_id, rc_id in pairs:
            total = sa.select(sa.func.coalesce(sa.func.sum(_AL.c.used), 0)).where(
                _AL.c.resource_provider_id == rp_id, _AL.c.resource_class_id == rc_id).scalar_subquery()
            await s.execute(sa.update(_INV).where(_INV.c.resource_provider_id == rp_id,
                                                  _INV.c.resource_class_id == rc_id)
                            .values(used=total, usage_version=version))

    async def delete_allocations(self, consumer: str) -> None:
        async with self.db.read() as s:
            found = (await s.execute(sa.select(_AL.c.id).where(_AL.c.consumer_id == consumer).limit(1))).first()
        if found is None:
            raise NotFound(f"No allocations for consumer '{consumer}'")
        await self.write_allocations([ConsumerWrite(consumer, {}, None, None)])

    # ---------------------------------------------------------------- the index

    async def index(self) -> Index:
        await self.ensure_standards()
        async with self._index_lock:
            async with self.db.read() as s:
                gens = dict((await s.execute(sa.select(generations.Generation.name, generations.Generation.value)
                                             .where(generations.Generation.name.in_([TOPOLOGY, USAGE])))).all())
                topology, usage = gens.get(TOPOLOGY, 0), gens.get(USAGE, 0)
                idx = self._index
                if idx is None or idx.topology != topology:
                    idx = await self._build_index(s, topology)
                    idx.usage_version = usage
                    again = (await s.execute(sa.select(generations.Generation.value)
                                             .where(generations.Generation.name == TOPOLOGY))).scalar()
                    if again != topology:  # changed while reading (PostgreSQL): rebuild next time
                        idx.topology = -1
                    self._index = idx
                    # The index is long-lived and large: keep the cyclic collector from walking it
                    # again and again while requests allocate (it halves candidate latency at 10,000
                    # providers). What was frozen before goes back to the collector first, so an
                    # old index and any cycles around it are still collected.
                    gc.unfreeze()
                    gc.collect()
                    gc.freeze()
                elif usage > idx.usage_version:
                    rows = await s.execute(sa.select(_INV.c.id, _INV.c.used, _INV.c.usage_version)
                                           .where(_INV.c.usage_version > idx.usage_version))
                    top = usage
                    for row_id, used, version in rows:
                        key = idx.inv_row.get(row_id)
                        if key is not None:
                            idx.used[key] = used
                        top = max(top, version)
                    idx.usage_version = top
                return idx

    async def _build_index(self, s: AsyncSession, topology: int) -> Index:
        idx = Index(topology)
        traits = dict((await s.execute(sa.select(_TR.c.id, _TR.c.name))).all())
        idx.traits = set(traits.values())
        classes = await self._class_names(s)
        idx.classes = set(classes.values())
        rp_traits: dict[int, set[str]] = defaultdict(set)
        for rp, tid in await s.execute(sa.select(_PTR.c.resource_provider_id, _PTR.c.trait_id)):
            rp_traits[rp].add(traits[tid])
        rp_aggs: dict[int, set[int]] = defaultdict(set)
        idx.agg_ids = {u: i for i, u in (await s.execute(sa.select(_AGG.c.id, _AGG.c.uuid))).all()}
        for rp, agg in await s.execute(sa.select(_PAGG.c.resource_provider_id, _PAGG.c.aggregate_id)):
            rp_aggs[rp].add(agg)
        for rid, uuid, parent, root in await s.execute(sa.select(_P.c.id, _P.c.uuid, _P.c.parent_provider_id,
                                                                 _P.c.root_provider_id).order_by(_P.c.id)):
            node = _Node(rid, uuid, parent, root or rid, frozenset(rp_traits.get(rid, ())),
                         frozenset(rp_aggs.get(rid, ())))
            idx.nodes[rid] = node
            idx.by_uuid[uuid] = rid
        for node in idx.nodes.values():
            idx.tree[node.root_id].append(node.id)
            if node.parent_id is not None:
                idx.children[node.parent_id].append(node.id)
                idx.has_trees = True
            for agg in node.aggs:
                idx.agg_members[agg].add(node.id)
            if SHARING_TRAIT in node.traits:
                idx.sharing.add(node.id)
        rows = await s.execute(sa.select(_INV.c.id, _INV.c.resource_provider_id, _INV.c.resource_class_id,
                                         _INV.c.total, _INV.c.reserved, _INV.c.min_unit, _INV.c.max_unit,
                                         _INV.c.step_size, _INV.c.allocation_ratio, _INV.c.used)
                               .order_by(_INV.c.resource_provider_id))
        for row_id, rp, rc_id, total, reserved, lo, hi, step, ratio, used in rows:
            if rp not in idx.nodes:
                continue
            rc = classes[rc_id]
            idx.inv[rp][rc] = Inventory(total, reserved, lo, hi, step, ratio)
            idx.inv_row[row_id] = (rp, rc)
            idx.used[(rp, rc)] = used
            idx.by_class[rc].append(rp)
        return idx

    @staticmethod
    def check_names(idx: Index, classes: Iterable[str], traits: Iterable[str], where: str = "resources") -> None:
        bad = sorted(set(classes) - idx.classes)
        if bad:
            raise BadRequest(f"Invalid resource class in {where} parameter: No such resource class {bad[0]}.")
        bad = sorted(set(traits) - idx.traits)
        if bad:
            raise BadRequest(f"No such trait(s): {', '.join(bad)}.")

    # ---------------------------------------------------------------- allocation candidates

    async def allocation_candidates(self, query: CandidateQuery) -> tuple[Index, list[Candidate], list[int]]:
        """The candidates and the ids of the providers to summarise."""
        idx = await self.index()
        for g in query.groups.values():
            self.check_names(idx, g.resources, set().union(*g.required, g.forbidden))
        self.check_names(idx, (), query.root_required | query.root_forbidden)
        return idx, *_Search(idx, query, self.config.max_allocation_candidates).run()


_PROVIDER_QUERY = PlacementService._build_provider_query()


class _Search:
    """Allocation candidates as Placement defines them, computed over an :class:`Index`."""

    def __init__(self, idx: Index, query: CandidateQuery, max_candidates: int):
        self.idx = idx
        self.q = query
        self.max = max_candidates
        self.anchors: set[int] | None = None
        if query.root_required or query.root_forbidden:
            self.anchors = {n.id for n in idx.nodes.values() if n.parent_id is None
                            and query.root_required <= n.traits and not (query.root_forbidden & n.traits)}

    def anchor_ok(self, root: int) -> bool:
        return self.anchors is None or root in self.anchors

    def run(self) -> tuple[list[Candidate], list[int]]:
        groups = list(self.q.groups.values())
        simple = not (self.idx.sharing or self.idx.has_trees)
        if len(groups) == 1 and (groups[0].same_provider or simple) and not self.q.same_subtrees:
            return self.stream(self.each_single(groups[0]), dedupe=bool(self.idx.sharing))
        by_suffix: dict[str, list[Candidate]] = {}
        for suffix, g in self.q.groups.items():
            found = self.single(g) if g.same_provider or not (self.idx.sharing or self.idx.has_trees) \
                else self.spread(g)
            if not found:
                return [], []
            by_suffix[suffix] = found
        return self.merge(by_suffix)

    def tree_root(self, uuid: str | None) -> int | None | bool:
        if uuid is None:
            return None
        rp = self.idx.by_uuid.get(uuid)
        return False if rp is None else self.idx.nodes[rp].root_id

    def single(self, g: RequestGroup) -> list[Candidate]:
        return list(self.each_single(g))

    def each_single(self, g: RequestGroup) -> Iterator[Candidate]:
        """One provider satisfies the whole group."""
        idx = self.idx
        root = self.tree_root(g.in_tree)
        if root is False:
            return
        nodes, sharing, required, forbidden = idx.nodes, idx.sharing, g.required, g.forbidden
        if g.resources:
            # walk the providers of the rarest class in id order, lazily: a limited request
            # stops as soon as it has enough
            rcs = sorted(g.resources, key=lambda rc: len(idx.by_class.get(rc, ())))
            each: Iterable[int] = (rp for rp in idx.by_class.get(rcs[0], ())
                                   if (root is None or nodes[rp].root_id == root)
                                   and all(idx.fits(rp, rc, g.resources[rc]) for rc in rcs))
        else:
            each = (rp for rp, n in nodes.items() if root is None or n.root_id == root)
        in_aggs = idx.in_aggregates(g.member_of) if g.member_of else None
        bad = idx.in_any_aggregate(g.forbidden_aggs)
        for rp in each:
            if (in_aggs is not None and rp not in in_aggs) or rp in bad:
                continue
            node = nodes[rp]
            if (required and any(not (any_of & node.traits) for any_of in required)) or \
                    (forbidden and forbidden & node.traits):
                continue
            res = {(rp, rc): amount for rc, amount in g.resources.items()}
            mapping = {g.suffix: frozenset((rp,))}
            if self.anchors is None or node.root_id in self.anchors:
                yield Candidate(node.root_id, res, mapping, g.same_provider)
            if rp in sharing:
                for anchor in sorted(idx.anchors(rp) - {node.root_id}):
                    if self.anchor_ok(anchor):
                        yield Candidate(anchor, res, mapping, g.same_provider)

    def spread(self, g: RequestGroup) -> list[Candidate]:
        """The unnumbered group: any providers of one tree, plus sharing providers of its aggregates."""
        idx = self.idx
        root = self.tree_root(g.in_tree)
        if root is False:
            return []
        in_aggs = idx.in_aggregates(g.member_of) if g.member_of else None
        bad = idx.in_any_aggregate(g.forbidden_aggs)
        per_class: dict[str, dict[int, list[int]]] = {}
        common: set[int] | None = None
        for rc in sorted(g.resources):
            amount = g.resources[rc]
            have = idx.with_resource(rc, amount, root)  # type: ignore[arg-type]
            pairs = {(rp, idx.nodes[rp].root_id) for rp in have}
            if root is None:
                sharing = idx.sharing & set(have)
                if in_aggs is not None:
                    sharing &= in_aggs
                pairs |= {(rp, anchor) for rp in sharing for anchor in idx.anchors(rp)}
            by_anchor: dict[int, list[int]] = defaultdict(list)
            for rp, anchor in sorted(pairs):
                if not self.anchor_ok(anchor):
                    continue
                if in_aggs is not None and rp not in in_aggs and anchor not in in_aggs:
                    continue
                if rp in bad or anchor in bad:
                    continue
                by_anchor[anchor].append(rp)
            common = set(by_anchor) if common is None else common & set(by_anchor)
            per_class[rc] = by_anchor
            if not common:
                return []
        out = []
        for anchor in sorted(common or ()):
            lists = [per_class[rc][anchor] for rc in sorted(g.resources)]
            for combo in itertools.product(*lists):
                traits: set[str] = set()
                if any(g.forbidden & idx.nodes[rp].traits for rp in combo):
                    continue
                for rp in combo:
                    traits |= idx.nodes[rp].traits
                if any(not (any_of & traits) for any_of in g.required):
                    continue
                res = {(rp, rc): g.resources[rc] for rp, rc in zip(combo, sorted(g.resources))}
                out.append(Candidate(anchor, res, {g.suffix: frozenset(combo)}, False))
        return out

    def stream(self, cands: Iterator[Candidate], dedupe: bool = False,
               only_used: bool = False) -> tuple[list[Candidate], list[int]]:
        """Candidates as they come, within capacity, without repeats, up to the limit."""
        idx, limit = self.idx, self.q.limit
        seen: set[Any] = set()
        out: list[Candidate] = []
        for cand in cands:
            if any(idx.used.get(key, 0) + amount > idx.inv[key[0]][key[1]].capacity
                   or amount > idx.inv[key[0]][key[1]].max_unit for key, amount in cand.resources.items()):
                continue
            if dedupe:
                key = cand.key()
                if key in seen:
                    continue
                seen.add(key)
            out.append(cand)
            if (limit and len(out) >= limit) or (self.max >= 0 and len(out) >= self.max):
                break
        return out, self.summaries(out, only_used)

    def merge(self, by_suffix: dict[str, list[Candidate]]) -> tuple[list[Candidate], list[int]]:
        exclude_nested = not self.q.nested_aware and self.idx.has_trees
        return self.stream(self.each_merged(by_suffix, exclude_nested), True, exclude_nested)

    def each_merged(self, by_suffix: dict[str, list[Candidate]], exclude_nested: bool) -> Iterator[Candidate]:
        """One candidate of every group, per anchor, combined (group_policy, same_subtree applied)."""
        idx = self.idx
        lists_by_anchor: dict[int, dict[str, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
        for suffix, cands in by_suffix.items():
            for c in cands:
                lists_by_anchor[c.anchor][suffix].append(c)
        granular = len([s for s in by_suffix if s])
        for anchor in sorted(lists_by_anchor):
            lists = lists_by_anchor[anchor]
            if set(lists) != set(by_suffix):
                continue
            for combo in itertools.product(*(lists[s] for s in by_suffix)):
                if self.q.group_policy == "isolate":
                    used = set().union(*(next(iter(c.mappings.values())) for c in combo if c.same_provider))
                    if len(used) != granular:
                        continue
                mappings: dict[str, frozenset[int]] = {}
                for c in combo:
                    for suffix, rps in c.mappings.items():
                        mappings[suffix] = mappings.get(suffix, frozenset()) | rps
                if not self.same_subtree(mappings):
                    continue
                resources: dict[tuple[int, str], int] = defaultdict(int)
                for c in combo:
                    for key, amount in c.resources.items():
                        resources[key] += amount
                if exclude_nested:
                    roots = [idx.nodes[rp].root_id for rp in {rp for rp, _ in resources}]
                    if len(roots) != len(set(roots)):
                        continue
                yield Candidate(anchor, dict(resources), mappings)

    def same_subtree(self, mappings: dict[str, frozenset[int]]) -> bool:
        for suffixes in self.q.same_subtrees:
            rps = set().union(*(mappings.get(s, frozenset()) for s in suffixes))
            if len(rps) <= 1:
                continue
            common = set.intersection(*(self.idx.ancestors(rp) for rp in rps))
            if not common & rps:
                return False
        return True

    def summaries(self, cands: list[Candidate], only_used: bool) -> list[int]:
        used = {rp for c in cands for rp, _ in c.resources}
        if only_used:
            return sorted(used)
        roots = {self.idx.nodes[rp].root_id for rp in used}
        return sorted(rp for root in roots for rp in self.idx.tree[root])


__all__ = ["APIError", "Candidate", "CandidateQuery", "ConsumerWrite", "Index", "Inventory", "PlacementService",
           "Provider", "RequestGroup", "INVENTORY_DEFAULTS"]
