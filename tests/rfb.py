"""The remote framebuffer protocol (RFB 3.8, RFC 6143) for console tests: a client that speaks
the handshake through a console URL's websocket (as noVNC does), and a tiny VNC server standing
in for a guest's when a test has no qemu.

    url = cloud.openstack("console", "url", "show", "--novnc", server_id, ...)
    init = handshake(websocket_url(url))   # ServerInit: width, height, name
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.sync.client import connect

VERSION = b"RFB 003.008\n"


@dataclass
class ServerInit:
    width: int
    height: int
    name: str


def websocket_url(console_url: str) -> str:
    """The websocket a noVNC page at ``console_url`` connects to (its ``path`` parameter, on the
    page's host), as noVNC's vnc_lite.html builds it."""
    parts = urlsplit(console_url)
    path = parse_qs(parts.query)["path"][0]
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/{path.lstrip('/')}"


class _Stream:
    """Exact reads over websocket messages (a message may hold part of an RFB message or several)."""

    def __init__(self, ws):
        self.ws = ws
        self.buffer = b""

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            message = self.ws.recv(timeout=20)
            self.buffer += message if isinstance(message, bytes) else message.encode()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def handshake(ws_url: str, origin: str | None = None, update: bool = True) -> ServerInit:
    """Open the websocket (subprotocol ``binary``, as noVNC) and do RFB 3.8's handshake with
    security type None; returns the server's ServerInit. With ``update``, also asks for a
    framebuffer update and reads its header (the server really draws)."""
    kwargs = {"origin": origin} if origin else {}
    with connect(ws_url, subprotocols=["binary"], open_timeout=20, **kwargs) as ws:
        s = _Stream(ws)
        version = s.read(12)
        assert version.startswith(b"RFB 003."), version
        ws.send(VERSION)
        count = s.read(1)[0]
        assert count > 0, f"the server refused: {s.read(struct.unpack('>I', s.read(4))[0])!r}"
        types = s.read(count)
        assert 1 in types, f"the VNC server wants authentication {list(types)}"
        ws.send(bytes([1]))
        assert struct.unpack(">I", s.read(4))[0] == 0, "security handshake failed"
        ws.send(bytes([1]))  # ClientInit: shared
        width, height = struct.unpack(">HH", s.read(4))
        s.read(16)  # pixel format
        name = s.read(struct.unpack(">I", s.read(4))[0]).decode(errors="replace")
        if update:
            # FramebufferUpdateRequest (non-incremental, whole screen)
            ws.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
            kind = s.read(1)[0]
            while kind != 0:  # skip SetColourMapEntries (1) / Bell (2) / ServerCutText (3)
                if kind == 2:
                    pass
                elif kind == 1:
                    s.read(1)
                    _, n = struct.unpack(">HH", s.read(4))
                    s.read(6 * n)
                elif kind == 3:
                    s.read(3)
                    s.read(struct.unpack(">I", s.read(4))[0])
                kind = s.read(1)[0]
            s.read(1)
            rects = struct.unpack(">H", s.read(2))[0]
            assert rects >= 1, "an empty framebuffer update"
        return ServerInit(width, height, name)


class TinyVnc:
    """A VNC server on 127.0.0.1 that does RFB 3.8's handshake (no authentication) and answers
    a FramebufferUpdateRequest with one raw 1x1 rectangle. ``connections`` counts clients."""

    def __init__(self, name: str = "mcloud-test-vnc"):
        self.name = name.encode()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client left")
            data += chunk
        return data

    def _client(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(VERSION)
                self._read(conn, 12)
                conn.sendall(bytes([1, 1]))  # one security type: None
                self._read(conn, 1)
                conn.sendall(struct.pack(">I", 0))
                self._read(conn, 1)  # ClientInit
                pixel_format = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
                conn.sendall(struct.pack(">HH", 64, 48) + pixel_format + struct.pack(">I", len(self.name)) + self.name)
                while True:
                    kind = self._read(conn, 1)[0]
                    if kind == 3:  # FramebufferUpdateRequest
                        self._read(conn, 9)
                        conn.sendall(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 1, 1, 0) + b"\0" * 4)
                    elif kind == 0:
                        self._read(conn, 19)
                    elif kind == 2:
                        n = struct.unpack(">xH", self._read(conn, 3))[0]
                        self._read(conn, 4 * n)
                    elif kind == 4:
                        self._read(conn, 7)
                    elif kind == 5:
                        self._read(conn, 5)
                    else:
                        return
            except (ConnectionError, OSError):
                return

    def close(self) -> None:
        self.sock.close()
