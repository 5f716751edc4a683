"""Cinder's quotas (os-quota-sets, os-quota-class-sets, /limits) and the check every create makes
(``volume.quotas.reserve``, seam 2), over identity's unified limits as compute's quotas are
(``mcloud.core.quotas.QuotaLimits``: the project's os-quota-sets value, else identity's limit for
``block-storage`` under Cinder's resource names, else the ``default`` quota class, else Cinder's
defaults).

Resources: volumes, snapshots, gigabytes, backups, backup_gigabytes, groups, per_volume_gigabytes,
and per volume type ``volumes_<type>``, ``snapshots_<type>``, ``gigabytes_<type>`` (default -1).
Usage is counted from the rows themselves (the volumes, snapshots, backups and groups that are
not deleted), so it cannot drift; nothing is "reserved" between a check and the row it guards,
which the create writes in the same transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, RequestTooLarge
from mcloud.core.quotas import TRUE_STRINGS, QuotaLimits
from mcloud.volume import models_types as m

#: Cinder's quota defaults (cinder/quota.py options quota_volumes ... per_volume_size_limit)
DEFAULTS: dict[str, int] = {
    "volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10, "backup_gigabytes": 1000,
    "groups": 10, "per_volume_gigabytes": -1,
}
PER_TYPE = ("volumes", "snapshots", "gigabytes")
NON_QUOTA_KEYS = ("tenant_id", "id")
MAX_INT = 0x7FFFFFFF
#: /limits' absolute names (cinder/api/views/limits.py) and used_limits' (contrib/used_limits.py)
ABSOLUTE = {"gigabytes": "maxTotalVolumeGigabytes", "backup_gigabytes": "maxTotalBackupGigabytes",
            "volumes": "maxTotalVolumes", "snapshots": "maxTotalSnapshots", "backups": "maxTotalBackups"}
USED = {"gigabytes": "totalGigabytesUsed", "backup_gigabytes": "totalBackupGigabytesUsed",
        "volumes": "totalVolumesUsed", "snapshots": "totalSnapshotsUsed", "backups": "totalBackupsUsed"}


class OverQuota(RequestTooLarge):
    """Cinder's QuotaError: 413 ``overLimit`` with Retry-After 0."""

    headers = {"Retry-After": "0"}


def _model(module: str, name: str) -> Any:
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(f"mcloud.volume.{module}"), name, None)


def _live(model: Any) -> list[Any]:
    """The clauses that keep a model's rows that count: not deleted, consuming quota (3.65)."""
    out = []
    if hasattr(model, "deleted"):
        out.append(model.deleted.is_(False))
    if hasattr(model, "use_quota"):
        out.append(model.use_quota.is_(True))
    return out


class Quotas:
    def __init__(self, volume: Any):
        self.volume = volume
        self.limits = QuotaLimits(m.Quota, m.QuotaClass, lambda: self.volume.identity, "block-storage",
                                  lambda name: name, lambda name: DEFAULTS.get(name, -1))

    # ------------------------------------------------------------------ resources and usage

    async def type_names(self, session: AsyncSession) -> list[str]:
        rows = await session.execute(sa.select(m.VolumeType.name).order_by(m.VolumeType.name))
        return list(rows.scalars())

    async def resources(self, session: AsyncSession) -> list[str]:
        names = list(DEFAULTS)
        for type_name in await self.type_names(session):
            names.extend(f"{r}_{type_name}" for r in PER_TYPE)
        return names

    async def usage(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        """What the project uses now, per resource (per-type resources by the volume's type)."""
        used = dict.fromkeys(await self.resources(session), 0)
        used["per_volume_gigabytes"] = 0
        names = dict((await session.execute(sa.select(m.VolumeType.id, m.VolumeType.name))).all())
        volume = _model("models", "Volume")
        if volume is not None:
            rows = await session.execute(sa.select(
                volume.volume_type_id, sa.func.count(), sa.func.coalesce(sa.func.sum(volume.size), 0)).where(
                volume.project_id == project_id, *_live(volume)).group_by(volume.volume_type_id))
            for type_id, count, size in rows.all():
                self._add(used, "volumes", names.get(type_id), int(count))
                self._add(used, "gigabytes", names.get(type_id), int(size))
        snapshot = _model("models", "Snapshot")
        if snapshot is not None:
            type_col = getattr(snapshot, "volume_type_id", sa.null())
            rows = await session.execute(sa.select(
                type_col, sa.func.count(), sa.func.coalesce(sa.func.sum(snapshot.volume_size), 0)).where(
                snapshot.project_id == project_id, *_live(snapshot)).group_by(type_col))
            for type_id, count, size in rows.all():
                self._add(used, "snapshots", names.get(type_id), int(count))
                self._add(used, "gigabytes", names.get(type_id), int(size))
        backup = _model("models_backups", "Backup")
        if backup is not None:
            row = (await session.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(backup.size), 0))
                                         .where(backup.project_id == project_id, *_live(backup)))).one()
            used["backups"], used["backup_gigabytes"] = int(row[0]), int(row[1])
        group = _model("models_groups", "Group")
        if group is not None:
            used["groups"] = (await session.execute(sa.select(sa.func.count()).select_from(group).where(
                group.project_id == project_id, *_live(group)))).scalar() or 0
        return used

    @staticmethod
    def _add(used: dict[str, int], resource: str, type_name: str | None, amount: int) -> None:
        used[resource] += amount
        if type_name is not None:
            key = f"{resource}_{type_name}"
            used[key] = used.get(key, 0) + amount

    # ------------------------------------------------------------------ seam 2: the check

    async def reserve(self, session: AsyncSession, project_id: str, deltas: dict[str, int]) -> None:
        """Check that adding ``deltas`` ({"volumes": 1, "gigabytes": 10, "volumes_<type>": 1,
        "gigabytes_<type>": 10, "snapshots": ..., "backups": ..., "backup_gigabytes": ...,
        "groups": ...}) keeps the project within its limits, before the rows they count are
        written (in the same transaction); else Cinder's 413. ``per_volume_gigabytes``: the size of
        the one volume, checked against that limit. Negative deltas need no call (usage is counted)."""
        size = deltas.get("per_volume_gigabytes")
        if size is not None:
            limit = await self.limits.limit_of(session, project_id, "per_volume_gigabytes")
            if limit >= 0 and size > limit:
                raise OverQuota(f"VolumeSizeExceedsLimit: Requested volume size {size}G is larger than maximum "
                                f"allowed limit {limit}G.")
        wanted = {k: v for k, v in deltas.items() if v > 0 and k != "per_volume_gigabytes"}
        if not wanted:
            return
        used = await self.usage(session, project_id)
        for name in sorted(wanted, key=lambda n: ("gigabytes" not in n, n)):
            limit = await self.limits.limit_of(session, project_id, name)
            consumed = used.get(name, 0)
            if limit < 0 or consumed + wanted[name] <= limit:
                continue
            if "gigabytes" in name:
                if name.startswith("backup"):
                    raise OverQuota(f"VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup "
                                    f"gigabytes quota. Requested "
                                    f"{wanted[name]}G, quota is {limit}G and {consumed}G has been consumed.")
                raise OverQuota(f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                                f"{name} quota. Requested {wanted[name]}G, quota is {limit}G and {consumed}G has "
                                f"been consumed.")
            if name.startswith("volumes"):
                raise OverQuota(f"VolumeLimitExceeded: Maximum number of volumes allowed ({limit}) exceeded for "
                                f"quota '{name}'.")
            if name.startswith("snapshots"):
                raise OverQuota(f"SnapshotLimitExceeded: Maximum number of snapshots allowed ({limit}) exceeded")
            if name.startswith("backups"):
                raise OverQuota(f"BackupLimitExceeded: Maximum number of backups allowed ({limit}) exceeded")
            if name == "groups":
                raise OverQuota(f"GroupLimitExceeded: Maximum number of groups allowed ({limit}) exceeded")
            raise OverQuota(f"UnexpectedOverQuota: Unexpected over quota on {name}.")

    async def rename_type(self, session: AsyncSession, old: str, new: str) -> None:
        """A renamed volume type keeps its per-type limits (Cinder's update_quota_resource)."""
        for resource in PER_TYPE:
            for model in (m.Quota, m.QuotaClass):
                await session.execute(sa.update(model).where(model.resource == f"{resource}_{old}").values(
                    resource=f"{resource}_{new}"))

    # ------------------------------------------------------------------ the API

    async def show(self, session: AsyncSession, caller: Any, project_id: str, *, usage: bool = False,
                   ) -> dict[str, Any]:
        caller.authorize("volume_extension:quotas:show", {"project_id": project_id})
        limits = await self.limits.project_limits(session, project_id, await self.resources(session))
        if not usage:
            return limits
        used = await self.usage(session, project_id)
        return {name: {"limit": limits[name], "in_use": used.get(name, 0), "reserved": 0, "allocated": 0}
                for name in limits}

    async def defaults(self, session: AsyncSession, caller: Any, project_id: str) -> dict[str, int]:
        caller.authorize("volume_extension:quotas:show", {"project_id": project_id})
        return await self.limits.default_limits(session, await self.resources(session))

    async def check_values(self, session: AsyncSession, values: dict[str, Any], *, what: str = "quota set",
                           ) -> dict[str, int]:
        """Cinder's quota_set format: known keys only, integers from -1 to 2**31-1."""
        known = set(await self.resources(session))
        bad = [k for k in values if k not in known and (what != "quota set" or k not in NON_QUOTA_KEYS)]
        if bad:
            raise BadRequest(f"Invalid input received: Bad key(s) in {what}: {', '.join(bad)}")
        out = {}
        for key, value in values.items():
            if key in NON_QUOTA_KEYS:
                continue
            try:
                number = int(value)
                if isinstance(value, (bool, float)) or (isinstance(value, str) and value.strip() != str(number)):
                    raise ValueError
            except (TypeError, ValueError):
                raise BadRequest(f"{key} must be an integer.") from None
            if number < -1:
                raise BadRequest(f"{key} must be >= -1")
            if number > MAX_INT:
                raise BadRequest(f"{key} must be <= {MAX_INT}")
            out[key] = number
        return out

    async def update(self, session: AsyncSession, caller: Any, project_id: str, values: dict[str, Any],
                     ) -> dict[str, int]:
        """Set a project's own limits; below what it uses is Cinder's 400."""
        caller.authorize("volume_extension:quotas:update", {"project_id": project_id})
        if not 1 <= len(project_id) <= 255:
            raise BadRequest("Invalid input received: quota_set_name has a minimum character requirement of 1.")
        wanted = await self.check_values(session, values)
        used = await self.usage(session, project_id)
        for key, value in wanted.items():
            if key == "per_volume_gigabytes" or value == -1:
                continue
            if value < used.get(key, 0):
                raise BadRequest(f"Quota {key} limit must be equal or greater than existing resources. Current usage "
                                 f"is {used.get(key, 0)} and the requested limit is {value}.")
        await self.limits.set_project(session, project_id, wanted)
        return await self.limits.project_limits(session, project_id, await self.resources(session))

    async def delete(self, session: AsyncSession, caller: Any, project_id: str) -> None:
        caller.authorize("volume_extension:quotas:delete", {"project_id": project_id})
        await self.limits.delete_project(session, project_id)

    async def show_class(self, session: AsyncSession, caller: Any, class_name: str) -> dict[str, int]:
        caller.authorize("volume_extension:quota_classes", {})
        return await self.limits.default_limits(session, await self.resources(session), class_name)

    async def update_class(self, session: AsyncSession, caller: Any, class_name: str, values: dict[str, Any],
                           ) -> dict[str, int]:
        caller.authorize("volume_extension:quota_classes", {})
        if not 1 <= len(class_name) <= 255:
            raise BadRequest("Invalid input received: quota_class_name has a minimum character requirement of 1.")
        wanted = await self.check_values(session, values, what="quota class set")
        await self.limits.set_class(session, class_name, wanted)
        return await self.limits.default_limits(session, await self.resources(session), class_name)

    async def absolute_limits(self, session: AsyncSession, caller: Any, project_id: str) -> dict[str, int]:
        """/limits' ``absolute``: the limits under Cinder's names, and what the project uses."""
        limits = await self.limits.project_limits(session, project_id, list(ABSOLUTE))
        out = {label: limits[name] for name, label in ABSOLUTE.items()}
        if caller.can("limits_extension:used_limits", {"project_id": project_id}):
            used = await self.usage(session, project_id)
            out.update({label: used[name] for name, label in USED.items()})
        return out


def as_bool(value: Any) -> bool:
    return str(value).strip().lower() in TRUE_STRINGS
