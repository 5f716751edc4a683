"""The fake hypervisor driver: every Protocol call changes (or reads) state as a real host would,
refuses what a real host refuses, and fails on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcloud.compute import states
from mcloud.compute.drivers import fake
from mcloud.compute.drivers.base import (
    DriverError,
    FlavorSpec,
    ImageSpec,
    InstanceNotFound,
    InstanceSpec,
    VifSpec,
)

UUID = "6f0c1a3e-5d7b-4a8e-9c3f-0a1b2c3d4e5f"


def spec(uuid: str = UUID, root_gb: int = 1, hostname: str = "vm", user_data: bytes | None = None) -> InstanceSpec:
    drive = {"openstack/latest/meta_data.json": b"{}"}
    if user_data is not None:
        drive["openstack/latest/user_data"] = user_data
    return InstanceSpec(uuid=uuid, name="instance-00000001", hostname=hostname,
                        flavor=FlavorSpec(vcpus=1, memory_mb=64, root_gb=root_gb),
                        image=ImageSpec(id="img", disk_format="qcow2", path=Path("/nonexistent/img")),
                        vifs=(VifSpec(port_id="p1", mac="fa:16:3e:00:00:01", network_id="n1"),), config_drive=drive)


@pytest.fixture
async def driver(tmp_path):
    d = fake.create({"vcpus": 4, "memory_mb": 2048, "disk_gb": 20}, tmp_path, hostname="fake-a")
    await d.start()
    yield d
    await d.close()


async def test_host_info_is_what_the_options_say(driver):
    info = driver.host_info()
    assert (info.vcpus, info.memory_mb, info.disk_gb) == (4, 2048, 20)
    assert info.hypervisor_hostname == "fake-a" and info.hypervisor_type == "fake"
    assert "COMPUTE_NET_ATTACH_INTERFACE" in info.traits


async def test_unknown_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown options: colour"):
        fake.create({"colour": "blue"}, tmp_path)


async def test_lifecycle_and_power_states(driver):
    await driver.spawn(spec(user_data=b"hello from user data"))
    await driver.spawn(spec())  # again: a no-op
    assert await driver.list_instances() == {UUID: states.RUNNING}
    out = await driver.console_output(UUID)
    assert f"fake: booted instance {UUID}" in out and "hello from user data" in out
    assert (await driver.console_output(UUID, length=1)).count("\n") == 1

    await driver.pause(UUID)
    assert await driver.power_state(UUID) == states.POWER_PAUSED
    with pytest.raises(DriverError):
        await driver.pause(UUID)
    await driver.unpause(UUID)
    await driver.suspend(UUID)
    assert await driver.power_state(UUID) == states.POWER_SUSPENDED
    with pytest.raises(DriverError, match="paused or suspended"):
        await driver.reboot(UUID, hard=False)
    await driver.resume(spec())
    await driver.power_off(UUID)
    await driver.power_off(UUID)  # already off: fine
    assert await driver.power_state(UUID) == states.SHUTDOWN
    await driver.power_on(spec())
    await driver.reboot(UUID, hard=True)
    assert await driver.power_state(UUID) == states.RUNNING

    await driver.attach_interface(UUID, VifSpec(port_id="p2", mac="fa:16:3e:00:00:02", network_id="n1"))
    assert set(driver.instances[UUID].vifs) == {"p1", "p2"}
    await driver.detach_interface(UUID, "p2")
    with pytest.raises(DriverError):
        await driver.detach_interface(UUID, "p2")

    await driver.rescue(spec(), ImageSpec(id="rescue", disk_format="raw"))
    assert driver.instances[UUID].rescued
    await driver.unrescue(spec())
    assert not driver.instances[UUID].rescued

    await driver.power_off(UUID)
    await driver.resize(spec(root_gb=2))
    assert driver.instances[UUID].spec.flavor.root_gb == 2
    await driver.revert_resize(spec(root_gb=2))
    assert driver.instances[UUID].spec.flavor.root_gb == 1
    with pytest.raises(DriverError, match="smaller"):
        await driver.resize(spec(root_gb=0))

    await driver.destroy(UUID)
    await driver.destroy(UUID)  # gone already: fine
    with pytest.raises(InstanceNotFound):
        await driver.power_state(UUID)
    assert await driver.list_instances() == {}


async def test_snapshot_writes_a_file(driver, tmp_path):
    await driver.spawn(spec())
    fmt = await driver.snapshot(UUID, tmp_path / "snap")
    assert fmt == "raw" and UUID in (tmp_path / "snap").read_text()


async def test_injected_failures(driver, tmp_path):
    driver.inject("spawn", "no room at the inn")
    with pytest.raises(DriverError, match="no room at the inn"):
        await driver.spawn(spec())
    await driver.spawn(spec())  # count=1: the next one works
    other = fake.create({"fail_spawn_matching": "^doomed", "fail": {"pause": "never"}}, tmp_path, hostname="fake-b")
    with pytest.raises(DriverError, match="fail_spawn_matching"):
        await other.spawn(spec(hostname="doomed-1"))
    await other.spawn(spec(hostname="fine"))
    for _ in range(2):
        with pytest.raises(DriverError, match="never"):
            await other.pause(UUID)


async def test_live_migration_between_two_fake_hosts(driver, tmp_path):
    dest = fake.create({}, tmp_path, hostname="fake-dest")
    await dest.start()
    try:
        await driver.spawn(spec())
        target = await dest.prepare_incoming(spec())
        assert await dest.list_instances() == {}  # not running there yet
        figures = await driver.live_migrate(UUID, target)
        assert figures["memory_total"] == figures["memory_processed"] == 64 << 20
        assert figures["memory_remaining"] == figures["disk_total"] == 0 and figures["downtime_ms"] > 0
        await dest.finish_incoming(UUID)
        assert await driver.list_instances() == {}
        assert await dest.list_instances() == {UUID: states.RUNNING}
        assert "booted" in await dest.console_output(UUID)
        await dest.prepare_incoming(spec(uuid="other"))
        await dest.abort_incoming("other")
        assert "other" not in dest.instances
    finally:
        await dest.close()


async def test_a_guest_that_stops_by_itself(driver):
    await driver.spawn(spec())
    driver.set_power_state(UUID, states.SHUTDOWN)
    assert await driver.list_instances() == {UUID: states.SHUTDOWN}
