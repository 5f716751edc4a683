"""core/tasks.py: durable tasks claimed by workers, resumed after a worker dies, given up with a
reason after too many tries, never run twice at once. On every database of --databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from mcloud import migrations
from mcloud.core.db import Database
from mcloud.core.tasks import FAILED, PENDING, RUNNING, SUCCEEDED, Task, TaskContext, TaskQueue, TaskRetry


@pytest.fixture
async def db(database: str) -> AsyncIterator[Database]:
    migrations.upgrade(database)
    d = Database(database)
    yield d
    await d.dispose()


async def _submit(db: Database, queue: TaskQueue, kind: str, payload: dict[str, Any], **kw: Any) -> str:
    async with db.write() as session:
        task = await queue.submit(session, kind, payload, **kw)
    return task.id


async def _task(db: Database, task_id: str) -> Task:
    async with db.read() as session:
        task = await session.get(Task, task_id)
    assert task is not None
    return task


async def test_a_task_runs_to_success_with_progress(db):
    queue = TaskQueue(db)
    seen: list[dict[str, Any]] = []

    async def handler(ctx: TaskContext) -> dict[str, Any]:
        seen.append(ctx.payload)
        await ctx.progress(50, "half way")
        return {"answer": ctx.payload["n"] * 2}

    kind = f"test.double.{id(queue)}"
    queue.register(kind, handler)
    task_id = await _submit(db, queue, kind, {"n": 21}, resource_id="r1")
    assert await queue.run_pending() == 1
    task = await _task(db, task_id)
    assert task.status == SUCCEEDED and task.result == {"answer": 42} and task.progress == 100
    assert task.message == "half way" and task.attempts == 1 and task.worker is None
    assert seen == [{"n": 21}]
    async with db.read() as session:
        assert [t.id for t in await queue.for_resource(session, "r1")] == [task_id]


async def test_a_failing_handler_fails_the_task_and_tells_the_owner(db):
    queue = TaskQueue(db)
    failures: list[tuple[str, str]] = []

    async def handler(ctx: TaskContext) -> None:
        raise RuntimeError("the disk is on fire")

    async def on_failure(session: Any, task: Task, message: str) -> None:
        failures.append((task.id, message))

    kind = f"test.fail.{id(queue)}"
    queue.register(kind, handler, on_failure=on_failure)
    task_id = await _submit(db, queue, kind, {})
    await queue.run_pending()
    task = await _task(db, task_id)
    assert task.status == FAILED and task.message == "the disk is on fire"
    assert failures == [(task_id, "the disk is on fire")]


async def test_a_task_whose_worker_died_is_resumed_by_another(db):
    kind = f"test.resume.{id(db)}"
    dead = TaskQueue(db, lease_seconds=0.2)
    dead.register(kind, lambda ctx: asyncio.sleep(0))  # never run: the worker "dies" after claiming
    task_id = await _submit(db, dead, kind, {"step": 1})
    claimed = await dead.claim()
    assert claimed is not None and claimed.id == task_id
    assert (await _task(db, task_id)).status == RUNNING
    # another worker (or the same process after a restart) sees nothing until the lease runs out
    alive = TaskQueue(db, lease_seconds=5)
    attempts: list[int] = []

    async def handler(ctx: TaskContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        assert ctx.resumed
        return {"resumed": True}

    alive.register(kind, handler)
    assert await alive.claim() is None
    await asyncio.sleep(0.3)
    assert await alive.run_pending() == 1
    task = await _task(db, task_id)
    assert task.status == SUCCEEDED and attempts == [2] and task.result == {"resumed": True}


async def test_a_task_that_keeps_dying_is_given_up_with_a_reason(db):
    kind = f"test.giveup.{id(db)}"
    failures: list[str] = []

    async def on_failure(session: Any, task: Task, message: str) -> None:
        failures.append(message)

    queue = TaskQueue(db, lease_seconds=0.05)
    queue.register(kind, lambda ctx: asyncio.sleep(0), on_failure=on_failure)
    task_id = await _submit(db, queue, kind, {}, max_attempts=2)
    for _ in range(2):
        assert await queue.claim() is not None
        await asyncio.sleep(0.1)
    assert await queue.claim() is None  # the third claim fails it instead
    task = await _task(db, task_id)
    assert task.status == FAILED and "interrupted 2 times" in (task.message or "")
    assert failures == [task.message]


async def test_retry_gives_the_task_back(db):
    kind = f"test.retry.{id(db)}"
    queue = TaskQueue(db)
    calls: list[int] = []

    async def handler(ctx: TaskContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise TaskRetry("not yet")
        return {}

    queue.register(kind, handler)
    task_id = await _submit(db, queue, kind, {})
    await queue.run_pending()
    assert calls == [1, 2] and (await _task(db, task_id)).status == SUCCEEDED


async def test_concurrent_workers_never_claim_one_task_twice(db):
    kind = f"test.race.{id(db)}"
    runs: list[str] = []

    async def handler(ctx: TaskContext) -> None:
        runs.append(ctx.id)
        await asyncio.sleep(0.01)

    queues = [TaskQueue(db) for _ in range(3)]
    for q in queues:
        q.register(kind, handler)
    ids = [await _submit(db, queues[0], kind, {"i": i}) for i in range(12)]
    await asyncio.gather(*(q.run_pending() for q in queues))
    assert sorted(runs) == sorted(ids)
    async with db.read() as session:
        statuses = (await session.execute(sa.select(Task.status).where(Task.id.in_(ids)))).scalars().all()
    assert set(statuses) == {SUCCEEDED}


async def test_the_worker_loop_runs_tasks_and_a_clean_stop_gives_them_back(db):
    kind = f"test.loop.{id(db)}"
    queue = TaskQueue(db, poll_seconds=0.05)
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(ctx: TaskContext) -> None:
        started.set()
        await release.wait()

    queue.register(kind, handler)
    queue.start()
    task_id = await _submit(db, queue, kind, {})
    queue.wake()
    await asyncio.wait_for(started.wait(), 5)
    await queue.stop()  # mid-run: the task goes back to pending, the attempt not counted
    task = await _task(db, task_id)
    assert task.status == PENDING and task.attempts == 0 and task.worker is None
    # a new worker finishes it
    again = TaskQueue(db, poll_seconds=0.05)
    done = asyncio.Event()

    async def finish(ctx: TaskContext) -> None:
        done.set()

    again.register(kind, finish)
    again.start()
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.1)
    await again.stop()
    assert (await _task(db, task_id)).status == SUCCEEDED
