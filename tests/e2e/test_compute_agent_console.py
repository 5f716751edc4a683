"""The remote console proxy against a real `mcloud up` (the fake hypervisor's console names a
tiny VNC server of this test): `openstack console url show --novnc` gives Nova's URL shape; a
websocket client speaking RFB through the URL's `path` reaches the VNC server (handshake and a
framebuffer update); a forged token, another site's Origin, an expired token and the token of a
deleted server are refused; noVNC's page is served."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from mcloud.compute.consoleproxy import NOVNC_DIR
from tests.e2e.conftest import ADMIN_PASSWORD, FAST_ENV, unique
from tests.harness import LiveCloud, free_port, missing
from tests.rfb import TinyVnc, handshake, websocket_url

TTL = 8


@pytest.fixture(scope="module")
def vnc() -> Iterator[TinyVnc]:
    server = TinyVnc()
    yield server
    server.close()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, vnc) -> Iterator[LiveCloud]:
    data_dir = tmp_path_factory.mktemp("console-cloud")
    (data_dir / "mcloud.toml").write_text(f"[compute.fake]\nvnc_port = {vnc.port}\n")
    live = LiveCloud(data_dir, free_port(), admin_password=ADMIN_PASSWORD,
                     env={**FAST_ENV, "MCLOUD_COMPUTE_DRIVER": "fake",
                          "MCLOUD_COMPUTE_CONSOLE_TOKEN_TTL": str(TTL)})
    live.start()
    yield live
    live.stop()


def cli_json(cloud: LiveCloud, *args: str):
    return json.loads(cloud.openstack(*args, json_out=True).stdout)


@pytest.fixture(scope="module")
def server(cloud) -> dict:
    image_file = cloud.data_dir / "console-image.raw"
    image_file.write_bytes(b"\0" * 4096)
    image = unique("img")
    cloud.openstack("image", "create", image, "--disk-format", "raw", "--container-format", "bare",
                    "--file", str(image_file))
    return cli_json(cloud, "server", "create", unique("vm"), "--image", image, "--flavor", "m1.nano",
                    "--nic", "none", "--wait")


def console_url(cloud: LiveCloud, server_id: str) -> str:
    out = cli_json(cloud, "--os-compute-api-version", "2.1", "console", "url", "show", "--novnc", server_id)
    assert out["type"] == "novnc"
    return out["url"]


def refused(ws_url: str, **kw) -> int:
    with pytest.raises(InvalidStatus) as info:
        handshake(ws_url, **kw)
    return info.value.response.status_code


def test_console_url_reaches_the_vnc_server(cloud, vnc, server):
    url = console_url(cloud, server["id"])
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == cloud.url
    assert parts.path == "/compute/vnc/vnc_lite.html"
    path = parse_qs(parts.query)["path"][0]
    assert path.startswith("compute/vnc/websockify?token=")
    ws_url = websocket_url(url)

    before = vnc.connections
    init = handshake(ws_url)
    assert (init.width, init.height, init.name) == (64, 48, "mcloud-test-vnc")
    # a token serves until it expires (noVNC reconnects with it), from a browser on this host too
    init = handshake(ws_url, origin=cloud.url)
    assert init.name == "mcloud-test-vnc" and vnc.connections == before + 2

    # refused: another site's page, a forged or missing token, a token of another cloud's key
    assert refused(ws_url, origin="http://evil.example") == 403
    token = parse_qs(urlsplit(ws_url).query)["token"][0]
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    assert refused(ws_url.replace(token, forged)) == 403
    assert refused(ws_url.split("?")[0]) == 403
    assert vnc.connections == before + 2  # none of the refused ones reached the VNC server


def test_tokens_expire_and_die_with_their_server(cloud, vnc, server):
    ws_url = websocket_url(console_url(cloud, server["id"]))
    assert handshake(ws_url).name == "mcloud-test-vnc"
    time.sleep(TTL + 1.5)
    assert refused(ws_url) == 403

    ws_url = websocket_url(console_url(cloud, server["id"]))
    assert handshake(ws_url, update=False).name == "mcloud-test-vnc"
    cloud.openstack("server", "delete", "--wait", server["id"])
    assert refused(ws_url) == 403


def test_the_key_is_private_and_the_novnc_page_is_served(cloud):
    key = Path(cloud.data_dir) / "console-key"
    assert key.stat().st_mode & 0o777 == 0o600
    if not NOVNC_DIR.is_dir():
        missing("noVNC (Debian package novnc)")
    page = httpx.get(f"{cloud.url}/compute/vnc/vnc_lite.html", timeout=10)
    assert page.status_code == 200 and "noVNC" in page.text
    assert httpx.get(f"{cloud.url}/compute/vnc/core/rfb.js", timeout=10).status_code == 200
