"""The remote console proxy (Nova's nova-novncproxy, inside the compute mount).

A console request (``os-getVNCConsole``, ``/servers/{id}/remote-consoles``) asks the server's host
where its VNC server is (the ``console`` host op: the driver's ``Console``); the controller then
issues a **token** naming that place and answers a URL of Nova's shape::

    http://HOST:PORT/compute/vnc/vnc_lite.html?path=compute%2Fvnc%2Fwebsockify%3Ftoken%3D...

The page is Debian's noVNC (``/usr/share/novnc``, package ``novnc``) served as it is; its
websocket goes to ``/compute/vnc/websockify?token=...``, which checks the token and relays bytes
between the websocket and the VNC server (RFB passes through untouched, as websockify does).

Tokens are stateless: the target (instance, compute host, VNC address) encrypted and signed
with a Fernet key (AES-CBC + HMAC-SHA256, from ``cryptography``) kept in ``DATA_DIR/console-key``
(0600, made once by whichever process needs it first), so any worker of the controller accepts a
token another issued, and no table holds them. A token expires ``[compute] console_token_ttl``
seconds after it was issued (Nova's ``[consoleauth] token_ttl``, 600), and is refused once its
instance is deleted or has moved to another host (Nova deletes those tokens). As Nova's proxy, a
browser's ``Origin`` must name the host the page came from.

When noVNC is not installed the pages answer 404 with a note; the websocket works without them
(any noVNC, or a websocket VNC client, can use the URL's ``path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.fernet import Fernet, InvalidToken
from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger("mcloud.compute.console")

#: where Debian's novnc package puts noVNC
NOVNC_DIR = Path("/usr/share/novnc")
#: the page the URL names (noVNC's "lite" client connects at once, as Nova's devstack uses)
PAGE = "vnc_lite.html"
#: the websocket's path inside the compute mount
WEBSOCKET = "/vnc/websockify"
KEY_FILE = "console-key"


class ConsoleDenied(Exception):
    """The token is not valid (malformed, forged, expired) or no longer names its instance."""


@dataclass(frozen=True)
class ConsoleTarget:
    instance_uuid: str
    host: str  # the compute host the instance was on when the token was issued
    address: str  # where its VNC server listens
    port: int
    protocol: str = "vnc"


def load_key(data_dir: Path) -> bytes:
    """The Fernet key of ``DATA_DIR/console-key``, made (0600) when missing. Several processes
    may race to make it: one link wins and every process reads the winner's."""
    path = Path(data_dir) / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


class ConsoleAuth:
    """Issues and checks console tokens (see the module's docstring)."""

    def __init__(self, data_dir: Path, ttl: float):
        self.fernet = Fernet(load_key(data_dir))
        self.ttl = int(ttl)

    def issue(self, target: ConsoleTarget) -> str:
        body = {"i": target.instance_uuid, "h": target.host, "a": target.address, "p": target.port,
                "t": target.protocol}
        return self.fernet.encrypt(json.dumps(body, separators=(",", ":")).encode()).decode()

    def check(self, token: str | None) -> ConsoleTarget:
        if not token:
            raise ConsoleDenied("no token")
        try:
            body = json.loads(self.fernet.decrypt(token.encode(), ttl=self.ttl))
            return ConsoleTarget(instance_uuid=str(body["i"]), host=str(body["h"]), address=str(body["a"]),
                                 port=int(body["p"]), protocol=str(body.get("t") or "vnc"))
        except (InvalidToken, ValueError, KeyError, TypeError):
            raise ConsoleDenied("the token is invalid or has expired") from None


def console_url(base: str, token: str) -> str:
    """Nova's console URL shape: the noVNC page, its websocket ``path`` carrying the token."""
    path = f"compute{WEBSOCKET}?token={token}"
    return f"{base.rstrip('/')}/compute/vnc/{PAGE}?path={quote(path, safe='')}"


def _origin_allowed(ws: WebSocket) -> bool:
    """Nova's check: a browser's Origin must be the host the request came to (no cross-site
    page may open a console); a client without Origin (not a browser) passes."""
    origin = ws.headers.get("origin")
    if not origin:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = ws.headers.get("host", "")
    expected = urlsplit(f"//{host}").hostname
    return parts.hostname == expected


async def _still_there(compute: Any, target: ConsoleTarget) -> bool:
    """Whether the token's instance still exists on the host the token names."""
    import sqlalchemy as sa

    from mcloud.compute.models import Instance

    async with compute.db.read() as session:
        row = (await session.execute(sa.select(Instance.host, Instance.deleted).where(
            Instance.uuid == target.instance_uuid))).first()
    return row is not None and not row.deleted and row.host == target.host


async def websockify(ws: WebSocket) -> None:
    """``/compute/vnc/websockify?token=``: relay between the websocket and the VNC server."""
    compute = ws.app.state.compute
    token = ws.query_params.get("token") or ws.cookies.get("token")
    try:
        target = compute.hosts.console_auth.check(token)
        if not _origin_allowed(ws):
            raise ConsoleDenied(f"origin {ws.headers.get('origin')} is not this host")
        if not await _still_there(compute, target):
            raise ConsoleDenied(f"instance {target.instance_uuid} is no longer on host {target.host}")
    except ConsoleDenied as exc:
        log.info("console connection refused: %s", exc)
        await ws.close(code=1008)  # before accept: the handshake is answered 403
        return
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(target.address, target.port), 10)
    except (OSError, asyncio.TimeoutError) as exc:
        log.warning("console of %s: cannot reach %s:%s: %s", target.instance_uuid, target.address, target.port, exc)
        await ws.close(code=1011)
        return
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="binary" if "binary" in offered else None)
    log.info("console of instance %s on host %s opened (%s:%s)", target.instance_uuid, target.host,
             target.address, target.port)

    async def client_to_server() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None and message.get("text") is not None:
                data = message["text"].encode()
            if data:
                writer.write(data)
                await writer.drain()

    async def server_to_client() -> None:
        while data := await reader.read(65536):
            await ws.send_bytes(data)

    tasks = [asyncio.ensure_future(client_to_server()), asyncio.ensure_future(server_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError, RuntimeError):
                await task
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close()
    log.info("console of instance %s closed", target.instance_uuid)


def add_routes(app: Any) -> None:
    """The websocket, then noVNC's pages (Debian's files) under ``/compute/vnc/``."""
    from starlette.staticfiles import StaticFiles

    from mcloud.core.errors import NotFound

    app.add_api_websocket_route(WEBSOCKET, websockify)
    if NOVNC_DIR.is_dir():
        app.mount("/vnc", StaticFiles(directory=NOVNC_DIR, follow_symlink=True), name="novnc")
    else:
        async def no_novnc(path: str) -> None:
            raise NotFound("noVNC is not installed on this controller (Debian package novnc); the console's "
                           f"websocket still answers at /compute{WEBSOCKET}?token=... for any VNC websocket client.")

        app.add_api_route("/vnc/{path:path}", no_novnc, methods=["GET"])
