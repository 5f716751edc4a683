"""Helpers for the L3 API tests (routers, floating IPs, security groups, QoS, trunks), on top of
CORE's Neutron client (``network_helpers``): a world with an external network and two projects
that each have a member, a reader and a network with a subnet."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import Keystone, admin_keystone
from tests.api.network_helpers import Neutron, assert_fault

_public = itertools.count(1)
neutron_error = assert_fault


class L3Neutron(Neutron):
    async def make(self, collection: str, resource: str, **body: Any) -> dict[str, Any]:
        return (await self.post(f"/{collection}", {resource: body}, expect=201)).json()[resource]

    async def router(self, **body: Any) -> dict[str, Any]:
        return await self.make("routers", "router", **body)


@dataclass
class Project:
    id: str
    neutron: L3Neutron
    reader: L3Neutron
    network: dict[str, Any]
    subnet: dict[str, Any]


@dataclass
class L3World:
    admin: L3Neutron
    public: dict[str, Any]
    public_subnet: dict[str, Any]
    alice: Project
    bob: Project


async def project(ks: Keystone, client: httpx.AsyncClient) -> Project:
    _user, proj, token = await ks.member("member")
    _reader, _, reader_token = await ks.member("reader", project=proj)
    neutron = L3Neutron(client, token, proj["id"])
    network, subnet = await neutron.net_with_subnet()
    return Project(proj["id"], neutron, L3Neutron(client, reader_token, proj["id"]), network, subnet)


async def l3_world(cloud: Any) -> AsyncIterator[L3World]:
    """For a module-scoped fixture: an external network (the admin's) and two projects."""
    async with admin_keystone(cloud) as (ks, _admin_id):
        admin = L3Neutron(ks.client, ks.token)  # type: ignore[arg-type]
        public = await admin.network(name="public", **{"router:external": True})
        n = next(_public)
        public_subnet = await admin.subnet(public["id"], cidr=f"172.{16 + n // 250}.{n % 250}.0/24")
        yield L3World(admin, public, public_subnet, await project(ks, ks.client), await project(ks, ks.client))


def world_fixture() -> Any:
    """A module-scoped fixture of an L3 world: ``w = world_fixture()`` in a test module."""

    @pytest.fixture(scope="module")
    async def world(cloud: Any) -> AsyncIterator[L3World]:
        async for made in l3_world(cloud):
            yield made

    return world
