"""The volume backends of this cloud, their capacity and the scheduler that places volumes.

Each ``[volume.backends.NAME]`` table is one backend (Cinder's ``enabled_backends``) holding one
pool, named as Cinder names it: ``host@NAME#NAME`` (host: ``[volume] host``, else the machine's
name). A volume type picks backends with its ``volume_backend_name`` extra spec; other extra
specs are matched against the pool's capabilities as Cinder's CapabilitiesFilter matches them
(unscoped keys and ``capabilities:`` keys; ``<is>``, ``<in>``, ``<or>``, ``s==``, ``>=`` ...).

Capacity is accounted in the database (``models_backends``): a pool row per backend and a claim
row per volume (its size). A pool takes a volume while the claims, the new one included, stay
within ``(total - reserved) x max_over_subscription_ratio`` (Cinder's thin-provisioning
CapacityFilter) and the store is not full. :meth:`Backends.schedule` filters, weighs the pools by
free virtual space (Cinder's CapacityWeigher) and claims in the caller's write transaction with
the chosen pool's row locked, so concurrent creates never take the same room twice (SQLite's
write transactions are exclusive; PostgreSQL locks the row). Nothing fits: :class:`NoValidBackend`
("No valid backend was found."), as Cinder's scheduler says.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import socket
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.volume.drivers import load_backend
from mcloud.volume.drivers.base import Capacity, VolumeBackend
from mcloud.volume.models_backends import VolumePool, VolumePoolClaim, now

log = logging.getLogger("mcloud.volume.backends")

#: seconds a backend's reported capacity is reused before it is asked again
CAPACITY_TTL = 30.0
VENDOR = "Open Source"
PROTOCOLS = {"file": "file", "rbd": "ceph", "fake": "fake"}


class NoValidBackend(Exception):  # noqa: N818 (Cinder's name)
    """No pool can take the volume."""

    def __init__(self, reason: str = ""):
        super().__init__("No valid backend was found. " + reason if reason else "No valid backend was found.")
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PoolView:
    """A pool as ``scheduler-stats/get_pools`` shows it."""

    name: str  # host@backend#pool
    backend: str  # the [volume.backends.NAME] table
    backend_name: str  # its volume_backend_name
    total_gb: float
    free_gb: float
    allocated_gb: float  # Cinder's allocated_capacity_gb: what the volumes here claim
    provisioned_gb: float
    driver: str
    capabilities: dict[str, Any]


def host_name(configured: str | None = None) -> str:
    return configured or socket.gethostname().split(".")[0] or "localhost"


def backend_of(host: str | None) -> str | None:
    """The backend name of a volume's ``host@backend#pool`` (None for no host)."""
    if not host or "@" not in host:
        return None
    return host.split("@", 1)[1].split("#", 1)[0]


# ---------------------------------------------------------------------------- extra specs


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def spec_matches(capability: Any, requirement: str) -> bool:
    """Cinder's extra_specs_ops.match: ``"<is> True"``, ``"<in> word"``, ``"<or> a <or> b"``,
    ``"s== x"`` (and s!=, s>=, s<=, s<, s>), ``"== 2"``/``">= 2"``/``"<= 2"`` (numbers), else equality."""
    req = str(requirement).strip()
    cap = capability
    words = req.split()
    if not words:
        return str(cap) == req
    op = words[0]
    if op == "<is>":
        want = " ".join(words[1:]).lower() in ("true", "1", "yes")
        if isinstance(cap, str):
            cap = cap.strip().lower() in ("true", "1", "yes")
        return bool(cap) == want
    if op == "<in>":
        return " ".join(words[1:]) in str(cap)
    if op == "<all-in>":
        return all(w in (cap if isinstance(cap, (list, tuple, set)) else str(cap).split()) for w in words[1:])
    if op == "<or>":
        options = [o.strip() for o in req.split("<or>") if o.strip()]
        return str(cap) in options
    string_ops = {"s==": lambda a, b: a == b, "s!=": lambda a, b: a != b, "s>=": lambda a, b: a >= b,
                  "s<=": lambda a, b: a <= b, "s<": lambda a, b: a < b, "s>": lambda a, b: a > b}
    if op in string_ops:
        return string_ops[op](str(cap), " ".join(words[1:]))
    number_ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
                  "<=": lambda a, b: a <= b}
    if op in number_ops and len(words) == 2:
        a, b = _number(cap), _number(words[1])
        return a is not None and b is not None and number_ops[op](a, b)
    if isinstance(cap, bool):
        return cap == (req.lower() in ("true", "1", "yes"))
    return str(cap) == req


def capabilities_match(capabilities: dict[str, Any], specs: dict[str, str]) -> str | None:
    """None if the pool's capabilities satisfy the type's extra specs, else the first key that
    does not (Cinder's CapabilitiesFilter: scoped keys other than ``capabilities:`` are not for the
    scheduler; a capability the pool does not report fails)."""
    for key, requirement in (specs or {}).items():
        scope = key.split(":")
        if len(scope) > 1:
            if scope[0] != "capabilities":
                continue
            scope = scope[1:]
        cap: Any = capabilities
        for part in scope:
            if not isinstance(cap, dict) or part not in cap:
                return key
            cap = cap[part]
        if not spec_matches(cap, requirement):
            return key
    return None


# ---------------------------------------------------------------------------- the registry


@dataclasses.dataclass
class _Entry:
    backend: VolumeBackend
    pool: str
    options: dict[str, Any]
    capacity: Capacity | None = None
    checked: float = 0.0


class Backends:
    """The backends of this process (``volume.backends``)."""

    def __init__(self, volume: Any):
        self.volume = volume
        self.config = volume.config
        self.host = host_name(self.config.host)
        self._entries: dict[str, _Entry] = {}
        #: backends that could not start, and why (their pools take nothing)
        self.failed: dict[str, str] = {}
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------

    def tables(self) -> dict[str, dict[str, Any]]:
        """Each backend's options ([volume.backends.NAME]; one named after the default driver if
        none is configured)."""
        tables = dict(self.config.backends or {})
        if not tables:
            tables = {self.config.driver: {"driver": self.config.driver}}
        return tables

    async def start(self) -> None:
        if self._started:
            return
        for name, options in self.tables().items():
            opts = dict(options)
            scheduler_opts = {k: opts.pop(k) for k in ("max_over_subscription_ratio", "reserved_percentage",
                                                       "availability_zone", "capabilities") if k in opts}
            opts.setdefault("driver", "file")
            if opts["driver"] == "file":
                opts.setdefault("image_overlay", self.config.image_overlay)
            try:
                backend = load_backend(name, opts, self.volume.data_dir)
                await backend.start()
            except ValueError:
                raise  # a configuration error: mcloud does not start
            except Exception as exc:  # noqa: BLE001 (Cinder: the driver is not initialized, the others run)
                log.error("volume backend %s could not start: %s", name, exc, exc_info=True)
                self.failed[name] = str(exc) or type(exc).__name__
                continue
            self._entries[name] = _Entry(backend, f"{self.host}@{name}#{name}", scheduler_opts)
        self._started = True
        async with self.volume.db.write() as session:
            for name, entry in self._entries.items():
                capacity = await self._capacity(entry, force=True)
                row = await session.get(VolumePool, entry.pool)
                if row is None:
                    row = VolumePool(name=entry.pool, created_at=now())
                    session.add(row)
                row.backend = name
                row.backend_name = entry.backend.backend_name
                row.driver = entry.backend.driver
                row.total_gb = capacity.total_gb
                row.free_gb = capacity.free_gb
                row.max_over_subscription_ratio = float(entry.options.get(
                    "max_over_subscription_ratio", self.config.max_over_subscription_ratio))
                row.reserved_percentage = int(entry.options.get("reserved_percentage", 0))
                row.updated_at = now()

    async def close(self) -> None:
        for entry in self._entries.values():
            try:
                await entry.backend.close()
            except Exception:  # noqa: BLE001 (closing the others still matters)
                log.warning("closing volume backend %s failed", entry.backend.name, exc_info=True)
        self._entries.clear()
        self._started = False

    # -- lookups ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> VolumeBackend:
        entry = self._entries.get(name)
        if entry is None:
            raise KeyError(f"volume backend {name!r} is not configured")
        return entry.backend

    def for_host(self, host: str | None) -> VolumeBackend | None:
        """The backend of a volume's ``host`` (None: not placed, or a backend no longer configured)."""
        name = backend_of(host)
        entry = self._entries.get(name) if name else None
        return entry.backend if entry else None

    def pool_of(self, name: str) -> str:
        return self._entries[name].pool

    def zone_of(self, name: str) -> str:
        entry = self._entries[name]
        return str(entry.options.get("availability_zone") or self.config.storage_availability_zone)

    def zones(self) -> set[str]:
        return {self.zone_of(n) for n in self._entries}

    def capabilities(self, name: str) -> dict[str, Any]:
        entry = self._entries[name]
        backend = entry.backend
        caps: dict[str, Any] = {
            "volume_backend_name": backend.backend_name,
            "vendor_name": VENDOR,
            "driver_version": "1.0",
            "storage_protocol": PROTOCOLS.get(backend.driver, backend.driver),
            "thin_provisioning_support": True,
            "thick_provisioning_support": False,
            "multiattach": False,
            "online_extend_support": backend.driver != "file",
            "QoS_support": False,
            "reserved_percentage": int(entry.options.get("reserved_percentage", 0)),
            "max_over_subscription_ratio": float(entry.options.get(
                "max_over_subscription_ratio", self.config.max_over_subscription_ratio)),
            "pool_name": backend.name,
            "availability_zone": self.zone_of(name),
        }
        caps.update(entry.options.get("capabilities") or {})
        return caps

    async def _capacity(self, entry: _Entry, force: bool = False) -> Capacity:
        if force or entry.capacity is None or time.monotonic() - entry.checked > CAPACITY_TTL:
            try:
                entry.capacity = await entry.backend.capacity()
            except Exception as exc:  # noqa: BLE001 (a store that cannot say takes nothing)
                log.warning("volume backend %s: capacity unknown: %s", entry.backend.name, exc)
                entry.capacity = Capacity(total_gb=0.0, free_gb=0.0)
            entry.checked = time.monotonic()
        return entry.capacity

    async def _claimed(self, session: AsyncSession) -> dict[str, int]:
        rows = await session.execute(sa.select(VolumePoolClaim.pool, sa.func.sum(VolumePoolClaim.size_gb))
                                     .group_by(VolumePoolClaim.pool))
        return {pool: int(total or 0) for pool, total in rows}

    async def pools(self) -> list[PoolView]:
        """Every pool with its capacity (TYPES' ``scheduler-stats/get_pools``)."""
        async with self.volume.db.read() as session:
            claimed = await self._claimed(session)
        views = []
        for name, entry in self._entries.items():
            capacity = await self._capacity(entry)
            used = float(claimed.get(entry.pool, 0))
            views.append(PoolView(name=entry.pool, backend=name, backend_name=entry.backend.backend_name,
                                  total_gb=capacity.total_gb, free_gb=capacity.free_gb, allocated_gb=used,
                                  provisioned_gb=used, driver=entry.backend.driver,
                                  capabilities=self.capabilities(name)))
        return views

    # -- scheduling ---------------------------------------------------------------------------

    def _room(self, entry: _Entry, capacity: Capacity, claimed: int) -> float:
        """Free virtual GiB of a pool: what its claims may still grow by."""
        ratio = float(entry.options.get("max_over_subscription_ratio", self.config.max_over_subscription_ratio))
        if not capacity.thin_provisioning:
            ratio = 1.0
        reserved = capacity.total_gb * int(entry.options.get("reserved_percentage", 0)) / 100.0
        if capacity.free_gb - reserved <= 0:
            return 0.0
        return (capacity.total_gb - reserved) * max(ratio, 1.0) - claimed

    async def candidates(self, session: AsyncSession, size_gb: int, type_specs: dict[str, str] | None,
                         availability_zone: str | None, backend: str | None = None) -> list[str]:
        """The backends that may take a volume, best first (most free virtual space)."""
        specs = dict(type_specs or {})
        claimed = await self._claimed(session)
        reasons: list[str] = []
        fits: list[tuple[float, str]] = []
        for name, entry in self._entries.items():
            if backend is not None and name != backend:
                continue
            if availability_zone and self.zone_of(name) != availability_zone:
                reasons.append(f"{entry.pool}: zone {self.zone_of(name)}")
                continue
            wanted = specs.get("volume_backend_name")
            if wanted is not None and not spec_matches(entry.backend.backend_name, wanted):
                reasons.append(f"{entry.pool}: volume_backend_name {entry.backend.backend_name}")
                continue
            missed = capabilities_match(self.capabilities(name),
                                        {k: v for k, v in specs.items() if k != "volume_backend_name"})
            if missed is not None:
                reasons.append(f"{entry.pool}: capability {missed}")
                continue
            room = self._room(entry, await self._capacity(entry), claimed.get(entry.pool, 0))
            if room < size_gb:
                reasons.append(f"{entry.pool}: {room:g} GB free")
                continue
            fits.append((room, name))
        if not fits:
            log.info("no pool for %s GB (specs %s, zone %s): %s", size_gb, specs, availability_zone,
                     "; ".join(reasons) or "no backends")
        return [name for _room, name in sorted(fits, key=lambda f: (-f[0], f[1]))]

    async def schedule(self, session: AsyncSession, volume_id: str, size_gb: int,
                       type_specs: dict[str, str] | None = None, availability_zone: str | None = None,
                       backend: str | None = None) -> str:
        """Pick a pool for the volume and claim ``size_gb`` in it, in the caller's write
        transaction; returns the pool (``host@backend#pool``, the volume's ``host``). A volume
        that already holds a claim keeps it (a resumed task). ``backend`` restricts the choice
        (a volume from a snapshot or another volume stays on its source's backend)."""
        held = await session.get(VolumePoolClaim, volume_id)
        if held is not None:
            return held.pool
        names = await self.candidates(session, size_gb, type_specs, availability_zone, backend)
        if not names:
            raise NoValidBackend()
        # lock every candidate's row at once, in name order (two creates locking pools one by
        # one in different orders would deadlock), then weigh again with the claims as they are
        pools = {self._entries[n].pool: n for n in names}
        query = sa.select(VolumePool.name).where(VolumePool.name.in_(list(pools))).order_by(VolumePool.name)
        if not self.volume.db.is_sqlite:
            query = query.with_for_update()
        locked = set((await session.execute(query)).scalars())
        claimed = await self._claimed(session)
        best: tuple[float, str] | None = None
        for pool, name in pools.items():
            if pool not in locked:
                continue
            entry = self._entries[name]
            room = self._room(entry, await self._capacity(entry), claimed.get(pool, 0))
            if room >= size_gb and (best is None or (room, pool) > best):
                best = (room, pool)
        if best is None:
            raise NoValidBackend()
        session.add(VolumePoolClaim(volume_id=volume_id, pool=best[1], size_gb=size_gb, created_at=now()))
        await session.flush()
        return best[1]

    async def _lock_and_check(self, session: AsyncSession, entry: _Entry, grow_gb: int) -> bool:
        """Lock the pool's row (PostgreSQL) and check, with the claims as they are now, that it
        still has ``grow_gb`` of room."""
        query = sa.select(VolumePool).where(VolumePool.name == entry.pool)
        if not self.volume.db.is_sqlite:
            query = query.with_for_update()
        if (await session.execute(query)).scalar() is None:
            return False
        claimed = (await session.execute(sa.select(sa.func.coalesce(sa.func.sum(VolumePoolClaim.size_gb), 0))
                                         .where(VolumePoolClaim.pool == entry.pool))).scalar_one()
        return self._room(entry, await self._capacity(entry), int(claimed)) >= grow_gb

    async def grow(self, session: AsyncSession, volume_id: str, size_gb: int) -> None:
        """Raise a volume's claim to ``size_gb`` (extend); NoValidBackend if its pool has no room."""
        claim = await session.get(VolumePoolClaim, volume_id)
        if claim is None or claim.size_gb >= size_gb:
            return
        name = backend_of(claim.pool)
        entry = self._entries.get(name or "")
        if entry is None or not await self._lock_and_check(session, entry, size_gb - claim.size_gb):
            raise NoValidBackend("Insufficient free virtual space to extend the volume.")
        claim.size_gb = size_gb
        claim.updated_at = now()
        await session.flush()

    async def move(self, session: AsyncSession, volume_id: str, size_gb: int, pool: str) -> None:
        """Claim room for a copy of the volume in ``pool`` (retype to another backend) under a
        claim id of its own: ``<volume_id>.move``; :meth:`settle_move` makes it the volume's."""
        name = backend_of(pool)
        entry = self._entries.get(name or "")
        if await session.get(VolumePoolClaim, f"{volume_id}.move") is not None:
            return
        if entry is None or not await self._lock_and_check(session, entry, size_gb):
            raise NoValidBackend()
        session.add(VolumePoolClaim(volume_id=f"{volume_id}.move", pool=entry.pool, size_gb=size_gb,
                                    created_at=now()))
        await session.flush()

    async def settle_move(self, session: AsyncSession, volume_id: str, done: bool) -> None:
        """After a move: the new claim replaces the old one (done) or goes (given up)."""
        moved = await session.get(VolumePoolClaim, f"{volume_id}.move")
        if moved is None:
            return
        if done:
            old = await session.get(VolumePoolClaim, volume_id)
            if old is not None:
                await session.delete(old)
                await session.flush()
            session.add(VolumePoolClaim(volume_id=volume_id, pool=moved.pool, size_gb=moved.size_gb,
                                        created_at=now()))
        await session.delete(moved)
        await session.flush()

    async def release(self, session: AsyncSession, volume_id: str) -> None:
        """Let go of a volume's claim (deleted, or its create failed)."""
        await session.execute(sa.delete(VolumePoolClaim).where(
            VolumePoolClaim.volume_id.in_([volume_id, f"{volume_id}.move"])))

    async def claim_of(self, session: AsyncSession, volume_id: str) -> VolumePoolClaim | None:
        return await session.get(VolumePoolClaim, volume_id)

    async def wait_started(self) -> None:
        while not self._started:
            await asyncio.sleep(0.05)
