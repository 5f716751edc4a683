"""The compute hosts' registry and host operations, called in-process on a real (SQLite)
cloud: hosts register as Placement providers with their inventory and traits, heartbeats make
them up or down, and operations sent inside a transaction are run by the host's agent (three
simulated fake hosts here) with results, failures and timeouts as the conductor sees them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from mcloud import migrations
from mcloud.app import Cloud
from mcloud.compute import states
from mcloud.compute.hosts import HostOpFailed, HostTimeout
from mcloud.compute.models import Instance
from mcloud.compute.models_hosts import ComputeNode, ComputeServiceRow, HostOp
from mcloud.core.config import Config
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, TEST_ENV

IMAGE_DATA = b"\x00fake image data\x00" * 1000


@pytest.fixture(scope="module")
async def cloud(tmp_path_factory) -> AsyncIterator[Cloud]:
    data_dir = tmp_path_factory.mktemp("hosts")
    db = f"sqlite:///{data_dir / 'mcloud.db'}"
    config = Config(data_dir=data_dir, overrides={
        "database": {"url": db},
        "compute": {"host": "cn", "fake": {"hosts": 3, "vcpus": 8, "memory_mb": 4096, "disk_gb": 100},
                    "report_interval": 3600, "service_down_time": 60}},
        environ={**TEST_ENV, "MCLOUD_SERVER_PORT": "8080"})
    migrations.upgrade(config.database_url)
    c = Cloud(config)
    await c.bootstrap(ADMIN_PASSWORD, DEMO_PASSWORD)
    await c.compute.hosts.start()
    yield c
    await c.close()


async def make_instance(cloud: Cloud, host: str, **fields) -> Instance:
    async with cloud.db.write() as session:
        inst = Instance(uuid=str(uuid.uuid4()), project_id="proj", user_id="user", name=fields.pop("name", "vm"),
                        hostname=fields.pop("hostname", "vm"), image_ref=fields.pop("image_ref", ""),
                        flavor={"id": "1", "name": "tiny", "vcpus": 1, "memory_mb": 64, "root_gb": 1,
                                "ephemeral_gb": 0, "swap": 0, "extra_specs": {}},
                        host=host, node=host, vm_state=states.BUILDING, availability_zone="nova", **fields)
        session.add(inst)
    return inst


async def test_local_hosts_register_with_placement(cloud):
    hosts = cloud.compute.hosts
    assert sorted(hosts.agents) == ["cn-1", "cn-2", "cn-3"]
    async with cloud.db.read() as session:
        services = await hosts.services(session)
        state = await hosts.candidates_state(session)
        provider = await hosts.provider_of(session, "cn-2")
    assert {(s.host, s.binary) for s in services} >= {
        ("cn-1", "nova-compute"), ("cn-2", "nova-compute"), ("cn-3", "nova-compute"),
        ("cn", "nova-scheduler"), ("cn", "nova-conductor")}
    assert set(state) == {"cn-1", "cn-2", "cn-3"}
    s2 = state["cn-2"]
    assert s2.up and s2.enabled and not s2.forced_down and s2.az == "nova" and s2.node == "cn-2"
    assert s2.provider_uuid == provider
    rp = await cloud.placement.get_provider(provider)
    assert rp.name == "cn-2"
    _, inv = await cloud.placement.get_inventories(provider)
    assert inv["VCPU"].total == 8 and inv["VCPU"].allocation_ratio == 16.0
    assert inv["MEMORY_MB"].total == 4096 and inv["MEMORY_MB"].reserved == 512
    assert inv["MEMORY_MB"].allocation_ratio == 1.5 and inv["DISK_GB"].total == 100
    _, traits = await cloud.placement.get_provider_traits(provider)
    assert {"COMPUTE_NODE", "COMPUTE_NET_ATTACH_INTERFACE"} <= set(traits)


async def test_registering_again_keeps_the_provider_and_operator_traits(cloud):
    hosts = cloud.compute.hosts
    driver = hosts.agent("cn-1").driver
    async with cloud.db.read() as session:
        before = await hosts.provider_of(session, "cn-1")
    await cloud.placement.put_trait("CUSTOM_GOLD")
    await cloud.placement.set_provider_traits(
        before, sorted(set((await cloud.placement.get_provider_traits(before))[1]) | {"CUSTOM_GOLD"}), None)
    driver.options["vcpus"] = 12
    try:
        node = await hosts.register("cn-1", driver.host_info())
    finally:
        driver.options["vcpus"] = 8
    assert node.uuid == before and node.vcpus == 12
    _, inv = await cloud.placement.get_inventories(before)
    assert inv["VCPU"].total == 12
    assert "CUSTOM_GOLD" in (await cloud.placement.get_provider_traits(before))[1]
    await hosts.register("cn-1", driver.host_info())
    async with cloud.db.read() as session:
        count = (await session.execute(sa.select(sa.func.count()).select_from(ComputeNode)
                                       .where(ComputeNode.host == "cn-1"))).scalar_one()
    assert count == 1


async def test_up_and_down_from_heartbeats(cloud):
    hosts = cloud.compute.hosts
    async with cloud.db.write() as session:
        await session.execute(sa.update(ComputeServiceRow).where(ComputeServiceRow.host == "cn-3")
                              .values(last_seen_up=datetime.utcnow() - timedelta(seconds=61)))
    async with cloud.db.read() as session:
        assert not (await hosts.candidates_state(session))["cn-3"].up
    assert await hosts.heartbeat(["cn-3"]) == 1
    async with cloud.db.read() as session:
        assert (await hosts.candidates_state(session))["cn-3"].up
    async with cloud.db.write() as session:
        svc = (await hosts.services(session, host="cn-3", binary="nova-compute"))[0]
        await hosts.update_service(session, svc, forced_down=True, disabled=True, disabled_reason="maintenance")
    async with cloud.db.read() as session:
        st = (await hosts.candidates_state(session))["cn-3"]
    assert not st.up and st.forced_down and not st.enabled and st.disabled_reason == "maintenance"
    for _ in range(50):  # the provider is marked disabled after the commit
        if "COMPUTE_STATUS_DISABLED" in (await cloud.placement.get_provider_traits(st.provider_uuid))[1]:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("COMPUTE_STATUS_DISABLED was not set")
    async with cloud.db.write() as session:
        svc = (await hosts.services(session, host="cn-3", binary="nova-compute"))[0]
        await hosts.update_service(session, svc, forced_down=False, disabled=False)
    async with cloud.db.read() as session:
        st = (await hosts.candidates_state(session))["cn-3"]
    assert st.up and st.enabled and st.disabled_reason is None
    assert await hosts.heartbeat(["no-such-host"]) == 0


async def test_a_move_target_must_be_a_compute_host_that_is_up(cloud):
    from mcloud.core.errors import BadRequest

    hosts = cloud.compute.hosts
    async with cloud.db.read() as session:
        await hosts.check_target(session, "cn-2")
        with pytest.raises(BadRequest, match="^Compute host nowhere could not be found.$"):
            await hosts.check_target(session, "nowhere")
        with pytest.raises(BadRequest, match="could not be found"):  # the controller's services are no target
            await hosts.check_target(session, hosts.controller_host)
    async with cloud.db.write() as session:
        await session.execute(sa.update(ComputeServiceRow).where(ComputeServiceRow.host == "cn-2")
                              .values(last_seen_up=datetime.utcnow() - timedelta(seconds=61)))
    try:
        async with cloud.db.read() as session:
            with pytest.raises(BadRequest, match="^Compute service of cn-2 is unavailable at this time.$"):
                await hosts.check_target(session, "cn-2")
    finally:
        assert await hosts.heartbeat(["cn-2"]) == 1
    async with cloud.db.write() as session:
        svc = (await hosts.services(session, host="cn-2", binary="nova-compute"))[0]
        await hosts.update_service(session, svc, disabled=True, disabled_reason="maintenance")
    async with cloud.db.read() as session:
        await hosts.check_target(session, "cn-2")  # disabled but up: the scheduler decides
    async with cloud.db.write() as session:
        svc = (await hosts.services(session, host="cn-2", binary="nova-compute"))[0]
        await hosts.update_service(session, svc, forced_down=True)
    try:
        async with cloud.db.read() as session:
            with pytest.raises(BadRequest, match="unavailable"):
                await hosts.check_target(session, "cn-2")
    finally:
        async with cloud.db.write() as session:
            svc = (await hosts.services(session, host="cn-2", binary="nova-compute"))[0]
            await hosts.update_service(session, svc, forced_down=False, disabled=False)


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_spawn_through_the_agent_with_image_ports_and_config_drive(cloud):
    # an image with data, and a network with a port for the instance (through their services)
    from mcloud.image.service import Caller as ImageCaller
    from mcloud.network.service import Caller as NetworkCaller

    icaller = ImageCaller("proj", is_admin=True)
    async with cloud.db.write() as session:
        image = await cloud.image.create_image(session, icaller, {"disk_format": "raw", "container_format": "bare"},
                                               {}, [])
        image_id = image.id
    await cloud.image.upload(icaller, image_id, chunks(IMAGE_DATA))
    ncaller = NetworkCaller("proj", is_admin=True)
    net = (await cloud.network.create_networks(ncaller, [{"name": "n", "project_id": "proj"}]))[0]
    await cloud.network.create_subnets(ncaller, [{"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4,
                                                  "dns_nameservers": ["10.9.0.3"], "project_id": "proj"}])
    inst = await make_instance(cloud, "cn-1", image_ref=image_id, name="web one", hostname="web-one",
                               key_name="k", key_data="ssh-ed25519 AAAA me",
                               user_data=base64.b64encode(b"echo user data here").decode())
    port = (await cloud.network.create_ports(ncaller, [{"network_id": net["id"], "device_id": inst.uuid,
                                                        "device_owner": "compute:nova", "project_id": "proj"}]))[0]

    hosts = cloud.compute.hosts
    payload = await hosts.instance_payload(inst, meta={"role": "web"})
    assert payload["image"]["os_hash_value"] == hashlib.sha512(IMAGE_DATA).hexdigest()
    assert payload["vifs"] == [{"port_id": port["id"], "mac": port["mac_address"], "network_id": net["id"],
                                "mtu": net.get("mtu")}]
    assert payload["network_data"]["networks"][0]["type"] == "ipv4_dhcp"
    async with cloud.db.write() as session:
        op_id = await hosts.send(session, "cn-1", "spawn", inst.uuid, payload, op_id=f"build-{inst.uuid}-spawn")
    async with cloud.db.write() as session:  # sent again by a resumed task: found, not sent twice
        assert await hosts.send(session, "cn-1", "spawn", inst.uuid, payload,
                                op_id=f"build-{inst.uuid}-spawn") == op_id
    result = await hosts.wait(op_id, timeout=10)
    assert result == {"power_state": states.RUNNING}

    fake = hosts.agent("cn-1").driver
    spec = fake.instances[inst.uuid].spec
    assert spec.image.path.read_bytes() == IMAGE_DATA and spec.vifs[0].port_id == port["id"]
    md = json.loads(spec.config_drive["openstack/latest/meta_data.json"])
    assert md["uuid"] == inst.uuid and md["name"] == "web one" and md["hostname"] == "web-one"
    assert md["meta"] == {"role": "web"} and md["public_keys"] == {"k": "ssh-ed25519 AAAA me"}
    assert md["project_id"] == "proj" and md["availability_zone"] == "nova"
    nd = json.loads(spec.config_drive["openstack/latest/network_data.json"])
    assert nd["links"][0]["vif_id"] == port["id"] and nd["services"] == [{"type": "dns", "address": "10.9.0.3"}]
    assert spec.config_drive["openstack/latest/user_data"] == b"echo user data here"

    out = await hosts.call("cn-1", "console_output", inst.uuid, {"length": 10}, timeout=10)
    assert f"fake: booted instance {inst.uuid}" in out["output"] and "echo user data here" in out["output"]
    assert (await hosts.call("cn-1", "power_off", inst.uuid, {}, timeout=10)) == {"power_state": states.SHUTDOWN}

    # a second instance from the same image: no second download
    downloads = hosts.agent("cn-1").images.downloads
    other = await make_instance(cloud, "cn-2", image_ref=image_id)
    await hosts.call("cn-2", "spawn", other.uuid, await hosts.instance_payload(other), timeout=10)
    assert hosts.agent("cn-2").images.downloads == downloads


async def test_failures_and_timeouts(cloud):
    hosts = cloud.compute.hosts
    inst = await make_instance(cloud, "cn-2")
    payload = await hosts.instance_payload(inst)
    hosts.agent("cn-2").driver.inject("spawn", "Insufficient fake memory", uuid=inst.uuid)
    with pytest.raises(HostOpFailed, match="Insufficient fake memory"):
        await hosts.call("cn-2", "spawn", inst.uuid, payload, timeout=10)
    async with cloud.db.read() as session:
        row = (await session.execute(sa.select(HostOp).where(HostOp.instance_uuid == inst.uuid))).scalar()
    assert row.status == "failed" and row.error == "Insufficient fake memory"
    with pytest.raises(HostOpFailed, match="could not be found"):
        await hosts.call("cn-2", "pause", str(uuid.uuid4()), {}, timeout=10)
    with pytest.raises(HostOpFailed, match="Unknown host operation"):
        await hosts.call("cn-2", "teleport", inst.uuid, {}, timeout=10)
    with pytest.raises(HostTimeout, match="did not finish"):
        await hosts.call("nowhere", "pause", inst.uuid, {}, timeout=0.3)


async def test_ops_of_one_instance_run_in_order(cloud):
    hosts = cloud.compute.hosts
    inst = await make_instance(cloud, "cn-3")
    fake = hosts.agent("cn-3").driver
    fake.delay = 0.05
    try:
        async with cloud.db.write() as session:
            ids = [await hosts.send(session, "cn-3", op, inst.uuid, await hosts.instance_payload(inst)
                                    if op in ("spawn", "power_on") else {})
                   for op in ("spawn", "pause", "unpause", "power_off", "power_on", "destroy")]
        results = [await hosts.wait(i, timeout=10) for i in ids]
    finally:
        fake.delay = 0
    assert [r["power_state"] for r in results] == [states.RUNNING, states.POWER_PAUSED, states.RUNNING,
                                                  states.SHUTDOWN, states.RUNNING, states.NOSTATE]
    assert [c for c in fake.calls if c[1] == inst.uuid] == [
        ("spawn", inst.uuid), ("pause", inst.uuid), ("unpause", inst.uuid), ("power_off", inst.uuid),
        ("power_on", inst.uuid), ("destroy", inst.uuid)]


async def test_power_state_sync_reports_a_guest_that_stopped(cloud):
    hosts = cloud.compute.hosts
    inst = await make_instance(cloud, "cn-2", power_state=states.RUNNING)
    await hosts.call("cn-2", "spawn", inst.uuid, await hosts.instance_payload(inst), timeout=10)
    agent = hosts.agent("cn-2")
    await agent.sync_power_states()
    agent.driver.set_power_state(inst.uuid, states.SHUTDOWN)
    seen: list[tuple[str, int]] = []
    conductor = cloud.compute.conductor
    original = getattr(conductor, "power_state_changed", None)

    async def changed(session, instance_uuid, power_state):
        seen.append((instance_uuid, power_state))
        if original is not None:
            await original(session, instance_uuid, power_state)

    conductor.power_state_changed = changed
    try:
        await agent.sync_power_states()
    finally:
        if original is None:
            del conductor.power_state_changed
        else:
            conductor.power_state_changed = original
    assert seen == [(inst.uuid, states.SHUTDOWN)]


async def test_delete_service_drops_node_and_provider(cloud):
    hosts = cloud.compute.hosts
    from mcloud.compute.drivers import fake

    driver = fake.create({}, cloud.config.data_dir, hostname="spare")
    node = await hosts.register("spare", driver.host_info(), transport="http")
    async with cloud.db.write() as session:
        svc = (await hosts.services(session, host="spare"))[0]
        await hosts.delete_service(session, svc)
    async with cloud.db.read() as session:
        assert await hosts.services(session, host="spare") == []
        assert await hosts.provider_of(session, "spare") is None
    for _ in range(50):
        if not await cloud.placement.list_providers(uuid=node.uuid):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the provider stayed")
    busy = await make_instance(cloud, "cn-1")
    async with cloud.db.write() as session:
        svc = (await hosts.services(session, host="cn-1", binary="nova-compute"))[0]
        with pytest.raises(Exception, match="hosting instances"):
            await hosts.delete_service(session, svc)
    assert busy.uuid
