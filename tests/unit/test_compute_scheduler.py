"""compute/scheduler.py against a real Placement service on the test database: the Placement
query made of a flavor, the filters, the weighers, claims that never oversubscribe a host (also
under concurrency), and move claims (the migration holds the source, the instance the
destination)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mcloud import migrations
from mcloud.compute.config import ComputeConfig
from mcloud.compute.models import Instance
from mcloud.compute.scheduler import NoValidHost, RequestSpec, Scheduler, request_groups
from mcloud.core.db import Database
from mcloud.placement.config import PlacementConfig
from mcloud.placement.service import Inventory, PlacementService


@dataclasses.dataclass
class State:
    provider_uuid: str
    node: str
    up: bool = True
    enabled: bool = True
    forced_down: bool = False
    az: str = "nova"
    hypervisor_type: str = "fake"
    arch: str = "x86_64"


@dataclasses.dataclass
class Group:
    id: str
    policy: str
    members: list[str]
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Aggregate:
    name: str
    metadata: dict[str, str]
    uuid: str = ""
    availability_zone: str | None = None


class FakeHosts:
    def __init__(self) -> None:
        self.states: dict[str, State] = {}

    async def candidates_state(self, session: Any) -> dict[str, State]:
        return dict(self.states)


class FakeResources:
    def __init__(self) -> None:
        self.aggregates: dict[str, list[Aggregate]] = {}

    async def host_aggregates(self, session: Any) -> dict[str, list[Aggregate]]:
        return self.aggregates


class Compute:
    """The few attributes of ComputeService the scheduler reads."""

    def __init__(self, db: Database):
        self.db = db
        self.placement = PlacementService(db, PlacementConfig())
        self.hosts = FakeHosts()
        self.resources = FakeResources()
        self.config = ComputeConfig()
        self.scheduler = Scheduler(self)
        self.prefix = uuid.uuid4().hex[:6]

    async def add_host(self, name: str, vcpus: int = 8, memory_mb: int = 8192, disk_gb: int = 100,
                       traits: list[str] | None = None, **state: Any) -> str:
        name = f"{self.prefix}-{name}"
        await self.placement.ensure_standards()
        rp = await self.placement.create_provider(name)
        await self.placement.set_inventories(rp.uuid, rp.generation, {
            "VCPU": Inventory(vcpus), "MEMORY_MB": Inventory(memory_mb), "DISK_GB": Inventory(disk_gb)}, True)
        if traits:
            await self.placement.set_provider_traits(rp.uuid, traits, None)
        self.hosts.states[name] = State(rp.uuid, name, **state)
        return name

    async def zone(self, az: str, *hosts: str) -> None:
        """An aggregate making zone ``az`` of ``hosts`` (as RESOURCES keeps it, and in Placement)."""
        agg = Aggregate(az, {"availability_zone": az}, str(uuid.uuid4()), az)
        for h in hosts:
            self.resources.aggregates.setdefault(h, []).append(agg)
            self.hosts.states[h].az = az
            await self.placement.set_aggregates(self.hosts.states[h].provider_uuid, [agg.uuid], None)

    async def add_instance(self, host: str | None, project: str = "p") -> str:
        u = str(uuid.uuid4())
        async with self.db.write() as s:
            s.add(Instance(uuid=u, project_id=project, user_id="u", flavor={}, host=host, vm_state="active"))
        return u


@pytest.fixture
async def compute(database: str) -> AsyncIterator[Compute]:
    migrations.upgrade(database)
    db = Database(database)
    c = Compute(db)
    yield c
    # providers of other tests' hosts stay: each test names its own hosts and looks only at them
    await db.dispose()


FLAVOR = {"id": "1", "name": "small", "vcpus": 2, "memory_mb": 1024, "root_gb": 10, "ephemeral_gb": 0,
          "swap": 0, "extra_specs": {}}


def spec(**kw: Any) -> RequestSpec:
    kw.setdefault("flavor", FLAVOR)
    return RequestSpec(instance_uuid=kw.pop("instance_uuid", str(uuid.uuid4())), project_id="p", user_id="u", **kw)


def names(c: Compute, selections: list[Any]) -> list[str]:
    return [s.host.removeprefix(c.prefix + "-") for s in selections if s.host.startswith(c.prefix)]


# ---------------------------------------------------------------- the Placement query


def test_a_flavor_asks_for_its_sizes_and_its_extra_specs() -> None:
    groups, policy = request_groups({**FLAVOR, "swap": 1500, "ephemeral_gb": 5, "extra_specs": {
        "resources:VCPU": "0", "resources:CUSTOM_GPU": "1", "trait:HW_CPU_X86_AVX2": "required",
        "trait:COMPUTE_STATUS_DISABLED": "forbidden", "resources1:CUSTOM_NIC": "2", "group_policy": "none"}},
        {"trait:CUSTOM_IMAGE": "required", "hw_disk_bus": "virtio"})
    assert groups[""].resources == {"MEMORY_MB": 1024, "DISK_GB": 17, "CUSTOM_GPU": 1}
    assert set().union(*groups[""].required) == {"HW_CPU_X86_AVX2", "CUSTOM_IMAGE"}
    assert groups[""].forbidden == {"COMPUTE_STATUS_DISABLED"}
    assert groups["1"].resources == {"CUSTOM_NIC": 2}
    assert policy == "none"


# ---------------------------------------------------------------- filters and weighers


async def test_the_host_with_most_free_resources_comes_first(compute: Compute) -> None:
    await compute.add_host("small", vcpus=4, memory_mb=2048)
    await compute.add_host("big", vcpus=16, memory_mb=16384)
    found = await compute.scheduler.select(spec())
    assert names(compute, found) == ["big", "small"]
    assert found[0].weight > found[1].weight
    assert found[0].allocations == {compute.hosts.states[found[0].host].provider_uuid:
                                    {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}}


async def test_hosts_down_disabled_or_forced_down_are_filtered(compute: Compute) -> None:
    await compute.add_host("up")
    await compute.add_host("down", up=False)
    await compute.add_host("disabled", enabled=False)
    await compute.add_host("forced", forced_down=True)
    assert names(compute, await compute.scheduler.select(spec())) == ["up"]


async def test_availability_zone_and_too_small_hosts(compute: Compute) -> None:
    await compute.zone("az1", await compute.add_host("a"), await compute.add_host("tiny", memory_mb=512))
    await compute.zone("az2", await compute.add_host("b"))
    await compute.add_host("c")  # the default zone
    assert names(compute, await compute.scheduler.select(spec(availability_zone="az1"))) == ["a"]
    assert names(compute, await compute.scheduler.select(spec(availability_zone="az2"))) == ["b"]
    assert names(compute, await compute.scheduler.select(spec(availability_zone="nova"))) == ["c"]


async def test_a_zone_made_by_an_aggregate_is_asked_of_placement(compute: Compute) -> None:
    a = await compute.add_host("a")
    await compute.zone("az1", a)
    await compute.add_host("b", az="az1")  # says az1, but is in no az1 aggregate in Placement
    assert names(compute, await compute.scheduler.select(spec(availability_zone="az1"))) == ["a"]
    assert await compute.scheduler.select(spec(availability_zone="az-without-hosts")) == []


async def test_required_and_forbidden_traits(compute: Compute) -> None:
    await compute.add_host("avx", traits=["HW_CPU_X86_AVX2"])
    await compute.add_host("plain")
    want = {**FLAVOR, "extra_specs": {"trait:HW_CPU_X86_AVX2": "required"}}
    assert names(compute, await compute.scheduler.select(spec(flavor=want))) == ["avx"]
    avoid = {**FLAVOR, "extra_specs": {"trait:HW_CPU_X86_AVX2": "forbidden"}}
    assert "avx" not in names(compute, await compute.scheduler.select(spec(flavor=avoid)))


async def test_image_properties_filter(compute: Compute) -> None:
    await compute.add_host("x86")
    await compute.add_host("arm", arch="aarch64")
    image = {"id": "i", "properties": {"hw_architecture": "aarch64"}}
    assert names(compute, await compute.scheduler.select(spec(image=image))) == ["arm"]
    image = {"id": "i", "properties": {"img_hv_type": "xen"}}
    assert names(compute, await compute.scheduler.select(spec(image=image))) == []


async def test_aggregate_instance_extra_specs(compute: Compute) -> None:
    ssd = await compute.add_host("ssd")
    await compute.add_host("hdd")
    compute.resources.aggregates = {ssd: [Aggregate("fast", {"disk": "ssd"})]}
    flavor = {**FLAVOR, "extra_specs": {"aggregate_instance_extra_specs:disk": "ssd"}}
    assert names(compute, await compute.scheduler.select(spec(flavor=flavor))) == ["ssd"]


async def test_server_group_policies(compute: Compute) -> None:
    h1 = await compute.add_host("h1")
    await compute.add_host("h2")
    await compute.add_host("h3")
    member = await compute.add_instance(h1)
    affinity = Group("g", "affinity", [member])
    assert names(compute, await compute.scheduler.select(spec(group=affinity))) == ["h1"]
    anti = Group("g", "anti-affinity", [member])
    assert sorted(names(compute, await compute.scheduler.select(spec(group=anti)))) == ["h2", "h3"]
    two = Group("g", "anti-affinity", [member], {"max_server_per_host": 2})
    assert "h1" in names(compute, await compute.scheduler.select(spec(group=two)))
    # the soft policies only weigh: the member's host first, or last
    soft = await compute.scheduler.select(spec(group=Group("g", "soft-affinity", [member])))
    assert names(compute, soft)[0] == "h1"
    soft_anti = await compute.scheduler.select(spec(group=Group("g", "soft-anti-affinity", [member])))
    assert names(compute, soft_anti)[-1] == "h1" and len(names(compute, soft_anti)) == 3


async def test_same_host_and_different_host_hints(compute: Compute) -> None:
    h1 = await compute.add_host("h1")
    await compute.add_host("h2")
    other = await compute.add_instance(h1)
    assert names(compute, await compute.scheduler.select(spec(hints={"same_host": [other]}))) == ["h1"]
    assert names(compute, await compute.scheduler.select(spec(hints={"different_host": other}))) == ["h2"]


async def test_forced_host_skips_the_filters_but_not_placement(compute: Compute) -> None:
    await compute.add_host("h1")
    h2 = await compute.add_host("h2", enabled=False, memory_mb=512)
    h3 = await compute.add_host("h3", enabled=False)
    assert names(compute, await compute.scheduler.select(spec(force_host=h3))) == ["h3"]
    assert await compute.scheduler.select(spec(force_host=h2)) == []  # too small, even forced
    assert names(compute, await compute.scheduler.select(spec(requested_host=h3))) == []  # filters run
    with pytest.raises(NoValidHost):
        await compute.scheduler.select(spec(force_host="nowhere"))


# ---------------------------------------------------------------- claims


async def test_claims_fill_a_host_and_never_beyond(compute: Compute) -> None:
    h = await compute.add_host("only", vcpus=4, memory_mb=100000, disk_gb=1000)
    compute.hosts.states = {h: compute.hosts.states[h]}
    specs = [spec() for _ in range(4)]
    got = await asyncio.gather(*(compute.scheduler.schedule(s) for s in specs), return_exceptions=True)
    won = [g for g in got if not isinstance(g, BaseException)]
    lost = [g for g in got if isinstance(g, BaseException)]
    assert len(won) == 2 and len(lost) == 2
    assert all(isinstance(x, NoValidHost) and str(x).startswith("No valid host was found.") for x in lost)
    rp = compute.hosts.states[h].provider_uuid
    assert (await compute.placement.provider_usages(rp))[1]["VCPU"] == 4
    # releasing one makes room for the next
    winner = next(s for s, g in zip(specs, got) if not isinstance(g, BaseException))
    await compute.scheduler.release(winner.instance_uuid)
    await compute.scheduler.release(winner.instance_uuid)  # twice is fine
    assert (await compute.scheduler.schedule(spec())).host == h


async def test_a_lost_claim_takes_the_next_host(compute: Compute) -> None:
    a = await compute.add_host("a", vcpus=2)
    b = await compute.add_host("b", vcpus=2)
    compute.hosts.states = {k: v for k, v in compute.hosts.states.items() if k in (a, b)}
    first = spec()
    selections = await compute.scheduler.select(first)
    assert len(selections) == 2
    # someone else fills the first choice between our select and our claim
    await compute.scheduler.claim(spec(), selections[:1])
    got = await compute.scheduler.claim(first, selections)
    assert got.host == selections[1].host
    with pytest.raises(NoValidHost):
        await compute.scheduler.claim(spec(), selections)


async def test_move_claim_confirm_and_revert(compute: Compute) -> None:
    a = await compute.add_host("a", vcpus=4)
    b = await compute.add_host("b", vcpus=4)
    compute.hosts.states = {k: v for k, v in compute.hosts.states.items() if k in (a, b)}
    s = spec(force_host=a)
    await compute.scheduler.schedule(s)
    ra, rb = compute.hosts.states[a].provider_uuid, compute.hosts.states[b].provider_uuid
    big = {**FLAVOR, "vcpus": 3}
    move = RequestSpec(s.instance_uuid, "p", "u", big, ignore_hosts={a}, moving=True)
    migration = str(uuid.uuid4())
    dest = await compute.scheduler.move_claim(move, migration)
    assert dest.host == b
    assert await compute.scheduler.allocations_of(migration) == {ra: {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}}
    assert await compute.scheduler.allocations_of(s.instance_uuid) == {rb: {"VCPU": 3, "MEMORY_MB": 1024,
                                                                            "DISK_GB": 10}}
    await compute.scheduler.revert_move(s.instance_uuid, migration, "p", "u")
    assert await compute.scheduler.allocations_of(s.instance_uuid) == {ra: {"VCPU": 2, "MEMORY_MB": 1024,
                                                                            "DISK_GB": 10}}
    assert await compute.scheduler.allocations_of(migration) == {}
    assert (await compute.placement.provider_usages(rb))[1]["VCPU"] == 0
    # again, confirmed this time: the source is freed
    migration = str(uuid.uuid4())
    await compute.scheduler.move_claim(move, migration)
    await compute.scheduler.confirm_move(migration)
    assert (await compute.placement.provider_usages(ra))[1]["VCPU"] == 0
    assert (await compute.placement.provider_usages(rb))[1]["VCPU"] == 3
