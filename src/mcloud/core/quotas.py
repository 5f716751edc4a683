"""Quota limits as the services that keep OpenStack's old quota APIs read them (compute's
os-quota-sets, volume's): for one project and resource, the first found wins:

1. the project's own value set through os-quota-sets (the service's quota table),
2. identity's unified limit for the service (the project's limit, else the registered default),
3. the ``default`` quota class as os-quota-class-sets set it (the service's quota class table),
4. the service's built-in default.

-1 means unlimited. :class:`QuotaLimits` works on any pair of tables with the columns
``project_id, resource, hard_limit`` and ``class_name, resource, hard_limit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

TRUE_STRINGS = ("1", "t", "true", "on", "y", "yes")


class QuotaLimits:
    """``identity``: a callable giving the identity service (or None); ``service_type``: whose unified
    limits; ``unified``: the unified-limit name of a resource (None: not read from identity);
    ``default``: the built-in default of a resource."""

    def __init__(self, quota: Any, quota_class: Any, identity: Callable[[], Any], service_type: str,
                 unified: Callable[[str], str | None], default: Callable[[str], int]):
        self.quota = quota
        self.quota_class = quota_class
        self.identity = identity
        self.service_type = service_type
        self.unified = unified
        self.default = default

    async def unified_limit(self, session: AsyncSession, project_id: str | None, resource: str) -> int | None:
        identity = self.identity()
        name = self.unified(resource)
        if identity is None or name is None:
            return None
        # a project id no project has: identity answers with the registered default alone
        return await identity.effective_limit(session, project_id or "", self.service_type, name)

    async def classes(self, session: AsyncSession, names: Iterable[str]) -> dict[str, dict[str, int]]:
        rows = await session.execute(sa.select(self.quota_class).where(self.quota_class.class_name.in_(set(names))))
        out: dict[str, dict[str, int]] = {}
        for row in rows.scalars():
            out.setdefault(row.class_name, {})[row.resource] = row.hard_limit
        return out

    async def default_limits(self, session: AsyncSession, resources: Iterable[str],
                             class_name: str = "default") -> dict[str, int]:
        """Every project's limits before its own: identity's registered limits, else the quota
        class (``default``, or ``class_name`` over it), else the built-in defaults."""
        classes = await self.classes(session, {"default", class_name})
        out = {}
        for name in resources:
            registered = await self.unified_limit(session, None, name)
            if class_name != "default" and name in classes.get(class_name, {}):
                out[name] = classes[class_name][name]
            elif registered is not None:
                out[name] = registered
            else:
                out[name] = classes.get("default", {}).get(name, self.default(name))
        return out

    async def own(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        """What os-quota-sets set for the project."""
        rows = await session.execute(sa.select(self.quota).where(self.quota.project_id == project_id))
        return {row.resource: row.hard_limit for row in rows.scalars()}

    async def project_limits(self, session: AsyncSession, project_id: str, resources: Iterable[str],
                             ) -> dict[str, int]:
        resources = list(resources)
        own = await self.own(session, project_id)
        defaults = await self.default_limits(session, resources)
        out = {}
        for name in resources:
            if name in own:
                out[name] = own[name]
                continue
            unified = await self.unified_limit(session, project_id, name)
            out[name] = unified if unified is not None else defaults[name]
        return out

    async def limit_of(self, session: AsyncSession, project_id: str | None, resource: str) -> int:
        """One resource's limit for a project (-1: unlimited)."""
        if project_id:
            own = await session.get(self.quota, (project_id, resource))
            if own is not None:
                return own.hard_limit
        unified = await self.unified_limit(session, project_id, resource)
        if unified is not None:
            return unified
        row = await session.get(self.quota_class, ("default", resource))
        return row.hard_limit if row is not None else self.default(resource)

    async def _put(self, session: AsyncSession, model: Any, key: tuple[str, str], values: dict[str, Any]) -> None:
        row = await session.get(model, key)
        if row is None:
            session.add(model(**values))
        else:
            row.hard_limit = values["hard_limit"]

    async def set_project(self, session: AsyncSession, project_id: str, values: Mapping[str, int]) -> None:
        for name, value in values.items():
            await self._put(session, self.quota, (project_id, name),
                            {"project_id": project_id, "resource": name, "hard_limit": int(value)})
        await session.flush()

    async def set_class(self, session: AsyncSession, class_name: str, values: Mapping[str, int]) -> None:
        for name, value in values.items():
            await self._put(session, self.quota_class, (class_name, name),
                            {"class_name": class_name, "resource": name, "hard_limit": int(value)})
        await session.flush()

    async def delete_project(self, session: AsyncSession, project_id: str) -> None:
        await session.execute(sa.delete(self.quota).where(self.quota.project_id == project_id))
