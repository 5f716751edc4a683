"""Shared helpers for the compute API tests (every compute part may import them): a thin Nova
client over the in-process app, Nova's fault check, and a world of projects and callers with the
images and networks servers are booted from.

::

    @pytest_asyncio.fixture(scope="module", loop_scope="session")
    async def w(cloud) -> AsyncIterator[ComputeWorld]:
        async with compute_world(cloud) as world:
            yield world

    r = await w["member"].post("/servers", {"server": {...}}, expect=202)
    assert_fault(await w["other"].get(f"/servers/{sid}"), 404, "itemNotFound")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.api.conftest import Keystone, admin_keystone, uniq
from tests.api.network_helpers import Neutron, next_cidr

ROOT = "/compute"
V21 = ROOT + "/v2.1"
FAULT_NAMES = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
               501: "notImplemented", 503: "serviceUnavailable"}


def assert_fault(r: httpx.Response, status: int, name: str | None = None, contains: str | None = None) -> str:
    """Nova's fault body ``{"<name>": {"code": status, "message": ...}}``; returns the message."""
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    body = r.json()
    assert len(body) == 1, body
    (key, fault), = body.items()
    assert key == (name or FAULT_NAMES.get(status, "computeFault")), body
    assert fault["code"] == status and isinstance(fault["message"], str) and fault["message"], body
    if contains is not None:
        assert contains in fault["message"], fault["message"]
    return fault["message"]


class Nova:
    """Requests against /compute/v2.1 with one caller's token, at one microversion
    (``"latest"`` by default; ``at("2.1")`` for another)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None, project_id: str | None = None,
                 user_id: str | None = None, version: str | None = "latest"):
        self.client = client
        self.token = token
        self.project_id = project_id
        self.user_id = user_id
        self.version = version

    def at(self, version: str | None) -> Nova:
        return Nova(self.client, self.token, self.project_id, self.user_id, version)

    def as_(self, token: str | None) -> Nova:
        return Nova(self.client, token, None, None, self.version)

    async def request(self, method: str, path: str, json: Any = None, *, expect: int | None = None,
                      headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        h = {"X-Auth-Token": self.token} if self.token else {}
        if self.version:
            h["OpenStack-API-Version"] = f"compute {self.version}"
        h.update(headers or {})
        url = path if path.startswith(ROOT) else V21 + path
        r = await self.client.request(method, url, json=json, headers=h, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} -> {r.status_code}: {r.text}"
        return r

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    async def action(self, server_id: str, name: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.post(f"/servers/{server_id}/action", {name: body}, **kw)


@dataclasses.dataclass
class ComputeWorld:
    """Projects ``a`` (callers ``member``, ``reader``) and ``b`` (``other``), the admin, a public
    image (``image_id``) and a network with a subnet in project a (``network_id``)."""

    cloud: Any
    ks: Keystone
    admin: Nova
    callers: dict[str, Nova]
    projects: dict[str, str]
    neutron: dict[str, Neutron]
    image_id: str = ""
    network_id: str = ""
    flavor_id: str = "1"  # m1.tiny (devstack's default flavors)

    def __getitem__(self, who: str) -> Nova:
        return self.admin if who == "admin" else self.callers[who]

    async def image(self, name: str | None = None, data: bytes = b"\0" * 1024, **fields: Any) -> str:
        """A public, active raw image made by the admin: its id."""
        h = {"X-Auth-Token": self.admin.token}
        body = {"name": name or uniq("img"), "disk_format": "raw", "container_format": "bare",
                "visibility": "public", **fields}
        r = await self.ks.client.post("/image/v2/images", json=body, headers=h)
        assert r.status_code == 201, r.text
        image_id = r.json()["id"]
        r = await self.ks.client.put(f"/image/v2/images/{image_id}/file", content=data,
                                     headers={**h, "Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        return image_id

    async def network(self, who: str = "member") -> str:
        """A network with one IPv4 subnet in the caller's project: its id."""
        net, _ = await self.neutron[who].net_with_subnet(cidr=next_cidr())
        return net["id"]


async def wait_for(nova: Nova, server_id: str, status: str | set[str], timeout: float = 20,
                   task_state_none: bool = True) -> dict[str, Any]:
    """Poll GET /servers/{id} until its status is ``status`` (and no task is under way); the body."""
    wanted = {status} if isinstance(status, str) else status
    deadline = asyncio.get_running_loop().time() + timeout
    server: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        r = await nova.get(f"/servers/{server_id}")
        if r.status_code == 404 and "DELETED" in wanted:
            return {"status": "DELETED"}
        assert r.status_code == 200, r.text
        server = r.json()["server"]
        if server["status"] in wanted and (not task_state_none or server.get("OS-EXT-STS:task_state") is None):
            return server
        if server["status"] == "ERROR" and "ERROR" not in wanted and "DELETED" not in wanted:
            raise AssertionError(f"server {server_id} went to ERROR: {server.get('fault')}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"server {server_id} is {server.get('status')}/{server.get('OS-EXT-STS:task_state')}, "
                         f"not {wanted}, after {timeout}s")


async def boot_server(w: ComputeWorld, who: str = "member", **fields: Any) -> str:
    """A server of ``who`` on the world's image, m1.tiny and network (``fields`` override),
    waited to ACTIVE: its id."""
    body = {"server": {"name": uniq("vm"), "flavorRef": w.flavor_id, "imageRef": w.image_id,
                       "networks": [{"uuid": w.network_id}], **fields}}
    sid = (await w[who].post("/servers", body, expect=202)).json()["server"]["id"]
    await wait_for(w[who], sid, "ACTIVE")
    return sid


async def remove_hosts(w: ComputeWorld, hosts: list[str]) -> None:
    """Delete the compute services (and their nodes and providers) of hosts a test registered with
    no agent behind them: left "up" in a shared cloud, they would draw later modules' servers."""
    services = (await w.admin.at("2.53").get("/os-services?binary=nova-compute", expect=200)).json()["services"]
    for svc in services:
        if svc["host"] in hosts:
            await w.admin.at("2.53").delete(f"/os-services/{svc['id']}", expect=204)


@contextlib.asynccontextmanager
async def compute_world(cloud: Any) -> AsyncIterator[ComputeWorld]:
    async with admin_keystone(cloud) as (ks, admin_id):
        projects = {k: (await ks.make_project())["id"] for k in "ab"}
        roles = {"member": ("a", "member"), "reader": ("a", "reader"), "other": ("b", "member")}
        callers, neutron = {}, {}
        for who, (where, role) in roles.items():
            user = await ks.make_user()
            await ks.grant(user["id"], role, project_id=projects[where])
            token = await ks.token_for(user["id"], user["password"], project_id=projects[where])
            callers[who] = Nova(ks.client, token, projects[where], user["id"])
            neutron[who] = Neutron(ks.client, token, projects[where])
        admin_project = (await ks.validate(ks.token)).json()["token"]["project"]["id"]
        admin = Nova(ks.client, ks.token, admin_project, admin_id)
        neutron["admin"] = Neutron(ks.client, ks.token, admin_project)
        async with cloud.compute.db.write() as session:
            await cloud.compute.resources.make_default_flavors(session)
        world = ComputeWorld(cloud, ks, admin, callers, projects, neutron)
        world.image_id = await world.image()
        world.network_id = await world.network()
        yield world


__all__ = ["V21", "ComputeWorld", "Nova", "assert_fault", "boot_server", "compute_world", "remove_hosts", "uniq",
           "wait_for"]
