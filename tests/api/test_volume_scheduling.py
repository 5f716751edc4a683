"""Volume scheduling, capacity and faults through Cinder's API, on a cloud of its own (its own
database, two fake backends ``fast`` (10 GB) and ``slow`` (20 GB), over-subscription ratio 1, a
type per backend by ``volume_backend_name``): 30 simultaneous creates on a 10 GB pool give exactly
10 available volumes and 20 in error with Cinder's user message (no valid backend), and the pool's
allocated capacity matches, on SQLite and PostgreSQL; a backend failure leaves error, nothing on
the backend and nothing claimed; a create task whose process dies mid-way is resumed and
finishes, one given up after its attempts ends in error; nothing is orphaned."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mcloud import migrations
from mcloud.app import Cloud
from mcloud.core.config import Config
from mcloud.core.tasks import RUNNING, Task, TaskQueue
from tests.api.test_compute_lifecycle import own_database
from tests.api.volume_helpers import VolumeWorld, uniq, volume_world, wait_volume
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, TEST_ENV

BACKENDS = {"fast": {"driver": "fake", "total_gb": 10}, "slow": {"driver": "fake", "total_gb": 20}}


@contextlib.asynccontextmanager
async def volume_cloud(database: str, data_dir: Path, volume: dict[str, Any],
                       types: dict[str, str]) -> AsyncIterator[VolumeWorld]:
    """A cloud of its own (own database; ``[volume]`` = ``volume``: backends no other test module
    shares) and its world, project a's quota raised, a type per ``types`` item (name: the
    volume_backend_name it asks for)."""
    url = await own_database(database, data_dir)
    config = Config(data_dir=data_dir, overrides={"database": {"url": url}, "volume": volume},
                    environ={**TEST_ENV, "MCLOUD_SERVER_PORT": "8080"})
    migrations.upgrade(config.database_url)
    cloud = Cloud(config)
    await cloud.bootstrap(ADMIN_PASSWORD, DEMO_PASSWORD)
    try:
        async with volume_world(cloud) as world:
            await world.admin.put(f"/os-quota-sets/{world.projects['a']}", {"quota_set": {
                "volumes": 1000, "gigabytes": 10000, "snapshots": 1000}}, expect=200)
            for name, backend in types.items():
                await world.admin.post("/types", {"volume_type": {
                    "name": name, "extra_specs": {"volume_backend_name": backend}}}, expect=200)
            yield world
    finally:
        await cloud.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VolumeWorld]:
    async with volume_cloud(database, tmp_path_factory.mktemp("volsched"), {
            "max_over_subscription_ratio": 1.0, "backends": BACKENDS},
            {"fast": "fast", "slow": "slow", "nowhere": "none"}) as world:
        yield world


async def settle(w: VolumeWorld, ids: list[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await w["member"].get("/volumes/detail", params={"limit": 1000})
        assert r.status_code == 200, r.text
        vols = {v["id"]: v for v in r.json()["volumes"] if v["id"] in ids}
        if len(vols) == len(ids) and all(v["status"] in ("available", "error") for v in vols.values()):
            return vols
        assert loop.time() < deadline, Counter(v["status"] for v in vols.values())
        await asyncio.sleep(0.1)


async def pools(w: VolumeWorld) -> dict[str, dict[str, Any]]:
    r = await w.admin.get("/scheduler-stats/get_pools", params={"detail": "True"}, expect=200)
    return {p["name"].split("@")[1].split("#")[0]: p["capabilities"] for p in r.json()["pools"]}


async def messages_of(w: VolumeWorld, volume_id: str) -> list[dict[str, Any]]:
    r = await w["member"].at("3.3").get("/messages", params={"resource_uuid": volume_id}, expect=200)
    return r.json()["messages"]


async def create(w: VolumeWorld, **fields: Any) -> str:
    r = await w["member"].post("/volumes", {"volume": {"size": 1, "name": uniq("v"), **fields}}, expect=202)
    return r.json()["volume"]["id"]


async def delete_all(w: VolumeWorld, ids: list[str]) -> None:
    await asyncio.gather(*(w["member"].delete(f"/volumes/{vid}", expect=202) for vid in ids))
    for vid in ids:
        await wait_volume(w["member"], vid, "deleted", timeout=60)


async def test_concurrent_creates_never_overcommit_a_pool(w: VolumeWorld) -> None:
    ids = await asyncio.gather(*(create(w, volume_type="fast") for _ in range(30)))
    vols = await settle(w, list(ids))
    statuses = Counter(v["status"] for v in vols.values())
    assert statuses == {"available": 10, "error": 20}
    for v in vols.values():
        if v["status"] == "available":
            assert (await w.admin.get(f"/volumes/{v['id']}", expect=200)).json()["volume"][
                "os-vol-host-attr:host"] == w.cloud.volume.backends.pool_of("fast")
    failed = next(v for v in vols.values() if v["status"] == "error")
    [msg] = await messages_of(w, failed["id"])
    assert msg["event_id"] == "VOLUME_VOLUME_001_003" and "schedule allocate volume" in msg["user_message"]
    assert (await pools(w))["fast"]["allocated_capacity_gb"] == 10
    # the other type still has its own room
    other = await create(w, volume_type="slow", size=5)
    assert (await wait_volume(w["member"], other, "available"))["volume_type"] == "slow"
    await delete_all(w, list(ids) + [other])
    caps = await pools(w)
    assert caps["fast"]["allocated_capacity_gb"] == 0 and caps["slow"]["allocated_capacity_gb"] == 0
    assert await w.cloud.volume.manager.orphans() == {}


async def test_no_backend_for_the_type_and_too_big(w: VolumeWorld) -> None:
    for fields in ({"volume_type": "nowhere"}, {"volume_type": "slow", "size": 21}):
        vid = await create(w, **fields)
        assert (await wait_volume(w["member"], vid, "error"))["status"] == "error"
        assert [m["event_id"] for m in await messages_of(w, vid)] == ["VOLUME_VOLUME_001_003"]
        assert (await w.admin.get(f"/volumes/{vid}", expect=200)).json()["volume"]["os-vol-host-attr:host"] is None
        await delete_all(w, [vid])


async def test_a_backend_failure_leaves_error_and_nothing_behind(w: VolumeWorld) -> None:
    fast = w.cloud.volume.backends.get("fast")
    before = (await pools(w))["fast"]["allocated_capacity_gb"]
    fast.fail_next("create")
    vid = await create(w, volume_type="fast", size=2)
    await wait_volume(w["member"], vid, "error")
    assert fast.size_of(vid) is None
    assert (await pools(w))["fast"]["allocated_capacity_gb"] == before
    assert [m["event_id"] for m in await messages_of(w, vid)] == ["VOLUME_VOLUME_008_012"]
    ok = await create(w, volume_type="fast", size=2)
    await wait_volume(w["member"], ok, "available")
    assert fast.size_of(ok) == 2
    await delete_all(w, [vid, ok])
    assert (await pools(w))["fast"]["allocated_capacity_gb"] == before


async def test_a_create_cut_short_by_a_dying_process_is_resumed(w: VolumeWorld) -> None:
    """A worker (a process that dies) claims the create and is killed while the backend works;
    after its lease runs out the cloud's own worker takes the task again and finishes it."""
    volume = w.cloud.volume
    fast = volume.backends.get("fast")
    await volume.tasks.stop()  # the cloud's worker waits; a doomed one takes the task
    try:
        vid = await create(w, volume_type="fast", size=1)
        doomed = TaskQueue(volume.db, lease_seconds=0.5, worker_id="doomed")
        volume.manager.register(doomed)
        task = await doomed.claim()
        assert task is not None and task.resource_id == vid
        fast.delay = 2.0
        job = asyncio.create_task(doomed.run_task(task))
        await asyncio.sleep(0.5)  # scheduled and claimed, the backend mid-create
        job.cancel()  # the process dies: no clean give-back, the task stays running
        with pytest.raises(asyncio.CancelledError):
            await job
        fast.delay = 0.0
        async with volume.db.read() as s:
            assert (await s.get(Task, task.id)).status == RUNNING
        assert (await w["member"].get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "creating"
    finally:
        volume.tasks.start()
    vol = await wait_volume(w["member"], vid, "available", timeout=30)
    async with volume.db.read() as s:
        t = await s.get(Task, task.id)
        assert t.attempts == 2 and t.status == "succeeded"
    assert fast.size_of(vid) == 1 and vol["size"] == 1
    await delete_all(w, [vid])
    assert await volume.manager.orphans() == {}


async def test_a_task_given_up_leaves_error(w: VolumeWorld) -> None:
    volume = w.cloud.volume
    await volume.tasks.stop()
    try:
        vid = await create(w, volume_type="fast")
        async with volume.db.write() as s:  # it was claimed and lost as often as it may be
            [t] = [t for t in await volume.tasks.for_resource(s, vid) if t.kind == "volume.create"]
            t.attempts = t.max_attempts
    finally:
        volume.tasks.start()
    await wait_volume(w["member"], vid, "error", timeout=30)
    assert await messages_of(w, vid)
    await delete_all(w, [vid])
    assert await volume.manager.orphans() == {}
