"""The image service through the real `openstack` CLI and openstacksdk against a live `mcloud up`:
create from a real qcow2 (qemu-img), save, properties, sharing with another project that accepts,
deactivate/reactivate, delete."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import openstack
import pytest

from tests.e2e.conftest import Client, unique
from tests.harness import missing

pytestmark = pytest.mark.e2e


def make_qcow2(path: Path, size: str = "64M") -> Path:
    if shutil.which("qemu-img") is None:
        missing("qemu-img (Debian package qemu-utils)")
    raw = path.with_suffix(".raw")
    raw.write_bytes(b"mCloud e2e" * 100_000)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True)
    subprocess.run(["qemu-img", "resize", "-q", str(path), size], check=True)
    return path


def test_image_lifecycle_with_the_cli(cli: Client, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path / "disk.qcow2")
    name = unique("cli-image")
    image = cli.json("image", "create", "--file", str(disk), "--disk-format", "qcow2", "--container-format",
                     "bare", "--property", "os_distro=mcloud", "--tag", "e2e", name)
    assert image["status"] == "active" and image["disk_format"] == "qcow2"
    shown = cli.json("image", "show", image["id"])
    assert shown["size"] == disk.stat().st_size and shown["virtual_size"] == 64 * 1024 * 1024
    assert shown["checksum"] == hashlib.md5(disk.read_bytes()).hexdigest()
    assert shown["properties"]["os_distro"] == "mcloud" and "e2e" in shown["tags"]
    assert name in {i["Name"] for i in cli.json("image", "list")}

    saved = tmp_path / "saved.qcow2"
    cli.run("image", "save", "--file", str(saved), image["id"])
    assert saved.read_bytes() == disk.read_bytes()

    cli.run("image", "set", "--property", "hw_disk_bus=scsi", "--min-ram", "128", image["id"])
    shown = cli.json("image", "show", image["id"])
    assert shown["properties"]["hw_disk_bus"] == "scsi" and shown["min_ram"] == 128
    cli.run("image", "unset", "--property", "hw_disk_bus", image["id"])
    assert "hw_disk_bus" not in cli.json("image", "show", image["id"])["properties"]

    # share with the demo project, which accepts it from its side
    demo = cli.json("project", "show", "demo")["id"]
    cli.run("image", "set", "--shared", image["id"])
    assert image["id"] not in {i["ID"] for i in cli.json("image", "list", cloud="mcloud-demo")}
    cli.run("image", "add", "project", image["id"], demo)
    members = cli.json("image", "member", "list", image["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(demo, "pending")]
    cli.run("image", "set", "--accept", image["id"], cloud="mcloud-demo")
    assert image["id"] in {i["ID"] for i in cli.json("image", "list", cloud="mcloud-demo")}
    assert cli.json("image", "member", "list", image["id"])[0]["Status"] == "accepted"
    # the member may read but not change it
    denied = cli.run("image", "set", "--name", "stolen", image["id"], cloud="mcloud-demo", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr + denied.stdout

    cli.run("image", "set", "--deactivate", image["id"])
    assert cli.json("image", "show", image["id"])["status"] == "deactivated"
    failed = cli.run("image", "save", "--file", str(tmp_path / "no.qcow2"), image["id"], cloud="mcloud-demo",
                     check=False)
    assert failed.returncode != 0
    cli.run("image", "set", "--activate", image["id"])
    assert cli.json("image", "show", image["id"])["status"] == "active"

    cli.run("image", "remove", "project", image["id"], demo)
    assert image["id"] not in {i["ID"] for i in cli.json("image", "list", cloud="mcloud-demo")}
    cli.run("image", "delete", image["id"])
    gone = cli.run("image", "show", image["id"], check=False)
    assert gone.returncode != 0 and ("No Image found" in gone.stderr or "404" in gone.stderr)


def test_interoperable_import_with_the_cli(cli: Client, tmp_path: Path) -> None:
    import time

    disk = make_qcow2(tmp_path / "import.qcow2")

    def active(image_id: str) -> dict:
        for _ in range(100):
            shown = cli.json("image", "show", image_id)
            if shown["status"] == "active":
                return shown
            time.sleep(0.2)
        raise AssertionError(f"image {image_id} stayed {shown['status']}")

    # `image create --import` stages the file and imports it with glance-direct
    image = cli.json("image", "create", "--import", "--file", str(disk), "--disk-format", "qcow2",
                     "--container-format", "bare", unique("imported"))
    shown = active(image["id"])
    assert shown["size"] == disk.stat().st_size and shown["virtual_size"] == 64 * 1024 * 1024
    # the same in two steps; the image is made with a terminal as stdin, as a person types it (a
    # pipe or file as stdin is taken as the image's data)
    import json
    import os
    import pty
    import sys

    leader, terminal = pty.openpty()
    try:
        made = subprocess.run([str(Path(sys.executable).parent / "openstack"), "--os-cloud", "mcloud", "image",
                               "create", "--disk-format", "qcow2", "--container-format", "bare", unique("staged"),
                               "-f", "json"], stdin=terminal, capture_output=True, text=True, env=cli.cloud.env,
                              timeout=120)
    finally:
        os.close(terminal)
        os.close(leader)
    assert made.returncode == 0, made.stderr
    staged = json.loads(made.stdout)
    assert staged["status"] == "queued"
    cli.run("image", "stage", "--file", str(disk), staged["id"])
    assert cli.json("image", "show", staged["id"])["status"] == "uploading"
    cli.run("image", "import", "--method", "glance-direct", staged["id"])
    assert active(staged["id"])["checksum"] == hashlib.md5(disk.read_bytes()).hexdigest()
    for image_id in (image["id"], staged["id"]):
        cli.run("image", "delete", image_id)


def test_image_with_openstacksdk(sdk: openstack.connection.Connection, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path / "sdk.qcow2", "128M")
    name = unique("sdk-image")
    image = sdk.image.create_image(name=name, filename=str(disk), disk_format="qcow2", container_format="bare",
                                   visibility="private", wait=True, os_type="linux")
    got = sdk.image.get_image(image.id)
    assert got.status == "active"
    assert got.virtual_size == 128 * 1024 * 1024 and got.size == disk.stat().st_size
    assert got.properties.get("os_type") == "linux" or got.os_type == "linux"
    assert image.id in {i.id for i in sdk.image.images(name=name)}
    data = sdk.image.download_image(got)
    assert data.content == disk.read_bytes()
    sdk.image.update_image(got, name=name + "-renamed", min_disk=2)
    assert sdk.image.get_image(image.id).name == name + "-renamed"
    sdk.image.add_tag(got, "sdk")
    assert "sdk" in sdk.image.get_image(image.id).tags
    # interoperable import: stage, then glance-direct
    staged = sdk.image.create_image(name=name + "-staged", disk_format="raw", container_format="bare",
                                    allow_duplicates=True)
    sdk.image.stage_image(staged, data=b"staged by the sdk" * 1000)
    sdk.image.import_image(staged, method="glance-direct")
    sdk.image.wait_for_status(staged, "active", failures=["killed"], wait=30, interval=0.5)
    assert sdk.image.get_image(staged.id).size == len(b"staged by the sdk" * 1000)
    methods = sdk.image.get_import_info().import_methods
    assert "glance-direct" in methods["value"]
    stores = list(sdk.image.stores())
    assert [s.id for s in stores] == ["file"] and stores[0].is_default
    sdk.image.delete_image(staged)
    sdk.image.delete_image(got)
    assert sdk.image.find_image(image.id) is None


# ---------------------------------------------------------------------- memory: 2 GiB in and out

GiB = 1 << 30
BLOCK = 1 << 20


def _rss(pid: int) -> int:
    """The process's resident set size in bytes (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class _Sampler:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int):
        import threading

        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss(self.pid))
            self._stop.wait(0.02)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss(self.pid))


def test_two_gib_up_and_down_in_constant_memory(tmp_path: Path) -> None:
    """Streaming holds a few blocks at a time: a 2 GiB upload and download move the server's RSS
    by less than 50 MB over its idle size (generated data; no file of 2 GiB is written here)."""
    import os

    import httpx

    from tests.e2e.conftest import FAST_ENV
    from tests.harness import LiveCloud, free_port

    cloud = LiveCloud(tmp_path / "cloud", free_port(), env=FAST_ENV)
    cloud.start()
    try:
        assert cloud.proc is not None
        pid = cloud.proc.pid
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": cloud.admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        with httpx.Client(base_url=cloud.url, timeout=300) as client:
            token = client.post("/identity/v3/auth/tokens", json=auth).headers["x-subject-token"]
            h = {"X-Auth-Token": token}

            def image() -> str:
                r = client.post("/image/v2/images", headers=h, json={
                    "name": "big", "disk_format": "raw", "container_format": "bare"})
                assert r.status_code == 201, r.text
                return r.json()["id"]

            block = os.urandom(BLOCK)
            octet = {**h, "Content-Type": "application/octet-stream"}
            # warm up every code path once, then measure the idle size
            warm = image()
            assert client.put(f"/image/v2/images/{warm}/file", headers=octet, content=block * 4).status_code == 204
            assert len(client.get(f"/image/v2/images/{warm}/file", headers=h).content) == 4 * BLOCK
            with _Sampler(pid) as idle:
                import time

                time.sleep(1)
            expected = hashlib.md5(usedforsecurity=False)

            def body():  # 2 GiB, chunked, generated as it goes
                for _ in range(2 * GiB // BLOCK):
                    expected.update(block)
                    yield block

            big = image()
            with _Sampler(pid) as upload:
                r = client.put(f"/image/v2/images/{big}/file", headers=octet, content=body())
                assert r.status_code == 204, r.text
            shown = client.get(f"/image/v2/images/{big}", headers=h).json()
            assert shown["size"] == 2 * GiB and shown["checksum"] == expected.hexdigest()
            received = 0
            with _Sampler(pid) as download:
                with client.stream("GET", f"/image/v2/images/{big}/file", headers=h) as r:
                    assert r.status_code == 200
                    for chunk in r.iter_raw(BLOCK):
                        received += len(chunk)
            assert received == 2 * GiB
        grew = max(upload.peak, download.peak) - idle.peak
        print(f"server RSS idle {idle.peak / 1e6:.1f} MB, upload peak {upload.peak / 1e6:.1f} MB, "
              f"download peak {download.peak / 1e6:.1f} MB")
        assert grew < 50 * 1000 * 1000, f"RSS grew by {grew / 1e6:.1f} MB"
    finally:
        cloud.stop()


# ---------------------------------------------------------------------- an import outlives its server


def test_import_resumes_after_the_server_is_killed(tmp_path: Path) -> None:
    """web-download from a slow loopback server; `mcloud up` is killed (SIGKILL) mid-import and
    started again: the import task's lease runs out, the new process claims it and finishes."""
    import http.server
    import os
    import threading
    import time

    import httpx

    from tests.e2e.conftest import FAST_ENV
    from tests.harness import LiveCloud, free_port

    data = os.urandom(64 * 1024) * 40  # 2.5 MiB, served in 64 KiB pieces
    served = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(0, len(data), 64 * 1024):
                    self.wfile.write(data[i:i + 64 * 1024])
                    served.set()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server that fetched was killed

        def log_message(self, *args: object) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{web.server_address[1]}/"
    env = {**FAST_ENV, "MCLOUD_IMAGE_TASK_LEASE_SECONDS": "1", "MCLOUD_IMAGE_WEB_DOWNLOAD_ALLOWED": base}
    cloud = LiveCloud(tmp_path / "cloud", free_port(), env=env)
    cloud.start()
    try:
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": cloud.admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}

        def token() -> dict[str, str]:
            r = httpx.post(cloud.url + "/identity/v3/auth/tokens", json=auth)
            return {"X-Auth-Token": r.headers["x-subject-token"]}

        h = token()
        image = httpx.post(cloud.url + "/image/v2/images", headers=h, json={
            "name": "survivor", "disk_format": "raw", "container_format": "bare"}).json()
        r = httpx.post(f"{cloud.url}/image/v2/images/{image['id']}/import", headers=h,
                       json={"method": {"name": "web-download", "uri": base + "disk.img"}})
        assert r.status_code == 202, r.text
        assert served.wait(10)
        assert cloud.proc is not None
        cloud.proc.kill()  # no clean stop: the task stays claimed by a dead worker
        cloud.proc.wait()
        cloud.proc = None
        cloud.start()
        h = token()
        deadline = time.monotonic() + 60
        while True:
            shown = httpx.get(f"{cloud.url}/image/v2/images/{image['id']}", headers=h).json()
            if shown["status"] == "active" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert shown["status"] == "active", shown
        assert shown["size"] == len(data) and shown["checksum"] == hashlib.md5(data).hexdigest()
        tasks = httpx.get(f"{cloud.url}/image/v2/images/{image['id']}/tasks", headers=h).json()["tasks"]
        assert [t["status"] for t in tasks] == ["success"]
        assert httpx.get(f"{cloud.url}/image/v2/images/{image['id']}/file", headers=h).content == data
        # the killed process's half-written file is gone
        leftovers = [p.name for p in (tmp_path / "cloud" / "images").iterdir() if p.name.startswith(".tmp-")]
        assert leftovers == []
    finally:
        cloud.stop()
        web.shutdown()
        web.server_close()
