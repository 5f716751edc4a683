"""compute/conductor*.py with the real Placement, network service (fake data plane) and task
queue on the test database, and a small in-test stand-in of ``compute.hosts`` whose hosts run
ops at once (and fail the ones a test asks): builds (ports, claims, rescheduling, faults, nothing
left after an ERROR), deletes, one-op actions to Nova's end states, and the power-state sync."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mcloud import migrations
from mcloud.compute import states as st
from mcloud.compute.conductor import BuildRequest, Conductor
from mcloud.compute.config import ComputeConfig
from mcloud.compute.hosts import HostOpFailed
from mcloud.compute.models import Instance, InstanceAction, InstanceActionEvent, InstanceFault
from mcloud.compute.scheduler import Scheduler
from mcloud.compute.service import ComputeService
from mcloud.core.db import Database
from mcloud.core.tasks import FAILED, Task, TaskQueue
from mcloud.network import models as nm
from mcloud.network.config import NetworkConfig
from mcloud.network.service import Caller as NetCaller
from mcloud.network.service import NetworkService
from mcloud.placement.config import PlacementConfig
from mcloud.placement.service import Inventory, PlacementService
from tests.unit.test_compute_scheduler import State


class FakeHosts:
    """Hosts that run each op when it is waited for: ``fail[(host, op)]`` makes it fail."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}
        self.ops: dict[str, tuple[str, str, str | None, dict[str, Any]]] = {}
        self.log: list[tuple[str, str, str | None]] = []
        self.fail: dict[tuple[str, str], str] = {}
        #: (host, op) -> how many more times waiting for it is cut short (the process "dies")
        self.interrupt: dict[tuple[str, str], int] = {}
        self.guests: dict[str, dict[str, str]] = {}  # host -> uuid -> state
        #: op -> an async callable run when the op runs (to look at the world at that moment)
        self.on_op: dict[str, Any] = {}

    async def candidates_state(self, session: Any) -> dict[str, State]:
        return dict(self.states)

    async def provider_of(self, session: Any, host: str) -> str | None:
        s = self.states.get(host)
        return s.provider_uuid if s else None

    async def send(self, session: Any, host: str, op: str, instance_uuid: str | None, payload: dict[str, Any],
                   op_id: str | None = None) -> str:
        op_id = op_id or str(uuid.uuid4())
        self.ops.setdefault(op_id, (host, op, instance_uuid, payload))
        return op_id

    async def wait(self, op_id: str, timeout: float) -> dict[str, Any]:
        host, op, inst, payload = self.ops[op_id]
        if self.interrupt.get((host, op)):
            self.interrupt[(host, op)] -= 1
            raise asyncio.CancelledError()
        self.log.append((host, op, inst))
        if op in self.on_op:
            await self.on_op[op](host, inst, payload)
        if (host, op) in self.fail:
            raise HostOpFailed(self.fail[(host, op)])
        guests = self.guests.setdefault(host, {})
        if op == "destroy":
            guests.pop(inst or "", None)
        elif inst:
            guests[inst] = op
        if op == "prepare_incoming":
            return {"uri": f"fake:{host}", "disks": {}}
        return {}

    async def instance_payload(self, instance: Any, **kw: Any) -> dict[str, Any]:
        return {"uuid": instance.uuid, "ports": (instance.system_metadata or {}).get("ports")}


class FakeResources:
    def __init__(self) -> None:
        self.groups: dict[str, Any] = {}
        self.removed: list[str] = []

    async def host_aggregates(self, session: Any) -> dict[str, list[Any]]:
        return {}

    async def group_for_boot(self, session: Any, caller: Any, group_id: str) -> Any:
        return self.groups[group_id]

    async def remove_instance_from_groups(self, session: Any, uuid: str) -> None:
        self.removed.append(uuid)


class Compute:
    record_fault = ComputeService.record_fault
    action_event = ComputeService.action_event

    def __init__(self, db: Database, data_dir: Path):
        self.db = db
        self.config = ComputeConfig(scheduler_max_attempts=3)
        self.placement = PlacementService(db, PlacementConfig())
        self.network = NetworkService(db, NetworkConfig(driver="fake"), data_dir, None)  # type: ignore[arg-type]
        self.tasks = TaskQueue(db)
        self.hosts = FakeHosts()
        self.resources = FakeResources()
        self.scheduler = Scheduler(self)
        self.conductor = Conductor(self)
        self.conductor.register(self.tasks)
        self.prefix = uuid.uuid4().hex[:6]
        self.project = uuid.uuid4().hex

    async def add_host(self, name: str, vcpus: int = 8, **state: Any) -> str:
        name = f"{self.prefix}-{name}"
        await self.placement.ensure_standards()
        rp = await self.placement.create_provider(name)
        await self.placement.set_inventories(rp.uuid, rp.generation, {
            "VCPU": Inventory(vcpus), "MEMORY_MB": Inventory(65536), "DISK_GB": Inventory(1000)}, True)
        self.hosts.states[name] = State(rp.uuid, name, **state)
        return name

    async def network_id(self) -> str:
        caller = NetCaller.internal()
        net = (await self.network.create_networks(caller, [{"name": "n", "project_id": self.project}]))[0]
        await self.network.create_subnets(caller, [{"network_id": net["id"], "cidr": "10.0.0.0/24",
                                                    "ip_version": 4, "project_id": self.project}])
        return net["id"]

    async def boot(self, networks: list[dict[str, Any]] | None = None, vcpus: int = 2, **kw: Any) -> str:
        u = str(uuid.uuid4())
        rid = f"req-{uuid.uuid4()}"
        flavor = {"id": "1", "name": "f", "vcpus": vcpus, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0,
                  "swap": 0, "extra_specs": {}}
        async with self.db.write() as s:
            inst = Instance(uuid=u, project_id=self.project, user_id="u", flavor=flavor, vm_state=st.BUILDING,
                            task_state=st.SCHEDULING, system_metadata={})
            s.add(inst)
            s.add(InstanceAction(instance_uuid=u, action="create", request_id=rid, project_id=self.project))
            await s.flush()
            await self.conductor.submit_build(s, [inst], BuildRequest(
                flavor=flavor, image={"id": "img", "properties": {}}, networks=networks or [], security_groups=[],
                project_id=self.project, user_id="u", request_id=rid, **kw))
        return u

    async def act(self, u: str, action: str, task_state: str | None, **params: Any) -> str:
        rid = f"req-{uuid.uuid4()}"
        async with self.db.write() as s:
            inst = (await s.execute(sa.select(Instance).where(Instance.uuid == u))).scalar_one()
            inst.task_state = task_state
            s.add(InstanceAction(instance_uuid=u, action=action, request_id=rid, project_id=self.project))
            await s.flush()
            await self.conductor.submit_action(s, inst, action, params, rid, None)
        await self.tasks.run_pending()
        return rid

    async def instance(self, u: str) -> Instance:
        async with self.db.read() as s:
            return (await s.execute(sa.select(Instance).where(Instance.uuid == u))).scalar_one()

    async def events(self, u: str) -> list[tuple[str, str, str | None]]:
        async with self.db.read() as s:
            rows = await s.execute(sa.select(InstanceAction.action, InstanceActionEvent.event,
                                             InstanceActionEvent.result)
                                   .join(InstanceActionEvent, InstanceActionEvent.action_id == InstanceAction.id)
                                   .where(InstanceAction.instance_uuid == u).order_by(InstanceActionEvent.id))
            return [tuple(r) for r in rows]  # type: ignore[misc]

    async def faults(self, u: str) -> list[str]:
        async with self.db.read() as s:
            return list((await s.execute(sa.select(InstanceFault.message).where(
                InstanceFault.instance_uuid == u).order_by(InstanceFault.id))).scalars())

    async def ports_of(self, u: str) -> list[nm.Port]:
        async with self.db.read() as s:
            return list((await s.execute(sa.select(nm.Port).where(nm.Port.device_id == u))).scalars())

    async def usage(self, host: str) -> int:
        return (await self.placement.provider_usages(self.hosts.states[host].provider_uuid))[1]["VCPU"]


@pytest.fixture
async def compute(database: str, tmp_path: Path) -> AsyncIterator[Compute]:
    migrations.upgrade(database)
    db = Database(database)
    c = Compute(db, tmp_path)
    yield c
    await db.dispose()


async def test_a_build_schedules_makes_ports_spawns_and_is_active(compute: Compute) -> None:
    host = await compute.add_host("h1")
    net = await compute.network_id()
    u = await compute.boot([{"network_id": net}])
    await compute.tasks.run_pending()
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.power_state) == (st.ACTIVE, None, st.RUNNING)
    assert inst.host == host and inst.node == host and inst.availability_zone == "nova" and inst.launched_at
    ports = await compute.ports_of(u)
    assert [(p.device_owner, p.host_id, p.network_id) for p in ports] == [("compute:nova", host, net)]
    assert inst.system_metadata["ports"] == [{"port_id": ports[0].id, "network_id": net, "made": True,
                                              "tag": None}]
    assert await compute.usage(host) == 2
    assert (host, "spawn", u) in compute.hosts.log
    assert await compute.events(u) == [("create", "conductor_schedule_and_build_instances", "Success"),
                                       ("create", "compute__do_build_and_run_instance", "Success")]


async def test_a_given_port_is_bound_and_only_unbound_on_delete(compute: Compute) -> None:
    host = await compute.add_host("h1")
    net = await compute.network_id()
    port = (await compute.network.create_ports(NetCaller.internal(), [{"network_id": net,
                                                                       "project_id": compute.project}]))[0]
    u = await compute.boot([{"port_id": port["id"], "network_id": net}, {"network_id": net}])
    await compute.tasks.run_pending()
    ports = {p.id: p for p in await compute.ports_of(u)}
    assert len(ports) == 2 and ports[port["id"]].host_id == host
    assert ports[port["id"]].device_owner == "compute:nova"
    await compute.act(u, "delete", st.DELETING)
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.deleted) == (st.DELETED, None, True)
    assert inst.terminated_at and inst.deleted_at
    assert await compute.ports_of(u) == []  # the made one is gone, the given one unbound
    async with compute.db.read() as s:
        kept = await s.get(nm.Port, port["id"])
    assert kept is not None and kept.host_id == "" and kept.device_id == ""
    assert await compute.usage(host) == 0
    assert compute.resources.removed == [u]
    assert (host, "destroy", u) in compute.hosts.log
    assert ("delete", "compute_terminate_instance", "Success") in await compute.events(u)


async def test_a_failed_spawn_is_rescheduled_to_another_host(compute: Compute) -> None:
    bad = await compute.add_host("bad", vcpus=64)  # the scheduler's first choice
    good = await compute.add_host("good")
    net = await compute.network_id()
    compute.hosts.fail[(bad, "spawn")] = "the disk is on fire"
    u = await compute.boot([{"network_id": net}])
    await compute.tasks.run_pending()
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.host) == (st.ACTIVE, good)
    assert await compute.faults(u) == ["the disk is on fire"]
    assert (bad, "destroy", u) in compute.hosts.log  # the failed host cleaned up
    assert await compute.usage(bad) == 0 and await compute.usage(good) == 2
    assert [p.host_id for p in await compute.ports_of(u)] == [good]
    events = await compute.events(u)
    assert ("create", "compute__do_build_and_run_instance", "Error") in events
    assert events[-1] == ("create", "compute__do_build_and_run_instance", "Success")


async def test_when_every_host_fails_the_server_is_error_and_holds_nothing(compute: Compute) -> None:
    hosts = [await compute.add_host(f"h{i}") for i in range(4)]
    net = await compute.network_id()
    for h in hosts:
        compute.hosts.fail[(h, "spawn")] = f"no luck on {h}"
    u = await compute.boot([{"network_id": net}])
    await compute.tasks.run_pending()
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.host) == (st.ERROR, None, None)
    faults = await compute.faults(u)
    assert len(faults) == 4  # one per try (scheduler_max_attempts = 3), then Nova's
    assert faults[-1] == ("Exceeded maximum number of retries. Exhausted all hosts available for retrying "
                          f"build failures for instance {u}.")
    assert await compute.ports_of(u) == []
    assert all([await compute.usage(h) for h in hosts]) is False
    assert await compute.scheduler.allocations_of(u) == {}
    spawned = [h for h, op, x in compute.hosts.log if op == "spawn" and x == u]
    assert len(spawned) == 3 and len(set(spawned)) == 3


async def test_no_room_is_no_valid_host(compute: Compute) -> None:
    await compute.add_host("small", vcpus=1)
    compute.hosts.states = {k: v for k, v in compute.hosts.states.items() if k.startswith(compute.prefix)}
    u = await compute.boot(vcpus=2)
    await compute.tasks.run_pending()
    inst = await compute.instance(u)
    assert inst.vm_state == st.ERROR and inst.host is None
    assert (await compute.faults(u))[-1].startswith("No valid host was found.")
    assert await compute.events(u) == [("create", "conductor_schedule_and_build_instances", "Error")]


async def test_a_server_deleted_before_its_build_ran_is_never_spawned(compute: Compute) -> None:
    await compute.add_host("h1")
    u = await compute.boot()
    await compute.act(u, "delete", st.DELETING)  # runs the delete first: the build was pending
    inst = await compute.instance(u)
    assert inst.deleted and inst.vm_state == st.DELETED
    assert not [x for x in compute.hosts.log if x[2] == u and x[1] == "spawn"]
    assert await compute.tasks.run_pending() == 0


@pytest.mark.parametrize("action,task_state,vm_state,power_state,op", [
    ("stop", st.POWERING_OFF, st.STOPPED, st.SHUTDOWN, "power_off"),
    ("pause", st.PAUSING, st.PAUSED, st.POWER_PAUSED, "pause"),
    ("suspend", st.SUSPENDING, st.SUSPENDED, st.SHUTDOWN, "suspend"),
    ("rescue", st.RESCUING, st.RESCUED, st.RUNNING, "rescue"),
    ("reboot", st.REBOOTING_HARD, st.ACTIVE, st.RUNNING, "reboot"),
])
async def test_one_op_actions_reach_novas_end_states(compute: Compute, action: str, task_state: str,
                                                     vm_state: str, power_state: int, op: str) -> None:
    host = await compute.add_host("h1")
    u = await compute.boot()
    await compute.tasks.run_pending()
    await compute.act(u, action, task_state, type="HARD")
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.power_state) == (vm_state, None, power_state)
    assert (host, op, u) in compute.hosts.log
    back = {"stop": ("start", st.POWERING_ON), "pause": ("unpause", st.UNPAUSING),
            "suspend": ("resume", st.RESUMING), "rescue": ("unrescue", st.UNRESCUING)}.get(action)
    if back:
        await compute.act(u, back[0], back[1])
        inst = await compute.instance(u)
        assert (inst.vm_state, inst.task_state, inst.power_state) == (st.ACTIVE, None, st.RUNNING)
    events = [e for e in await compute.events(u) if e[0] != "create"]
    assert all(r == "Success" for _, _, r in events) and events


async def test_a_failed_action_keeps_the_vm_state_and_records_the_fault(compute: Compute) -> None:
    host = await compute.add_host("h1")
    u = await compute.boot()
    await compute.tasks.run_pending()
    compute.hosts.fail[(host, "pause")] = "cannot pause"
    rid = await compute.act(u, "pause", st.PAUSING)
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state) == (st.ACTIVE, None)
    assert (await compute.faults(u))[-1] == "cannot pause"
    async with compute.db.read() as s:
        action = (await s.execute(sa.select(InstanceAction).where(InstanceAction.request_id == rid))).scalar_one()
    assert action.message == "Error"
    assert ("pause", "compute_pause_instance", "Error") in await compute.events(u)


async def test_power_state_sync(compute: Compute) -> None:
    await compute.add_host("h1")
    u = await compute.boot()
    await compute.tasks.run_pending()
    # the guest stopped by itself: Nova's sync stops the server (the stop action, on its host)
    async with compute.db.write() as s:
        await compute.conductor.power_state_changed(s, u, st.SHUTDOWN)
    assert (await compute.instance(u)).task_state == st.POWERING_OFF
    await compute.tasks.run_pending()
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.power_state) == (st.STOPPED, None, st.SHUTDOWN)
    assert ("stop", "compute_stop_instance", "Success") in await compute.events(u)
    # a stopped server whose guest runs again is stopped again
    async with compute.db.write() as s:
        await compute.conductor.power_state_changed(s, u, st.RUNNING)
    await compute.tasks.run_pending()
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.power_state) == (st.STOPPED, st.SHUTDOWN)
    assert [op for h, op, x in compute.hosts.log if x == u].count("power_off") == 2
    # an active server whose guest is gone is only recorded
    await compute.act(u, "start", st.POWERING_ON)
    async with compute.db.write() as s:
        await compute.conductor.power_state_changed(s, u, st.NOSTATE)
    await compute.tasks.run_pending()
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.power_state) == (st.ACTIVE, None, st.NOSTATE)


async def crash_once(compute: Compute) -> None:
    """Claim a task and run it until the process "dies" (cancelled), then let its lease run out."""
    task = await compute.tasks.claim()
    assert task is not None
    with pytest.raises(asyncio.CancelledError):
        await compute.tasks.run_task(task)
    async with compute.db.write() as s:
        await s.execute(sa.update(Task).where(Task.id == task.id).values(
            lease_until=datetime.utcnow() - timedelta(hours=1)))


async def test_a_build_cut_short_resumes_without_doing_anything_twice(compute: Compute) -> None:
    host = await compute.add_host("h1")
    net = await compute.network_id()
    compute.hosts.interrupt[(host, "spawn")] = 1
    u = await compute.boot([{"network_id": net}])
    await crash_once(compute)
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.host) == (st.BUILDING, st.SPAWNING, host)
    await compute.tasks.run_pending()  # the next attempt finds the claim, the port and the sent spawn
    inst = await compute.instance(u)
    assert inst.vm_state == st.ACTIVE and inst.host == host
    assert len(await compute.ports_of(u)) == 1 and await compute.usage(host) == 2
    assert len([o for o in compute.hosts.ops.values() if o[1] == "spawn" and o[2] == u]) == 1
    assert await compute.events(u) == [("create", "conductor_schedule_and_build_instances", "Success"),
                                       ("create", "compute__do_build_and_run_instance", "Success")]


async def test_a_build_that_keeps_dying_is_given_up_in_error_and_cleaned(compute: Compute) -> None:
    host = await compute.add_host("h1")
    net = await compute.network_id()
    compute.hosts.interrupt[(host, "spawn")] = 99
    u = await compute.boot([{"network_id": net}])
    for _ in range(3):  # the task's max_attempts
        await crash_once(compute)
    compute.hosts.interrupt.clear()
    await compute.tasks.run_pending()  # gives the build up (ERROR), then runs its cleanup
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.host) == (st.ERROR, None, None)
    assert "was interrupted 3 times" in (await compute.faults(u))[-1]
    assert await compute.ports_of(u) == [] and await compute.usage(host) == 0
    assert (host, "destroy", u) in compute.hosts.log
    async with compute.db.read() as s:
        build = (await s.execute(sa.select(Task).where(Task.resource_id == u, Task.kind == "compute.build"))).scalar_one()
    assert build.status == FAILED


async def test_a_delete_cancels_an_action_that_has_not_started(compute: Compute) -> None:
    host = await compute.add_host("h1")
    u = await compute.boot()
    await compute.tasks.run_pending()
    async with compute.db.write() as s:
        inst = (await s.execute(sa.select(Instance).where(Instance.uuid == u))).scalar_one()
        await compute.conductor.submit_action(s, inst, "pause", {}, "req-pause", None)
        pause = (await s.execute(sa.select(Task).where(Task.resource_id == u, Task.status == "pending"))).scalar_one()
        pause.created_at = datetime.utcnow() + timedelta(minutes=1)  # the delete is claimed first
    await compute.act(u, "delete", st.DELETING)
    assert (await compute.instance(u)).deleted
    async with compute.db.read() as s:
        row = await s.get(Task, pause.id)
    assert row is not None and row.result == {"cancelled": "the server was deleted"}
    assert (host, "pause", u) not in compute.hosts.log


async def test_live_migration_wants_the_ports_on_both_hosts_while_the_guest_moves(compute: Compute) -> None:
    source = await compute.add_host("a", vcpus=64)
    dest = await compute.add_host("b")
    net = await compute.network_id()
    u = await compute.boot([{"network_id": net}])
    await compute.tasks.run_pending()
    assert (await compute.instance(u)).host == source
    seen: dict[str, Any] = {}

    async def look(host: str, inst: str, payload: dict[str, Any]) -> None:
        (port,) = await compute.ports_of(inst)
        seen.update(profile=dict(port.profile), host_id=port.host_id, target=payload.get("target"))

    compute.hosts.on_op["live_migrate"] = look
    await compute.act(u, "live-migration", st.MIGRATING, host=dest)
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.host) == (st.ACTIVE, None, dest)
    assert seen == {"profile": {"migrating_to": dest}, "host_id": source, "target": {"uri": f"fake:{dest}",
                                                                                      "disks": {}}}
    (port,) = await compute.ports_of(u)
    assert (port.host_id, port.profile) == (dest, {})
    assert [op for h, op, x in compute.hosts.log if x == u][-3:] == ["prepare_incoming", "live_migrate",
                                                                      "finish_incoming"]
    assert await compute.usage(source) == 0 and await compute.usage(dest) == 2


async def test_a_live_migration_aborted_before_it_streams_rolls_back(compute: Compute) -> None:
    from mcloud.compute.models import Migration

    source = await compute.add_host("a", vcpus=64)
    dest = await compute.add_host("b")
    u = await compute.boot()
    await compute.tasks.run_pending()

    async def abort_now(host: str, inst: str, payload: dict[str, Any]) -> None:
        # the user's abort arrives while the destination prepares (the abort action's own test is below)
        async with compute.db.write() as s:
            await s.execute(sa.update(Migration).where(Migration.instance_uuid == inst).values(status="queued"))
        await compute.act(inst, "live-migration-abort", st.MIGRATING)

    compute.hosts.on_op["prepare_incoming"] = abort_now
    await compute.act(u, "live-migration", st.MIGRATING, host=dest)
    inst = await compute.instance(u)
    assert (inst.vm_state, inst.task_state, inst.host) == (st.ACTIVE, None, source)
    assert ("live-migration-abort", "compute_live_migration_abort", "Success") in await compute.events(u)
    async with compute.db.read() as s:
        (mig,) = (await s.execute(sa.select(Migration).where(Migration.instance_uuid == u))).scalars()
    assert mig.status == "cancelled"
    ops = [op for h, op, x in compute.hosts.log if x == u]
    assert "live_migrate" not in ops and ops[-1] == "abort_incoming"
    assert await compute.usage(source) == 2 and await compute.usage(dest) == 0
    # a migration that is streaming (or done) cannot be aborted: the event says so, nothing changes
    await compute.act(u, "live-migration-abort", None, migration_id=mig.id)
    assert ("live-migration-abort", "compute_live_migration_abort", "Error") in await compute.events(u)
    assert (await compute.instance(u)).host == source
