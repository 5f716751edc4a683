"""Shared helpers for the volume API tests (every volume part may import them): a thin Cinder
client over the in-process app, Cinder's fault check (the same wsgi Fault body as Nova's), and a
world of projects and callers.

::

    @pytest_asyncio.fixture(scope="module", loop_scope="session")
    async def w(cloud) -> AsyncIterator[VolumeWorld]:
        async with volume_world(cloud) as world:
            yield world

    vol = (await w["member"].post("/volumes", {"volume": {"size": 1}}, expect=202)).json()["volume"]
    await wait_volume(w["member"], vol["id"], "available")
    assert_fault(await w["other"].get(f"/volumes/{vol['id']}"), 404, "itemNotFound")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.api.compute_helpers import ComputeWorld, Nova
from tests.api.compute_helpers import assert_fault as _nova_fault
from tests.api.conftest import Keystone, admin_keystone, uniq

ROOT = "/volume"
V3 = ROOT + "/v3"
#: Cinder's fault names (cinder/api/openstack/wsgi.py Fault): Nova's less 429
FAULT_NAMES = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 501: "notImplemented",
               503: "serviceUnavailable"}


def assert_fault(r: httpx.Response, status: int, name: str | None = None, contains: str | None = None) -> str:
    """Cinder's fault body ``{"<name>": {"code": status, "message": ...}}``; returns the message."""
    return _nova_fault(r, status, name or FAULT_NAMES.get(status, "computeFault"), contains)


class Cinder(Nova):
    """Requests against /volume/v3 with one caller's token, at one microversion (``"3.0"`` by
    default, as a client that sends no header; ``at("latest")`` or ``at("3.27")`` for another).
    ``in_url=True`` puts the caller's project id in the URL (``/volume/v3/{project_id}/...``)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None, project_id: str | None = None,
                 user_id: str | None = None, version: str | None = None, in_url: bool = False):
        super().__init__(client, token, project_id, user_id, version)
        self.in_url = in_url

    def at(self, version: str | None) -> Cinder:
        return Cinder(self.client, self.token, self.project_id, self.user_id, version, self.in_url)

    def as_(self, token: str | None) -> Cinder:
        return Cinder(self.client, token, None, None, self.version)

    def with_project_in_url(self, on: bool = True) -> Cinder:
        return Cinder(self.client, self.token, self.project_id, self.user_id, self.version, on)

    async def request(self, method: str, path: str, json: Any = None, *, expect: int | None = None,
                      headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        h = {"OpenStack-API-Version": f"volume {self.version}"} if self.version else {}
        if self.token:
            h["X-Auth-Token"] = self.token
        url = path if path == ROOT or path.startswith(ROOT + "/") else V3 + (f"/{self.project_id}" if self.in_url else "") + path
        r = await self.client.request(method, url, json=json, headers={**h, **(headers or {})}, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {url} -> {r.status_code}: {r.text}"
        return r

    async def action(self, volume_id: str, name: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.post(f"/volumes/{volume_id}/action", {name: body}, **kw)


@dataclasses.dataclass
class VolumeWorld:
    """Projects ``a`` (callers ``member``, ``reader``) and ``b`` (``other``), and the admin."""

    cloud: Any
    ks: Keystone
    admin: Cinder
    callers: dict[str, Cinder]
    projects: dict[str, str]

    def __getitem__(self, who: str) -> Cinder:
        return self.admin if who == "admin" else self.callers[who]

    #: a public, active raw image made by the admin (compute's helper: same attributes)
    image = ComputeWorld.image

    async def volume(self, who: str = "member", wait: str | None = "available", **fields: Any) -> dict[str, Any]:
        """A volume of ``who`` (1 GB unless ``fields`` say otherwise), waited to ``wait``: its view."""
        body = {"volume": {"size": 1, "name": uniq("vol"), **fields}}
        vol = (await self[who].post("/volumes", body, expect=202)).json()["volume"]
        return await wait_volume(self[who], vol["id"], wait) if wait else vol


async def wait_volume(cinder: Cinder, volume_id: str, status: str | set[str], timeout: float = 20,
                      collection: str = "volumes") -> dict[str, Any]:
    """Poll GET /volumes/{id} (or /snapshots/{id}, ...) until its status is ``status``
    (``"deleted"``: until a 404); the body."""
    wanted = {status} if isinstance(status, str) else status
    single = collection[:-1]
    deadline = asyncio.get_running_loop().time() + timeout
    current: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        r = await cinder.get(f"/{collection}/{volume_id}")
        if r.status_code == 404 and "deleted" in wanted:
            return {"status": "deleted"}
        assert r.status_code == 200, r.text
        current = r.json()[single]
        if current["status"] in wanted:
            return current
        if current["status"].startswith("error") and not any(s.startswith("error") for s in wanted):
            raise AssertionError(f"{single} {volume_id} went to {current['status']}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"{single} {volume_id} is {current.get('status')}, not {wanted}, after {timeout}s")


@contextlib.asynccontextmanager
async def volume_world(cloud: Any) -> AsyncIterator[VolumeWorld]:
    async with admin_keystone(cloud) as (ks, admin_id):
        projects = {k: (await ks.make_project())["id"] for k in "ab"}
        roles = {"member": ("a", "member"), "reader": ("a", "reader"), "other": ("b", "member")}
        callers = {}
        for who, (where, role) in roles.items():
            user = await ks.make_user()
            await ks.grant(user["id"], role, project_id=projects[where])
            token = await ks.token_for(user["id"], user["password"], project_id=projects[where])
            callers[who] = Cinder(ks.client, token, projects[where], user["id"])
        admin_project = (await ks.validate(ks.token)).json()["token"]["project"]["id"]
        admin = Cinder(ks.client, ks.token, admin_project, admin_id)
        yield VolumeWorld(cloud, ks, admin, callers, projects)


__all__ = ["V3", "Cinder", "VolumeWorld", "assert_fault", "uniq", "volume_world", "wait_volume"]
