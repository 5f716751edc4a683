"""Image data safety and import: uploads are inspected as they stream (unsafe or mismatched
data is refused and leaves nothing behind), quotas come from identity's unified limits, and
interoperable import (glance-direct, web-download from an allowed URL) runs as a durable task."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_image_common import (Glance, assert_fault, image_files, qcow2_header, random_bytes, uniq,
                                         world)  # noqa: F401

MiB = 1024 * 1024


async def wait_status(g: Glance, image_id: str, *statuses: str, timeout: float = 15) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        image = await g.show(image_id)
        if image["status"] in statuses:
            return image
        assert asyncio.get_running_loop().time() < deadline, f"image stayed {image['status']}: {image}"
        await asyncio.sleep(0.05)


def vmdk_descriptor_only() -> bytes:
    return (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
            b'RW 2048 FLAT "/etc/shadow" 0\n')


# ---------------------------------------------------------------------- rejected uploads


@pytest.mark.parametrize("disk_format,data,reason", [
    ("qcow2", qcow2_header(backing="/etc/passwd"), "backing file"),
    ("qcow2", qcow2_header(data_file=True), "external data file"),
    ("raw", qcow2_header(backing="/etc/passwd"), "backing file"),  # raw takes anything but unsafe qcow2
    ("qcow2", b"not a qcow2 at all" * 100, "does not match"),
    ("vmdk", vmdk_descriptor_only(), "descriptor"),
    ("vhd", b"\0" * 4096, "does not match"),
    ("iso", qcow2_header(), "does not match"),
])
async def test_unsafe_or_mismatched_upload_is_refused(world, cloud, disk_format, data, reason):
    g = world["member"]
    before = image_files(cloud)
    image = await g.create(disk_format=disk_format)
    body = assert_fault(await g.upload(image["id"], data, expect=None), 415)
    assert reason in body["message"]
    shown = await g.show(image["id"])
    assert shown["status"] == "queued" and shown["size"] is None and shown["checksum"] is None
    assert image_files(cloud) == before  # nothing half-written stays in the store
    # the image can still take good data
    good = qcow2_header() if disk_format in ("qcow2", "raw") else None
    if good is not None:
        await g.upload(image["id"], good)
        assert (await g.show(image["id"]))["status"] == "active"


async def test_non_bare_containers_are_not_inspected(world):
    g = world["member"]
    image = await g.active(b"anything at all", disk_format="qcow2", container_format="ovf")
    assert image["status"] == "active" and image["virtual_size"] is None


async def test_image_size_cap(world, cloud, monkeypatch):
    g = world["member"]
    monkeypatch.setattr(cloud.image.config, "image_size_cap", 4096)
    before = image_files(cloud)
    image = await g.create()
    assert_fault(await g.upload(image["id"], b"x" * 5000, expect=None), 413)  # declared too large

    async def undeclared():
        for _ in range(5):
            yield b"x" * 1000

    assert_fault(await g.upload(image["id"], undeclared(), expect=None), 413)  # found too large on the way
    assert (await g.show(image["id"]))["status"] == "queued"
    assert image_files(cloud) == before


# ---------------------------------------------------------------------- quotas (unified limits)


@contextlib.asynccontextmanager
async def limited_project(world, **limits: int):
    """A new project with a member, and identity limits for the image service on it."""
    ks = world.ks
    project = await ks.make_project()
    user = await ks.make_user()
    await ks.grant(user["id"], "member", project_id=project["id"])
    token = await ks.token_for(user["id"], user["password"], project_id=project["id"])
    for name in limits:  # a project limit needs a registered default (which leaves others unlimited)
        r = await ks.get("/registered_limits", params={"service_id": world.image_service_id, "resource_name": name},
                         expect=200)
        if not r.json()["registered_limits"]:
            await ks.post("/registered_limits", {"registered_limits": [{
                "service_id": world.image_service_id, "resource_name": name, "default_limit": -1}]}, expect=201)
    body = {"limits": [{"service_id": world.image_service_id, "project_id": project["id"], "resource_name": name,
                        "resource_limit": value} for name, value in limits.items()]}
    await ks.post("/limits", body, expect=201)
    yield Glance(ks.client, token, project["id"])


async def test_image_count_total(world):
    async with limited_project(world, image_count_total=2) as g:
        await g.create()
        await g.create()
        body = assert_fault(await g.post("/v2/images", {"name": "third"}), 413)
        assert "image_count_total" in body["message"]
        usage = (await g.get("/v2/info/usage", expect=200)).json()["usage"]
        assert usage["image_count_total"] == {"limit": 2, "usage": 2}


async def test_image_size_total_refuses_and_leaves_nothing(world, cloud):
    async with limited_project(world, image_size_total=1) as g:
        before = image_files(cloud)
        image = await g.create()
        # declared too large: refused before a byte is stored
        assert_fault(await g.upload(image["id"], random_bytes(2 * MiB), expect=None), 413)

        async def chunked():  # no Content-Length: refused once the stream passes the limit
            for _ in range(4):
                yield random_bytes(MiB // 2)

        assert_fault(await g.upload(image["id"], chunked(), expect=None), 413)
        assert (await g.show(image["id"]))["status"] == "queued"
        assert image_files(cloud) == before
        await g.upload(image["id"], random_bytes(MiB // 2))
        second = await g.create()
        assert_fault(await g.upload(second["id"], random_bytes(MiB // 2 + 1), expect=None), 413)
        usage = (await g.get("/v2/info/usage", expect=200)).json()["usage"]
        assert usage["image_size_total"]["limit"] == 1


async def test_image_stage_total_and_uploading(world):
    async with limited_project(world, image_stage_total=1, image_count_uploading=1) as g:
        first = await g.create()
        await g.stage(first["id"], random_bytes(1000))
        assert (await g.show(first["id"]))["status"] == "uploading"
        second = await g.create()
        body = assert_fault(await g.stage(second["id"], b"x", expect=None), 413)
        assert "image_count_uploading" in body["message"]
        assert (await g.show(second["id"]))["status"] == "queued"


# ---------------------------------------------------------------------- import


async def test_glance_direct_import(world, cloud):
    g = world["member"]
    data = random_bytes(300_000)
    image = await g.create(disk_format="raw")
    url = f"/v2/images/{image['id']}"
    assert_fault(await g.post(url + "/import", {"method": {"name": "glance-direct"}}), 409)  # nothing staged
    await g.stage(image["id"], data)
    staged = await g.show(image["id"])
    assert staged["status"] == "uploading" and staged["size"] is None
    assert_fault(await g.stage(image["id"], data, expect=None), 409)
    r = await g.post(url + "/import", {"method": {"name": "glance-direct"}}, expect=202)
    request_id = r.headers["x-openstack-request-id"]
    done = await wait_status(g, image["id"], "active")
    assert done["size"] == len(data) and done["checksum"] == hashlib.md5(data).hexdigest()
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest() and done["stores"] == "file"
    assert done["os_glance_importing_to_stores"] == "" and done["os_glance_failed_import"] == ""
    task_id = done["os_glance_import_task"]
    tasks = (await g.get(url + "/tasks", expect=200)).json()["tasks"]
    assert [t["id"] for t in tasks] == [task_id]
    assert tasks[0]["status"] == "success" and tasks[0]["request_id"] == request_id
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"
    assert (await g.get(url + "/file", expect=200)).content == data
    # the staged copy is gone once imported
    assert not any(image["id"] in f for f in image_files(cloud) if "image-staging" in f)
    assert_fault(await g.post(url + "/import", {"method": {"name": "glance-direct"}}), 409)


async def test_import_refuses_bad_requests(world):
    g = world["member"]
    image = await g.create()
    url = f"/v2/images/{image['id']}/import"
    for body, code in [
        ({}, 400), ({"method": "glance-direct"}, 400), ({"method": {}}, 400),
        ({"method": {"name": "copy-image"}}, 400), ({"method": {"name": "glance-download"}}, 400),
        ({"method": {"name": "web-download"}}, 400),  # no uri
        ({"method": {"name": "web-download", "uri": "http://example.com/x.img"}}, 400),  # not allowed
        ({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}, 400),
        ({"method": {"name": "glance-direct"}, "all_stores": "yes"}, 400),
        ({"method": {"name": "glance-direct"}, "all_stores_must_succeed": 1}, 400),
        ({"method": {"name": "glance-direct"}, "stores": "file"}, 400),
        ({"method": {"name": "glance-direct"}, "stores": ["nowhere"]}, 409),
    ]:
        assert_fault(await g.post(url, body), code)
    no_formats = (await g.post("/v2/images", {"name": "x"}, expect=201)).json()
    assert_fault(await g.post(f"/v2/images/{no_formats['id']}/import", {"method": {"name": "glance-direct"}}), 409)
    assert (await g.show(image["id"]))["status"] == "queued"


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        data = self.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A loopback HTTP server serving ``files`` (path -> bytes)."""
    files: dict[str, bytes] = {}
    handler = type("Handler", (_Files,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()


async def test_web_download_from_an_allowed_url(world, cloud, web, monkeypatch):
    base, files = web
    monkeypatch.setattr(cloud.image.config, "web_download_allowed", [base + "/images/"])
    g = world["member"]
    data = qcow2_header(size=1 << 30)
    files["/images/disk.qcow2"] = data
    image = await g.create(disk_format="qcow2")
    await g.post(f"/v2/images/{image['id']}/import",
                 {"method": {"name": "web-download", "uri": base + "/images/disk.qcow2"}}, expect=202)
    done = await wait_status(g, image["id"], "active")
    assert done["virtual_size"] == 1 << 30 and done["size"] == len(data)
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    # outside the allow-list: refused at once, the image untouched
    other = await g.create()
    body = assert_fault(await g.post(f"/v2/images/{other['id']}/import",
                                     {"method": {"name": "web-download", "uri": base + "/secret"}}), 400)
    assert "does not pass filtering" in body["message"]
    assert (await g.show(other["id"]))["status"] == "queued"


async def test_failed_web_download_says_so(world, cloud, web, monkeypatch):
    base, files = web
    monkeypatch.setattr(cloud.image.config, "web_download_allowed", [base + "/"])
    g = world["member"]
    before = image_files(cloud)
    missing = await g.create()
    await g.post(f"/v2/images/{missing['id']}/import",
                 {"method": {"name": "web-download", "uri": base + "/missing.img"}}, expect=202)
    failed = await wait_status(g, missing["id"], "queued")
    assert failed["os_glance_failed_import"] == "file" and failed["os_glance_importing_to_stores"] == ""
    tasks = (await g.get(f"/v2/images/{missing['id']}/tasks", expect=200)).json()["tasks"]
    assert tasks[0]["status"] == "failure" and "404" in tasks[0]["message"]
    # unsafe content by web-download is refused like an upload, and nothing stays behind
    files["/evil.qcow2"] = qcow2_header(backing="/etc/shadow")
    evil = await g.create(disk_format="qcow2")
    await g.post(f"/v2/images/{evil['id']}/import",
                 {"method": {"name": "web-download", "uri": base + "/evil.qcow2"}}, expect=202)
    await wait_status(g, evil["id"], "queued")
    tasks = (await g.get(f"/v2/images/{evil['id']}/tasks", expect=200)).json()["tasks"]
    assert tasks[0]["status"] == "failure" and "backing file" in tasks[0]["message"]
    assert image_files(cloud) == before


async def test_deleting_a_staged_image_removes_the_staged_data(world, cloud):
    g = world["member"]
    image = await g.create()
    await g.stage(image["id"], b"staged bytes")
    assert any(image["id"] in f for f in image_files(cloud))
    await g.delete(f"/v2/images/{image['id']}", expect=204)
    assert not any(image["id"] in f for f in image_files(cloud))


async def test_legacy_tasks_api_is_admins_and_checks_urls(world, web, cloud, monkeypatch):
    base, files = web
    monkeypatch.setattr(cloud.image.config, "web_download_allowed", [base + "/"])
    files["/t.img"] = b"task data"
    body = {"type": "import", "input": {"import_from": base + "/t.img", "import_from_format": "raw",
                                        "image_properties": {"name": uniq("t"), "disk_format": "raw",
                                                             "container_format": "bare"}}}
    assert_fault(await world["member"].post("/v2/tasks", body), 403)
    task = (await world.admin.post("/v2/tasks", body, expect=201)).json()
    assert task["type"] == "import" and task["status"] in ("pending", "processing", "success")
    image_id = task["image_id"]
    await wait_status(world.admin, image_id, "active")
    shown = (await world.admin.get(f"/v2/tasks/{task['id']}", expect=200)).json()
    assert shown["status"] == "success" and shown["result"]["image_id"] == image_id
    bad = {**body, "input": {**body["input"], "import_from": "http://nowhere.invalid/x.qcow2"}}
    assert_fault(await world.admin.post("/v2/tasks", bad), 400)
    assert_fault(await world.admin.get("/v2/tasks/nope"), 404)
