"""The generation watcher and request ids: what makes cached validation safe across processes."""

import asyncio
import os
import re
import sqlite3

from mcloud.core import generations
from mcloud.core.db import Database
from mcloud.core.http import new_request_id


def _commit_elsewhere(path, value: int) -> None:
    """A commit from another connection, as another worker process would make it."""
    with sqlite3.connect(path) as other:
        other.execute("UPDATE core_generation SET value = ? WHERE name = 'identity'", (value,))


async def test_sqlite_watcher_sees_other_connections_commits(tmp_path):
    path = tmp_path / "g.db"
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE core_generation (name VARCHAR(64) PRIMARY KEY, value BIGINT)")
        c.execute("INSERT INTO core_generation VALUES ('identity', 1)")
    db = Database(f"sqlite:///{path}")
    watcher = generations.Watcher(db)
    try:
        assert await watcher.current("identity") == 1
        _commit_elsewhere(path, 2)
        # one answer serves the checks made without the loop running anything in between ...
        assert await watcher.current("identity") == 1
        await asyncio.sleep(0)
        # ... and once the loop has run, the other connection's commit is seen
        assert await watcher.current("identity") == 2
        _commit_elsewhere(path, 3)
        await asyncio.sleep(0)
        assert await watcher.current("identity") == 3
        assert await watcher.current("unknown") == 0
    finally:
        await watcher.close()
        await db.dispose()


def test_request_ids_are_uuid4_and_differ_in_forked_workers():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    pattern = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(i) for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker forked from the supervisor
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != new_request_id()
