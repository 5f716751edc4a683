"""QMP sessions with a guest's qemu, on upstream's asyncio client (PyPI ``qemu.qmp``).

A session is short: connect to the instance's monitor socket, run a few commands, close. QMP
errors become :class:`DriverError` with qemu's own description.

    async with Monitor(path) as qmp:
        status = await qmp.execute("query-status")
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, ExecuteError, QMPClient, QMPError

from mcloud.compute.drivers.base import DriverError

# qemu.qmp logs every message at DEBUG and its own disconnects at WARNING and above
logging.getLogger("qemu.qmp").setLevel(logging.ERROR)


class Monitor:
    def __init__(self, path: Path, name: str = "mcloud", timeout: float = 10.0):
        self.path = path
        self.timeout = timeout
        self.client = QMPClient(name)

    async def __aenter__(self) -> Monitor:
        try:
            await asyncio.wait_for(self.client.connect(str(self.path)), self.timeout)
        except (OSError, QMPError, asyncio.TimeoutError) as exc:
            raise DriverError(f"cannot reach qemu's monitor {self.path}: {exc}") from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.wait_for(self.client.disconnect(), 5)
        except (QMPError, OSError, EOFError, asyncio.TimeoutError):
            pass  # qemu went away (a quit, a power-off): the session is over either way

    async def execute(self, command: str, arguments: Mapping[str, Any] | None = None,
                      timeout: float | None = None) -> Any:
        try:
            return await asyncio.wait_for(self.client.execute(command, dict(arguments or {})),
                                          timeout or self.timeout)
        except ExecuteError as exc:
            raise DriverError(f"qemu refused {command}: {exc}") from exc
        except (QMPError, OSError, EOFError) as exc:
            raise DriverError(f"qemu's monitor failed during {command}: {exc}") from exc
        except asyncio.TimeoutError as exc:
            raise DriverError(f"qemu did not answer {command} within {timeout or self.timeout} s") from exc

    async def status(self) -> str:
        return str((await self.execute("query-status"))["status"])

    def send_fd(self, fd: int) -> None:
        """Hand ``fd`` to qemu over the socket (SCM_RIGHTS); the next ``getfd``/``add-fd`` names it."""
        self.client.send_fd_scm(fd)

    def listen(self, *names: str) -> EventListener:
        """A listener for events ``names``; use as ``with qmp.listening(listener):`` before the
        command that causes them."""
        return EventListener(names=list(names) or None)

    def listening(self, listener: EventListener):  # type: ignore[no-untyped-def]
        return self.client.listen(listener)

    @staticmethod
    async def wait_event(listener: EventListener, timeout: float,
                         match: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The next event of ``listener`` that ``match`` accepts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise DriverError(f"qemu sent no {', '.join(listener.names or ['event'])} within {timeout} s")
            try:
                event = await asyncio.wait_for(listener.get(), left)
            except asyncio.TimeoutError:
                continue
            if match is None or match(dict(event)):
                return dict(event)
