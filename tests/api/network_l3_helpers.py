"""Helpers for the L3 API tests (routers, floating IPs, security groups, QoS, trunks): a thin
Neutron client over the in-process app, factories for the resources a test needs, and the
check that a fault is Neutron's ``{"NeutronError": {"type", "message", "detail"}}``."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.api.conftest import Keystone, admin_keystone

V2 = "/networking/v2.0"
_cidrs = itertools.count(1)


def next_cidr() -> str:
    """A /24 no other test of the session uses (subnets of one router must not overlap)."""
    n = next(_cidrs)
    return str(ipaddress.ip_network(f"10.{n // 250}.{n % 250}.0/24"))


def neutron_error(r: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    body = r.json()
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"} and err["message"], body
    if type_ is not None:
        assert err["type"] == type_, body
    return err


class Neutron:
    def __init__(self, client: httpx.AsyncClient, token: str):
        self.client = client
        self.token = token

    def as_(self, token: str) -> Neutron:
        return Neutron(self.client, token)

    async def request(self, method: str, path: str, json: Any = None, *, expect: int | None = None,
                      **kw: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, **kw.pop("headers", {})}
        r = await self.client.request(method, V2 + path, json=json, headers=headers, **kw)
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

    async def make(self, collection: str, resource: str, **body: Any) -> dict[str, Any]:
        return (await self.post(f"/{collection}", {resource: body}, expect=201)).json()[resource]

    async def network(self, **body: Any) -> dict[str, Any]:
        return await self.make("networks", "network", **body)

    async def subnet(self, network_id: str, cidr: str | None = None, **body: Any) -> dict[str, Any]:
        cidr = cidr or next_cidr()
        return await self.make("subnets", "subnet", network_id=network_id, cidr=cidr,
                               ip_version=ipaddress.ip_network(cidr).version, **body)

    async def port(self, network_id: str, **body: Any) -> dict[str, Any]:
        return await self.make("ports", "port", network_id=network_id, **body)

    async def router(self, **body: Any) -> dict[str, Any]:
        return await self.make("routers", "router", **body)


@dataclass
class Project:
    """A project with a member (``neutron``) and a reader, and a network + subnet of its own."""

    id: str
    neutron: Neutron
    reader: Neutron
    network: dict[str, Any]
    subnet: dict[str, Any]


@dataclass
class L3World:
    admin: Neutron
    public: dict[str, Any]
    public_subnet: dict[str, Any]
    alice: Project
    bob: Project


async def project(ks: Keystone, client: httpx.AsyncClient) -> Project:
    _user, proj, token = await ks.member("member")
    _reader, _, reader_token = await ks.member("reader", project=proj)
    neutron = Neutron(client, token)
    network = await neutron.network(name="private")
    subnet = await neutron.subnet(network["id"])
    return Project(proj["id"], neutron, Neutron(client, reader_token), network, subnet)


async def l3_world(cloud: Any) -> AsyncIterator[L3World]:
    """For a module-scoped fixture: an external network (admin's) and two projects."""
    async with admin_keystone(cloud) as (ks, _admin_id):
        admin = Neutron(ks.client, ks.token)  # type: ignore[arg-type]
        public = await admin.network(name="public", **{"router:external": True})
        public_subnet = await admin.subnet(public["id"], cidr=f"172.{16 + next(_cidrs) % 16}.{next(_cidrs) % 250}.0/24")
        yield L3World(admin, public, public_subnet, await project(ks, ks.client), await project(ks, ks.client))
