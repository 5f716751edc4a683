"""Backup objects as RADOS objects in a Ceph pool (option ``pool``, default ``backups``): a
second pool beside the volumes', so a backup does not share the fate of the volume's images.
Options: ``pool``, ``ceph_conf`` (default /etc/ceph/ceph.conf), ``user`` (cephx, default
``admin``), ``connect_timeout``. A RADOS ``write_full`` replaces an object whole, so an object is
either the old or the new data. librados blocks: every call runs on one thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mcloud.core.ceph import CephBindingsMissing, bindings
from mcloud.volume.backup_drivers.base import BackupError

T = TypeVar("T")


class Store:
    def __init__(self, options: dict[str, Any], data_dir: Path):
        options = dict(options)
        self.pool = options.pop("pool", "backups")
        self.conf = str(options.pop("ceph_conf", "/etc/ceph/ceph.conf"))
        self.user = options.pop("user", "admin")
        self.connect_timeout = float(options.pop("connect_timeout", 30))
        if options:
            raise ValueError(f"[volume.backup] unknown options for the rbd driver: {', '.join(sorted(options))}")
        self._cluster: Any = None
        self._ioctx: Any = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup-rados")
        self._rados: Any = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def _connect(self) -> None:
        if self._ioctx is not None:
            return
        try:
            rados, _ = bindings()
        except CephBindingsMissing as exc:
            raise BackupError(str(exc)) from None
        self._rados = rados
        cluster = rados.Rados(conffile=self.conf, rados_id=self.user)
        try:
            cluster.connect(timeout=int(self.connect_timeout))
            if not cluster.pool_exists(self.pool):
                raise BackupError(f"the Ceph pool {self.pool} for backups does not exist")
            self._ioctx = cluster.open_ioctx(self.pool)
        except rados.Error as exc:
            cluster.shutdown()
            raise BackupError(f"cannot reach the Ceph cluster for backups: {exc}") from None
        except BaseException:
            cluster.shutdown()
            raise
        self._cluster = cluster

    async def start(self) -> None:
        await self._run(self._connect)

    def _close(self) -> None:
        if self._ioctx is not None:
            self._ioctx.close()
            self._ioctx = None
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=False)

    def _put(self, name: str, data: bytes) -> None:
        self._connect()
        try:
            self._ioctx.write_full(name, data)
        except self._rados.Error as exc:
            raise BackupError(f"writing backup data to Ceph failed: {exc}") from None

    async def put(self, name: str, data: bytes) -> None:
        await self._run(self._put, name, data)

    def _get(self, name: str) -> bytes:
        self._connect()
        try:
            size, _ = self._ioctx.stat(name)
            return bytes(self._ioctx.read(name, length=size)) if size else b""
        except self._rados.ObjectNotFound:
            raise BackupError(f"Backup data is missing: object {name} is not there.") from None
        except self._rados.Error as exc:
            raise BackupError(f"reading backup data from Ceph failed: {exc}") from None

    async def get(self, name: str) -> bytes:
        return await self._run(self._get, name)

    def _all(self) -> set[str]:
        self._connect()
        return {obj.key for obj in self._ioctx.list_objects()}

    def _delete_prefix(self, prefix: str) -> int:
        count = 0
        for name in sorted(self._all()):
            if name.startswith(prefix):
                try:
                    self._ioctx.remove_object(name)
                    count += 1
                except self._rados.ObjectNotFound:
                    pass
        return count

    async def delete_prefix(self, prefix: str) -> int:
        return await self._run(self._delete_prefix, prefix)

    async def names(self) -> set[str]:
        return await self._run(self._all)
