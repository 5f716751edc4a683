"""Durable background tasks: a row per task in ``core_task``, workers that claim and run them.

A service registers a handler per task kind and submits tasks inside its own write
transaction, so the task exists exactly when the change that asked for it does::

    queue.register("image.import", run_import, on_failure=import_failed)
    async with db.write() as session:
        ... change the resource ...
        task = await queue.submit(session, "image.import", {"image_id": id}, resource_id=id)
    queue.wake()

Every process runs a worker loop (:meth:`TaskQueue.start`). A worker claims a runnable task in
one short write transaction: PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` lets several
workers claim side by side; on SQLite the write transaction's ``BEGIN IMMEDIATE`` makes the
claim exclusive. A claimed task carries a lease that the worker renews while the handler runs
(and whenever the handler reports progress). When a process dies, its leases run out and
another worker (or the same process after a restart) claims the task again: the handler runs
once more with ``ctx.attempt`` > 1 and must be idempotent (resume or redo). After
``max_attempts`` claims the task fails with a message saying why, and the kind's ``on_failure``
hook puts the resource in the state that says so. Nothing is left running without an owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mcloud.core.db import Base, Database

log = logging.getLogger("mcloud.tasks")

JSON = sa.JSON().with_variant(sa.JSON(), "sqlite")

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"


def _now() -> datetime:
    return datetime.utcnow()


class Task(Base):
    __tablename__ = "core_task"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    kind: Mapped[str] = mapped_column(sa.String(64), index=True)
    # what the task acts on (an image id, a server id), for listing a resource's tasks
    resource_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    owner_project: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(sa.Text)
    # 0..100, as the handler reports it
    progress: Mapped[int] = mapped_column(sa.Integer, default=0)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(sa.Integer, default=3)
    # the worker holding the task and until when its claim stands
    worker: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now)


class TaskRetry(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a handler to give the task back (it runs again later, as a new attempt)."""


@dataclasses.dataclass
class TaskContext:
    """What a handler gets: the task's id, payload and attempt, and a way to report progress."""

    id: str
    kind: str
    payload: dict[str, Any]
    resource_id: str | None
    attempt: int
    queue: TaskQueue

    @property
    def resumed(self) -> bool:
        """A former attempt was cut short (the process died or the handler asked to retry)."""
        return self.attempt > 1

    async def progress(self, percent: int, message: str | None = None) -> None:
        """Record progress (0..100) and renew the lease."""
        await self.queue._touch(self.id, progress=max(0, min(100, int(percent))), message=message)


Handler = Callable[[TaskContext], Awaitable[dict[str, Any] | None]]
#: (session, task, message): put the resource in a state that says why (inside the same transaction)
FailureHook = Callable[[AsyncSession, Task, str], Awaitable[None]]


@dataclasses.dataclass
class _Kind:
    handler: Handler
    on_failure: FailureHook | None


class TaskQueue:
    """The tasks of one database, and this process's worker over them."""

    def __init__(self, db: Database, *, lease_seconds: float = 30.0, poll_seconds: float = 1.0,
                 concurrency: int = 4, worker_id: str | None = None):
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._kinds: dict[str, _Kind] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    # ------------------------------------------------------------------ registry, submit, read

    def register(self, kind: str, handler: Handler, on_failure: FailureHook | None = None) -> None:
        self._kinds[kind] = _Kind(handler, on_failure)

    async def submit(self, session: AsyncSession, kind: str, payload: dict[str, Any], *,
                     resource_id: str | None = None, owner_project: str | None = None,
                     max_attempts: int = 3, task_id: str | None = None) -> Task:
        """Add a task inside the caller's write transaction; call :meth:`wake` after it commits."""
        now = _now()
        task = Task(id=task_id or str(uuid.uuid4()), kind=kind, payload=payload, resource_id=resource_id,
                    owner_project=owner_project, status=PENDING, max_attempts=max_attempts,
                    created_at=now, updated_at=now, progress=0, attempts=0)
        session.add(task)
        await session.flush()
        return task

    def wake(self) -> None:
        """Tell this process's worker that a task may be waiting (instead of waiting for a poll)."""
        self._wake.set()

    async def get(self, session: AsyncSession, task_id: str) -> Task | None:
        return await session.get(Task, task_id)

    async def for_resource(self, session: AsyncSession, resource_id: str) -> list[Task]:
        rows = await session.execute(sa.select(Task).where(Task.resource_id == resource_id)
                                     .order_by(Task.created_at, Task.id))
        return list(rows.scalars())

    # ------------------------------------------------------------------ claiming

    async def claim(self) -> Task | None:
        """Claim the oldest runnable task of a registered kind, or give up one that ran out of
        attempts (failing it). Returns the claimed task, or None."""
        if not self._kinds:
            return None
        while True:
            # an idle poll only reads: the write transaction (a lock on SQLite) is for a real claim
            async with self.db.read() as session:
                if (await session.execute(self._runnable().with_only_columns(Task.id))).first() is None:
                    return None
            failed: tuple[Task, str] | None = None
            async with self.db.write() as session:
                now = _now()
                query = self._runnable()
                if not self.db.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                task = (await session.execute(query)).scalar()
                if task is None:
                    return None
                if task.attempts >= task.max_attempts:
                    message = (f"The task was interrupted {task.attempts} times "
                               f"(its worker stopped before it finished) and was given up.")
                    await self._fail(session, task, message)
                    failed = (task, message)
                else:
                    task.status = RUNNING
                    task.attempts += 1
                    task.worker = self.worker_id
                    task.lease_until = now + self.lease
                    task.updated_at = now
                    return task
            if failed:
                log.warning("task %s (%s) given up: %s", failed[0].id, failed[0].kind, failed[1])

    def _runnable(self) -> sa.Select[tuple[Task]]:
        """The oldest task of a registered kind that is pending, or running on a lease run out."""
        runnable = sa.or_(Task.status == PENDING, sa.and_(Task.status == RUNNING, Task.lease_until < _now()))
        return (sa.select(Task).where(Task.kind.in_(list(self._kinds)), runnable)
                .order_by(Task.created_at, Task.id).limit(1))

    async def _fail(self, session: AsyncSession, task: Task, message: str) -> None:
        task.status = FAILED
        task.message = message
        task.worker = None
        task.lease_until = None
        task.updated_at = _now()
        kind = self._kinds.get(task.kind)
        if kind and kind.on_failure is not None:
            await kind.on_failure(session, task, message)

    async def _touch(self, task_id: str, *, progress: int | None = None, message: str | None = None) -> None:
        async with self.db.write() as session:
            values: dict[str, Any] = {"lease_until": _now() + self.lease, "updated_at": _now()}
            if progress is not None:
                values["progress"] = progress
            if message is not None:
                values["message"] = message
            await session.execute(sa.update(Task).where(Task.id == task_id, Task.worker == self.worker_id,
                                                        Task.status == RUNNING).values(**values))

    # ------------------------------------------------------------------ running

    async def run_task(self, task: Task) -> None:
        """Run one claimed task to its end (success, failure, or given back)."""
        kind = self._kinds[task.kind]
        ctx = TaskContext(id=task.id, kind=task.kind, payload=dict(task.payload or {}),
                          resource_id=task.resource_id, attempt=task.attempts, queue=self)
        heartbeat = asyncio.create_task(self._heartbeat(task.id))
        outcome: tuple[str, Any]
        try:
            result = await kind.handler(ctx)
            outcome = (SUCCEEDED, result)
        except TaskRetry as exc:
            outcome = ("retry", str(exc))
        except asyncio.CancelledError:
            # this process is stopping: the lease runs out and a worker takes the task again
            heartbeat.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 (a handler's failure is the task's, not the worker's)
            log.exception("task %s (%s) failed", task.id, task.kind)
            outcome = (FAILED, str(exc) or exc.__class__.__name__)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        async with self.db.write() as session:
            row = await session.get(Task, task.id)
            if row is None or row.worker != self.worker_id:
                return  # deleted, or another worker took it after our lease ran out
            status, value = outcome
            if status == SUCCEEDED:
                row.status = SUCCEEDED
                row.result = value or {}
                row.progress = 100
                row.worker = None
                row.lease_until = None
                row.updated_at = _now()
            elif status == "retry":
                row.status = PENDING
                row.message = value or None
                row.worker = None
                row.lease_until = None
                row.updated_at = _now()
            else:
                await self._fail(session, row, value)

    async def _heartbeat(self, task_id: str) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._touch(task_id)
            except Exception:  # noqa: BLE001 (a missed heartbeat only shortens the lease)
                log.warning("could not renew the lease of task %s", task_id, exc_info=True)

    async def run_pending(self) -> int:
        """Claim and run tasks one after another until none is runnable (for tests and tools)."""
        count = 0
        while (task := await self.claim()) is not None:
            await self.run_task(task)
            count += 1
        return count

    def start(self) -> None:
        """Start this process's worker loop (idempotent; needs a running event loop)."""
        if self._loop_task is None or self._loop_task.done():
            self._stopping = False
            self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="mcloud-tasks")

    @property
    def started(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                while len(self._running) < self.concurrency:
                    task = await self.claim()
                    if task is None:
                        break
                    job = asyncio.create_task(self.run_task(task))
                    self._running[task.id] = job
                    job.add_done_callback(lambda _j, tid=task.id: self._on_done(tid))
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 (the database may be briefly unreachable)
                log.warning("task worker could not claim a task", exc_info=True)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def _on_done(self, task_id: str) -> None:
        self._running.pop(task_id, None)
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming and cancel running handlers: their leases run out and they resume later."""
        self._stopping = True
        jobs = list(self._running.values())
        if self._loop_task is not None:
            self._loop_task.cancel()
            jobs.append(self._loop_task)
        for job in jobs:
            job.cancel()
        held = list(self._running)
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
        self._loop_task = None
        self._running.clear()
        if held:  # a clean stop gives its tasks back at once (the attempt does not count)
            with contextlib.suppress(Exception):
                async with self.db.write() as session:
                    await session.execute(
                        sa.update(Task).where(Task.id.in_(held), Task.worker == self.worker_id,
                                              Task.status == RUNNING)
                        .values(status=PENDING, worker=None, lease_until=None, attempts=Task.attempts - 1,
                                updated_at=_now()))
