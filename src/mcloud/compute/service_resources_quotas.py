"""Quotas (os-quota-sets, os-quota-class-sets, /limits) and the quota checks the other parts call.

A project's limit for a resource is, first found wins:

1. what os-quota-sets set for the project (``compute_quota``),
2. identity's unified limit for the compute service (the project's own limit, else the registered
   default), read through ``identity.effective_limit`` under Nova's unified-limit names
   (``servers``, ``class:VCPU``, ``class:MEMORY_MB``, ``server_key_pairs``...), as Nova's
   UnifiedLimitsDriver reads them,
3. the ``default`` quota class as os-quota-class-sets set it (``compute_quota_class``),
4. Nova's defaults (10 instances, 20 cores, 50 GiB of RAM...).

-1 means unlimited (the chain is core.quotas.QuotaLimits, as the volume service's). Usage is counted from the rows themselves: instances, cores and RAM from the
project's servers that are not deleted, server groups per project, keypairs per user, members per
group.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.compute import models as cm
from mcloud.compute import models_resources as m
from mcloud.core.errors import BadRequest, Forbidden
from mcloud.core.quotas import TRUE_STRINGS, QuotaLimits

#: Nova's quota resources and their defaults (nova/conf/quota.py); the nova-network ones are
#: unlimited and shown only before 2.36
DEFAULTS: dict[str, int] = {
    "cores": 20, "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
    "instances": 10, "key_pairs": 100, "metadata_items": 128, "ram": 51200, "server_groups": 10,
    "server_group_members": 10, "fixed_ips": -1, "floating_ips": -1, "security_groups": -1,
    "security_group_rules": -1,
}
NETWORK_QUOTAS = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
FILE_QUOTAS = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
#: Nova's unified-limit names (nova/limit/local.py, nova/limit/placement.py)
UNIFIED = {
    "instances": "servers", "cores": "class:VCPU", "ram": "class:MEMORY_MB",
    "metadata_items": "server_metadata_items", "injected_files": "server_injected_files",
    "injected_file_content_bytes": "server_injected_file_content_bytes",
    "injected_file_path_bytes": "server_injected_file_path_bytes", "key_pairs": "server_key_pairs",
    "server_groups": "server_groups", "server_group_members": "server_group_members",
}
#: /limits names (nova/api/openstack/compute/views/limits.py)
ABSOLUTE = {
    "ram": ("maxTotalRAMSize",), "instances": ("maxTotalInstances",), "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",), "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"), "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",), "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",), "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
USED = {"totalRAMUsed": "ram", "totalCoresUsed": "cores", "totalInstancesUsed": "instances",
        "totalFloatingIpsUsed": "floating_ips", "totalSecurityGroupsUsed": "security_groups",
        "totalServerGroupsUsed": "server_groups"}
MAX_INT = 0x7FFFFFFF


def shown_quotas(caller: Any, *, classes: bool = False) -> list[str]:
    """The resources a quota set shows at the caller's microversion (2.36 drops the network ones,
    2.57 the injected files; quota classes drop the network ones at 2.50 and show server groups
    from 2.50 only)."""
    names = list(DEFAULTS)
    if caller.at(2, 57):
        names = [n for n in names if n not in NETWORK_QUOTAS + FILE_QUOTAS]
    elif caller.at(2, 50 if classes else 36):
        names = [n for n in names if n not in NETWORK_QUOTAS]
    if classes and not caller.at(2, 50):
        names = [n for n in names if n not in ("server_groups", "server_group_members")]
    return names


class QuotasMixin:
    compute: Any

    @property
    def quota_limits(self) -> QuotaLimits:
        """The own -> unified -> default class -> Nova's default chain over compute's tables."""
        return QuotaLimits(m.Quota, m.QuotaClass, lambda: self.compute.identity, "compute", UNIFIED.get,
                           lambda name: DEFAULTS.get(name, -1))

    async def default_limits(self, session: AsyncSession, class_name: str = "default") -> dict[str, int]:
        """Every project's limits before its own: identity's registered limits, else the quota
        class (``default``, or ``class_name`` over it), else Nova's defaults."""
        return await self.quota_limits.default_limits(session, DEFAULTS, class_name)

    async def project_limits(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        return await self.quota_limits.project_limits(session, project_id, DEFAULTS)

    async def limit_of(self, session: AsyncSession, project_id: str | None, resource: str) -> int:
        """One resource's limit for a project (-1: unlimited)."""
        return await self.quota_limits.limit_of(session, project_id, resource)

    async def instance_usage(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        """instances, cores and ram of a project's servers that are not deleted."""
        i = cm.Instance
        row = (await session.execute(sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(i.flavor["vcpus"].as_integer()), 0),
            sa.func.coalesce(sa.func.sum(i.flavor["memory_mb"].as_integer()), 0)).where(
            i.project_id == project_id, i.deleted == sa.false()))).one()
        return {"instances": int(row[0]), "cores": int(row[1]), "ram": int(row[2])}

    async def usage(self, session: AsyncSession, project_id: str, user_id: str | None = None) -> dict[str, int]:
        used = dict.fromkeys(DEFAULTS, 0)
        used.update(await self.instance_usage(session, project_id))
        used["server_groups"] = (await session.execute(sa.select(sa.func.count()).select_from(m.ServerGroup).where(
            m.ServerGroup.project_id == project_id))).scalar() or 0
        if user_id:
            used["key_pairs"] = (await session.execute(sa.select(sa.func.count()).select_from(m.KeyPair).where(
                m.KeyPair.user_id == user_id))).scalar() or 0
        return used

    # ------------------------------------------------------------------ the API

    async def _verify_quota_project(self, session: AsyncSession, project_id: str) -> None:
        await self._verify_project(session, project_id)  # type: ignore[attr-defined]

    async def show_quotas(self, session: AsyncSession, caller: Any, project_id: str, *,
                          user_id: str | None = None, detail: bool = False) -> dict[str, Any]:
        caller.authorize(f"os_compute_api:os-quota-sets:{'detail' if detail else 'show'}",
                         {"project_id": project_id})
        await self._verify_quota_project(session, project_id)
        limits = await self.project_limits(session, project_id)
        if not detail:
            return limits
        used = await self.usage(session, project_id, user_id)
        return {name: {"limit": limits[name], "in_use": used[name], "reserved": 0} for name in limits}

    async def quota_defaults(self, session: AsyncSession, caller: Any, project_id: str) -> dict[str, int]:
        caller.authorize("os_compute_api:os-quota-sets:defaults", {"project_id": project_id})
        await self._verify_quota_project(session, project_id)
        return await self.default_limits(session)

    async def update_quotas(self, session: AsyncSession, caller: Any, project_id: str, values: dict[str, Any],
                            *, user_id: str | None = None) -> dict[str, int]:
        """Set a project's own limits; below what it already uses is a 400 unless ``force``."""
        caller.authorize("os_compute_api:os-quota-sets:update", {"project_id": project_id})
        await self._verify_quota_project(session, project_id)
        if user_id:
            raise BadRequest("Per-user quotas are not supported: mCloud's quotas are per project, as with "
                             "unified limits.")
        force = str(values.get("force", "False")).strip().lower() in TRUE_STRINGS
        wanted = {k: int(v) for k, v in values.items() if k != "force" and (v or v == 0)}
        if not force and wanted:
            used = await self.usage(session, project_id)
            for name, value in wanted.items():
                minimum = used.get(name, 0)
                if value != -1 and value < minimum:
                    raise BadRequest(f"Quota limit {value} for {name} must be greater than or equal to already "
                                     f"used and reserved {minimum}.")
        await self.quota_limits.set_project(session, project_id, wanted)
        return await self.project_limits(session, project_id)

    async def delete_quotas(self, session: AsyncSession, caller: Any, project_id: str) -> None:
        """Back to the defaults (identity's limits, the default class, Nova's)."""
        caller.authorize("os_compute_api:os-quota-sets:delete", {"project_id": project_id})
        await self.quota_limits.delete_project(session, project_id)

    async def show_quota_class(self, session: AsyncSession, caller: Any, class_name: str) -> dict[str, int]:
        caller.authorize("os_compute_api:os-quota-class-sets:show", {})
        return await self.default_limits(session, class_name)

    async def update_quota_class(self, session: AsyncSession, caller: Any, class_name: str,
                                 values: dict[str, Any]) -> dict[str, int]:
        caller.authorize("os_compute_api:os-quota-class-sets:update", {})
        if not 1 <= len(class_name) <= 255:
            raise BadRequest("Invalid input received: quota_class_name has a minimum character requirement of 1.")
        await self.quota_limits.set_class(session, class_name, {k: int(v) for k, v in values.items()})
        return await self.default_limits(session, class_name)

    async def absolute_limits(self, session: AsyncSession, caller: Any, project_id: str | None = None,
                              ) -> dict[str, int]:
        """/limits' ``absolute``: the project's limits under Nova's names, with what it uses."""
        caller.authorize("os_compute_api:limits", {})
        if project_id and project_id != caller.project_id:
            caller.authorize("os_compute_api:limits:other_project", {"project_id": project_id})
        project_id = project_id or caller.project_id or ""
        limits = await self.project_limits(session, project_id)
        used = await self.usage(session, project_id)
        hidden: tuple[str, ...] = ()
        if caller.at(2, 57):
            hidden = NETWORK_QUOTAS + ("injected_files", "injected_file_content_bytes")
        elif caller.at(2, 36):
            hidden = NETWORK_QUOTAS
        out: dict[str, int] = {}
        for name, shown in ABSOLUTE.items():
            if name in hidden:
                continue
            for label in shown:
                if label == "maxImageMeta" and caller.at(2, 39):
                    continue
                out[label] = limits[name]
        for label, name in USED.items():
            if name not in hidden:
                out[label] = used[name]
        return out

    # ------------------------------------------------------------------ checks for the other parts

    async def check_quota(self, session: AsyncSession, project_id: str, user_id: str | None,
                          deltas: dict[str, int]) -> None:
        """403 as Nova when adding ``deltas`` (instances, cores, ram; or metadata_items,
        injected_files... as absolute counts) passes a limit: "Quota exceeded for cores: Requested
        2, but already used 19 of 20 cores"."""
        counted = {k: v for k, v in deltas.items() if k in ("instances", "cores", "ram")}
        if counted:
            used = await self.instance_usage(session, project_id)
            overs = []
            for name, delta in counted.items():
                limit = await self.limit_of(session, project_id, name)
                if limit >= 0 and delta > 0 and used[name] + delta > limit:
                    overs.append((name, delta, used[name], limit))
            if overs:
                raise Forbidden(over_quota_message(overs))
        for name, count in deltas.items():
            if name in counted:
                continue
            limit = await self.limit_of(session, project_id, name)
            if limit < 0 or count <= limit:
                continue
            if name == "metadata_items":
                raise Forbidden(f"Quota exceeded for metadata_items: Maximum number of metadata items exceeds "
                                f"{limit}")
            if name == "injected_files":
                raise Forbidden("Personality file limit exceeded")
            if name == "injected_file_path_bytes":
                raise Forbidden(f"Personality file path exceeds maximum {limit}")
            if name == "injected_file_content_bytes":
                raise Forbidden(f"Personality file content exceeds maximum {limit}")
            raise Forbidden(f"Quota exceeded for resources: ['{name}']")

    async def check_instances_quota(self, session: AsyncSession, project_id: str, user_id: str | None,
                                    flavor: dict[str, Any], min_count: int, max_count: int) -> int:
        """How many of ``max_count`` servers of ``flavor`` the project may still boot (Nova's
        check_num_instances_quota): ``max_count`` when all fit, fewer down to ``min_count``, else 403
        "Quota exceeded for instances: Requested 3, but already used 9 of 10 instances"."""
        vcpus, ram = int(flavor.get("vcpus", 0)), int(flavor.get("memory_mb", 0))
        used = await self.instance_usage(session, project_id)
        limits = {name: await self.limit_of(session, project_id, name) for name in ("instances", "cores", "ram")}
        per = {"instances": 1, "cores": vcpus, "ram": ram}
        allowed = max_count
        for name, each in per.items():
            if limits[name] >= 0 and each:
                allowed = min(allowed, (limits[name] - used[name]) // each)
        if allowed >= max_count:
            return max_count
        if allowed >= min_count and allowed > 0:
            return allowed
        requested = max_count if min_count == max_count else f"{min_count}-{max_count}"
        overs = []
        for name, each in per.items():
            if limits[name] >= 0 and used[name] + each * max(min_count, 1) > limits[name]:
                overs.append((name, requested if name == "instances" else each * max_count, used[name],
                              limits[name]))
        raise Forbidden(over_quota_message(overs))


def over_quota_message(overs: list[tuple[str, Any, int, int]]) -> str:
    """Nova's TooManyInstances text for (resource, requested, used, limit) tuples."""
    names = ", ".join(o[0] for o in overs)
    return (f"Quota exceeded for {names}: Requested {', '.join(str(o[1]) for o in overs)}, but already used "
            f"{', '.join(str(o[2]) for o in overs)} of {', '.join(str(o[3]) for o in overs)} {names}")
