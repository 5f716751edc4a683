"""What an admin sees of the volume service's own machinery, as Cinder shows it: its services
(cinder-scheduler, one cinder-volume ``host@backend`` per backend, cinder-backup) with what an
admin set on them (disable with a reason, freeze), hosts with their volume counts, pools with
their capacity and capabilities (from ``volume.backends``), and the availability zones.

mCloud's volume services all run in the mcloud process, so a service is "up" while its backend
runs (one that failed to start is "down", as a cinder-volume whose driver did not initialize).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, NotFound
from mcloud.volume import models_types as m
from mcloud.volume.models_types import now

SCHEDULER, VOLUME, BACKUP = "cinder-scheduler", "cinder-volume", "cinder-backup"


@dataclasses.dataclass
class ServiceView:
    binary: str
    host: str
    zone: str
    up: bool
    disabled: bool = False
    disabled_reason: str | None = None
    frozen: bool = False
    updated_at: datetime | None = None
    backend: str | None = None


async def services(volume: Any, session: AsyncSession, *, host: str | None = None,
                   binary: str | None = None) -> list[ServiceView]:
    """Every volume service, filtered by ``host`` (a volume service's ``host@backend`` matches its
    host too, as Cinder's filter) and ``binary``."""
    backends = volume.backends
    zone = volume.config.storage_availability_zone
    found = [ServiceView(SCHEDULER, backends.host, zone, True)]
    for name in backends.names():
        found.append(ServiceView(VOLUME, f"{backends.host}@{name}", backends.zone_of(name), True, backend=name))
    for name in sorted(backends.failed):
        found.append(ServiceView(VOLUME, f"{backends.host}@{name}", zone, False, backend=name))
    found.append(ServiceView(BACKUP, backends.host, zone, True))
    states = {(r.binary, r.host): r for r in (await session.execute(sa.select(m.ServiceState))).scalars()}
    started = getattr(volume, "started_at", None) or now()
    for view in found:
        state = states.get((view.binary, view.host))
        view.updated_at = now() if view.up else started
        if state is not None:
            view.disabled, view.disabled_reason, view.frozen = state.disabled, state.disabled_reason, state.frozen
    if host:
        found = [v for v in found if v.host == host or v.host.split("@")[0] == host]
    if binary:
        found = [v for v in found if v.binary == binary]
    return found


async def set_state(volume: Any, session: AsyncSession, host: str, binary: str | None, *,
                    disabled: bool | None = None, reason: str | None = None, frozen: bool | None = None,
                    ) -> list[ServiceView]:
    """Enable, disable (with a reason) or freeze/thaw the services of ``host`` (and ``binary``)."""
    matching = [v for v in await services(volume, session) if v.host == host and (binary is None
                                                                                    or v.binary == binary)]
    if not matching:
        if binary is not None and any(v.host == host for v in await services(volume, session)):
            raise NotFound(f"Could not find binary {binary} on host {host}.")
        raise NotFound(f"Host {host} could not be found.")
    for view in matching:
        row = await session.get(m.ServiceState, (view.binary, view.host))
        if row is None:
            row = m.ServiceState(binary=view.binary, host=view.host, disabled=False, frozen=False)
            session.add(row)
        if disabled is not None:
            row.disabled = disabled
            row.disabled_reason = reason if disabled else None
        if frozen is not None:
            if view.binary != VOLUME:
                continue
            row.frozen = frozen
        row.updated_at = now()
        view.disabled, view.disabled_reason, view.frozen = row.disabled, row.disabled_reason, row.frozen
    await session.flush()
    return matching


async def disabled_backends(session: AsyncSession) -> set[str]:
    """The ``host@backend`` of cinder-volume services an admin disabled (the scheduler may skip them)."""
    rows = await session.execute(sa.select(m.ServiceState.host).where(
        m.ServiceState.binary == VOLUME, m.ServiceState.disabled.is_(True)))
    return set(rows.scalars())


def volume_model(name: str) -> Any:
    from mcloud.volume import models  # noqa: PLC0415

    return getattr(models, name, None)


async def host_usage(volume: Any, session: AsyncSession, host: str) -> list[dict[str, Any]]:
    """os-hosts/{host}: volumes and snapshots (count and GB) on the host, in total and per project."""
    known = {v.host for v in await services(volume, session)} | {v.host.split("@")[0]
                                                                 for v in await services(volume, session)}
    if host not in known:
        raise NotFound(f"Host {host} could not be found.")
    per: dict[str, dict[str, int]] = {}
    vol, snap = volume_model("Volume"), volume_model("Snapshot")
    if vol is not None:
        rows = await session.execute(sa.select(vol.id, vol.project_id, vol.size).where(
            vol.deleted.is_(False), (vol.host == host) | vol.host.like(f"{host}@%") | vol.host.like(f"{host}#%")))
        ids = []
        for vid, project, size in rows.all():
            ids.append(vid)
            p = per.setdefault(project, {"volume_count": 0, "total_volume_gb": 0, "snapshot_count": 0,
                                         "total_snapshot_gb": 0})
            p["volume_count"] += 1
            p["total_volume_gb"] += int(size or 0)
        if snap is not None and ids:
            rows = await session.execute(sa.select(snap.project_id, snap.volume_size).where(
                snap.deleted.is_(False), snap.volume_id.in_(ids)))
            for project, size in rows.all():
                p = per.setdefault(project, {"volume_count": 0, "total_volume_gb": 0, "snapshot_count": 0,
                                             "total_snapshot_gb": 0})
                p["snapshot_count"] += 1
                p["total_snapshot_gb"] += int(size or 0)
    total = {k: sum(p[k] for p in per.values()) for k in ("volume_count", "total_volume_gb", "snapshot_count",
                                                          "total_snapshot_gb")}
    out = [{"resource": {"host": host, "project": "(total)", **{k: str(v) for k, v in total.items()}}}]
    for project in sorted(per):
        out.append({"resource": {"host": host, "project": project,
                                 **{k: str(v) for k, v in per[project].items()}}})
    return out


async def pools(volume: Any, *, name: str | None = None, backend_names: set[str] | None = None,
                ) -> list[dict[str, Any]]:
    """scheduler-stats/get_pools' detail: each pool's capabilities with its capacity figures."""
    out = []
    for pool in await volume.backends.pools():
        if name is not None and pool.name != name:
            continue
        if backend_names is not None and pool.backend_name not in backend_names:
            continue
        caps = {**pool.capabilities, "volume_backend_name": pool.backend_name, "driver": pool.driver,
                "total_capacity_gb": round(pool.total_gb, 2), "free_capacity_gb": round(pool.free_gb, 2),
                "allocated_capacity_gb": round(pool.allocated_gb, 2),
                "provisioned_capacity_gb": round(pool.provisioned_gb, 2), "timestamp": now().isoformat()}
        caps.setdefault("pool_name", pool.name.split("#")[-1])
        caps.pop("driver", None)
        out.append({"name": pool.name, "capabilities": caps})
    return out


async def capabilities(volume: Any, host: str) -> dict[str, Any]:
    """capabilities/{host}: what a cinder-volume service's backend offers, as Cinder's view."""
    for pool in await volume.backends.pools():
        if pool.name.split("#")[0] != host:
            continue
        caps = pool.capabilities
        properties = {
            "thin_provisioning": {"title": "Thin Provisioning", "description": "Sets thin provisioning.",
                                  "type": "boolean"},
            "compression": {"title": "Compression", "description": "Enables compression.", "type": "boolean"},
            "qos": {"title": "QoS", "description": "Enables QoS.", "type": "boolean"},
            "replication": {"title": "Replication", "description": "Enables replication.", "type": "boolean"},
        }
        return {"namespace": f"OS::Storage::Capabilities::{host}", "vendor_name": caps.get("vendor_name"),
                "volume_backend_name": pool.backend_name, "pool_name": caps.get("pool_name"),
                "driver_version": caps.get("driver_version"), "storage_protocol": caps.get("storage_protocol"),
                "display_name": None, "description": None, "visibility": None, "replication_targets": [],
                "properties": properties}
    raise NotFound(f"Service {host} could not be found.")


def zones(volume: Any) -> list[str]:
    found = set(volume.backends.zones()) or {volume.config.storage_availability_zone}
    return sorted(found)


def check_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 255:
        raise BadRequest("Disabled reason contains invalid characters or is too long")
    return reason.strip()
