"""The backup driver Protocol: what the backups service asks of the place backups live.

A backup is the raw data of a volume (or of a snapshot) cut into chunks. The driver gets the
data as a stream and gives back ``service_metadata``, a JSON-able dict the service keeps on the
backup row and hands back for restore and delete. An incremental backup gets its parent's
metadata and stores only what changed since. Every call is idempotent, since durable tasks call
again after a restart: a backup written again over a half-written one, a delete of what is gone,
are not errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

#: progress callback: (bytes done, bytes in all)
Progress = Callable[[int, int], Awaitable[None]]


class BackupError(RuntimeError):
    """A backup, restore or delete failed; the message is shown as the backup's fail_reason."""


class BackupDriver(Protocol):
    #: "file", "rbd" or "fake"
    name: str
    chunk_size: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def backup(self, backup_id: str, container: str, data: AsyncIterator[bytes], size: int,
                     parent: dict[str, Any] | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Store ``size`` bytes of ``data`` (a volume's raw data); ``parent`` is the parent
        backup's metadata for an incremental. Returns the backup's metadata, with
        ``object_count`` (the objects this backup itself wrote)."""
        ...

    def restore(self, metadata: dict[str, Any], progress: Progress | None = None) -> AsyncIterator[bytes]:
        """The backed-up data again, chunk by chunk, each checked against its sha256."""
        ...

    async def delete(self, backup_id: str, container: str) -> None:
        """Remove every object this backup wrote (never its parent's)."""

    async def object_names(self) -> set[str]:
        """Every object the store holds, for orphan checks."""
        ...
