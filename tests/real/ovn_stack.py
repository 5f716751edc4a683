"""The whole network service on a real OVN data plane, for the tests that drive it through the
Neutron API: a cloud (in-process, SQLite) with ``[network] driver = "ovn"`` on a data plane of
its own (tests/ovn.py), an admin ``Neutron`` client, and helpers that turn ports into guests
(namespaces plugged as the port, addressed by OVN's DHCP).

    async with ovn_stack(data_dir) as stack:
        net = await stack.neutron.network(name="private")
        port = await stack.port(net["id"])
        ns, lease = await stack.guest(port)

One stack per test module (a module-scoped fixture): each has its own daemons, since a cloud's
``sync`` owns every mCloud row of the Northbound database it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from mcloud import migrations
from mcloud.app import Cloud
from mcloud.core.config import Config
from tests.api.network_helpers import Neutron
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, TEST_ENV, get_token
from tests.harness import missing
from tests.ovn import OvnHarness, ovn_missing


class Stack:
    def __init__(self, ovn: OvnHarness, cloud: Cloud, neutron: Neutron):
        self.ovn = ovn
        self.cloud = cloud
        self.neutron = neutron

    async def port(self, network_id: str, **fields: Any) -> dict[str, Any]:
        """A port bound to this chassis (``binding:host_id``), as Nova asks for a guest's."""
        return await self.neutron.port(network_id, **{"binding:host_id": self.ovn.options.chassis, **fields})

    async def get_port(self, port_id: str) -> dict[str, Any]:
        return (await self.neutron.get(f"/ports/{port_id}", expect=200)).json()["port"]

    async def wait_status(self, port_id: str, status: str = "ACTIVE", timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            port = await self.get_port(port_id)
            if port["status"] == status:
                return
            assert time.monotonic() < deadline, f"port {port_id} stayed {port['status']}, not {status}"
            await asyncio.sleep(0.05)

    async def plug(self, port: dict[str, Any], label: str = "vm") -> str:
        """A namespace plugged as ``port`` (its ``eth0``), once the port is ACTIVE."""
        ns = self.ovn.ns.add(label)
        await asyncio.to_thread(self.ovn.host.plug_namespace, port["id"], port["mac_address"], ns)
        await self.wait_status(port["id"])
        return ns

    async def guest(self, port: dict[str, Any], label: str = "vm") -> tuple[str, dict[str, str]]:
        """A namespace plugged as ``port``, its address from OVN's DHCP; (namespace, lease)."""
        ns = await self.plug(port, label)
        lease = await asyncio.to_thread(self.ovn.ns.dhcp, ns, "eth0")
        return ns, lease

    async def default_group(self, port: dict[str, Any]) -> dict[str, Any]:
        """The project's default security group, which ``port`` is in."""
        groups = (await self.neutron.get("/security-groups", params={"name": "default"},
                                         expect=200)).json()["security_groups"]
        return next(g for g in groups if g["id"] in port["security_groups"])

    async def allow(self, group_id: str, protocol: str, port: int | None = None,
                    remote_ip_prefix: str = "0.0.0.0/0") -> None:
        """An ingress rule on ``group_id`` for ``protocol`` (and destination ``port``) from anywhere."""
        rule: dict[str, Any] = {"security_group_id": group_id, "direction": "ingress", "protocol": protocol,
                                "ethertype": "IPv4", "remote_ip_prefix": remote_ip_prefix}
        if port is not None:
            rule.update(port_range_min=port, port_range_max=port)
        await self.neutron.post("/security-group-rules", {"security_group_rule": rule}, expect=201)


@contextlib.asynccontextmanager
async def ovn_stack(data_dir: Path) -> AsyncIterator[Stack]:
    """A data plane, a cloud on it with the ovn driver, and an admin client; all gone after."""
    if (what := ovn_missing()) is not None:
        missing(what)
    with OvnHarness() as ovn:
        config = Config(data_dir=data_dir, overrides={
            "database": {"url": f"sqlite:///{data_dir / 'mcloud.db'}"},
            "network": {"driver": "ovn", "ovn": ovn.driver_options()}},
            environ={**TEST_ENV, "MCLOUD_SERVER_PORT": "8080"})
        migrations.upgrade(config.database_url)
        cloud = Cloud(config)
        await cloud.bootstrap(ADMIN_PASSWORD, DEMO_PASSWORD)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cloud.app),
                                         base_url="http://mcloud.test") as client:
                token = await get_token(client, "admin", ADMIN_PASSWORD, project="admin")
                yield Stack(ovn, cloud, Neutron(client, token))
        finally:
            await cloud.close()
