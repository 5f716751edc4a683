"""A thin Neutron client over the in-process app, a world of projects and callers, and factories
for uniquely named networks, subnets and ports (the cloud is shared by the whole session, so
every test makes its own objects in projects of its own)."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.api.conftest import Keystone, admin_keystone, uniq

ROOT = "/networking"
V2 = ROOT + "/v2.0"
_cidrs = itertools.count(1)


def next_cidr() -> str:
    """A /24 no other test of the session uses (10.x.y.0/24)."""
    n = next(_cidrs)
    return f"10.{100 + n // 256}.{n % 256}.0/24"


def assert_fault(r: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """Neutron's fault body ``{"NeutronError": {"type", "message", "detail"}}`` with ``status``."""
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    body = r.json()
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    assert isinstance(err["message"], str) and err["message"], err
    if type_ is not None:
        assert err["type"] == type_, err
    return err


class Neutron:
    """Requests against /networking/v2.0 with one caller's token."""

    def __init__(self, client: httpx.AsyncClient, token: str | None, project_id: str | None = None):
        self.client = client
        self.token = token
        self.project_id = project_id

    def as_(self, token: str | None, project_id: str | None = None) -> Neutron:
        return Neutron(self.client, token, project_id)

    async def request(self, method: str, path: str, json: Any = None, *, expect: int | None = None,
                      headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        h = {"X-Auth-Token": self.token} if self.token else {}
        h.update(headers or {})
        url = path if path.startswith(ROOT) else V2 + path
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

    # ---------------------------------------------------------------- factories

    async def network(self, **fields: Any) -> dict[str, Any]:
        r = await self.post("/networks", {"network": {"name": uniq("net"), **fields}}, expect=201)
        return r.json()["network"]

    async def subnet(self, network_id: str, cidr: str | None = None, ip_version: int = 4,
                     **fields: Any) -> dict[str, Any]:
        body = {"network_id": network_id, "cidr": cidr or next_cidr(), "ip_version": ip_version, **fields}
        r = await self.post("/subnets", {"subnet": body}, expect=201)
        return r.json()["subnet"]

    async def port(self, network_id: str, **fields: Any) -> dict[str, Any]:
        r = await self.post("/ports", {"port": {"network_id": network_id, **fields}}, expect=201)
        return r.json()["port"]

    async def net_with_subnet(self, **subnet_fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        net = await self.network()
        return net, await self.subnet(net["id"], **subnet_fields)

    async def ids(self, collection: str, **params: Any) -> list[str]:
        r = await self.get(f"/{collection}", params=params, expect=200)
        return [x["id"] for x in r.json()[collection.replace("-", "_")]]


@dataclasses.dataclass
class World:
    ks: Keystone
    admin: Neutron
    callers: dict[str, Neutron]
    projects: dict[str, str]

    def __getitem__(self, who: str) -> Neutron:
        return self.admin if who == "admin" else self.callers[who]


@contextlib.asynccontextmanager
async def make_world(cloud: Any) -> AsyncIterator[World]:
    """Projects A (member, reader), B (other) and C (third), each caller with a project token."""
    async with admin_keystone(cloud) as (ks, _admin_id):
        projects = {k: (await ks.make_project())["id"] for k in "abc"}
        roles = {"member": ("a", "member"), "reader": ("a", "reader"), "other": ("b", "member"),
                 "third": ("c", "member")}
        callers = {}
        for who, (where, role) in roles.items():
            user = await ks.make_user()
            await ks.grant(user["id"], role, project_id=projects[where])
            token = await ks.token_for(user["id"], user["password"], project_id=projects[where])
            callers[who] = Neutron(ks.client, token, projects[where])
        admin_project = (await ks.validate(ks.token)).json()["token"]["project"]["id"]
        yield World(ks, Neutron(ks.client, ks.token, admin_project), callers, projects)


__all__ = ["V2", "Neutron", "World", "assert_fault", "make_world", "next_cidr", "uniq"]
