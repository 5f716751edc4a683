"""Faults: `mcloud up` killed (SIGKILL) while 20 volumes are being created and attached.

One real cloud with two volume backends, ``file`` (qcow2 files) and ``ceph`` (RBD on the test
cluster), the fake hypervisor and network drivers (the attach is Nova's whole flow; no guest is
needed to show what the volume service leaves behind). Ten volumes per backend are created from an
image at once, and each is attached to a server as soon as it is available; the process is
killed in the middle. After a restart on the same data dir, every volume must settle as
``available``, ``in-use`` or ``error`` with a user message saying why; the server's attachments
and the volumes' must agree; the backends must hold exactly the live volumes (no orphaned file or
RBD image, no cached or frozen file that nothing is backed by); and quota usage must match the
volumes that exist. Then everything is detached and deleted, and nothing at all is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ceph import CephCluster
from tests.harness import LiveCloud, free_port

pytestmark = pytest.mark.real

SETTLED = {"available", "in-use", "error"}
VOLUMES_PER_BACKEND = 10
IMAGE_MB = 48
POOL = "fault-volumes"  # a pool of its own on the session's cluster


class Admin:
    def __init__(self, cloud: LiveCloud):
        self.cloud = cloud
        self.login()

    def login(self) -> None:
        r = httpx.post(self.cloud.url + "/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": self.cloud.admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}, timeout=30)
        r.raise_for_status()
        self.headers = {"X-Auth-Token": r.headers["x-subject-token"], "OpenStack-API-Version": "volume 3.60",
                        "X-OpenStack-Nova-API-Version": "2.79"}
        self.project = r.json()["token"]["project"]["id"]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.cloud.url, headers=self.headers, timeout=60)

    def call(self, method: str, path: str, body: Any = None, want: int | tuple[int, ...] = 200, **kw: Any) -> Any:
        with self.client() as c:
            r = c.request(method, path, json=body, **kw)
        assert r.status_code in ((want,) if isinstance(want, int) else want), f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else {}


@pytest.fixture(scope="module")
def cloud(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    ceph.create_pool(POOL)
    data = tmp_path_factory.mktemp("volume-faults")
    (data / "mcloud.toml").write_text(
        '[volume.backends.file]\ndriver = "file"\n\n'
        f'[volume.backends.ceph]\ndriver = "rbd"\npool = "{POOL}"\nceph_conf = "{ceph.conf}"\n')
    live = LiveCloud(data, free_port(), env={"MCLOUD_COMPUTE_DRIVER": "fake", "MCLOUD_NETWORK_DRIVER": "fake"})
    live.start(timeout=120)
    try:
        yield live
    finally:
        live.stop()


def volumes(admin: Admin) -> list[dict[str, Any]]:
    return admin.call("GET", f"/volume/v3/{admin.project}/volumes/detail?all_tenants=1")["volumes"]


def file_names(directory: Path) -> tuple[set[str], set[str]]:
    """The volume/snapshot files of a file backend, and the hidden frozen/cached files that no
    file's backing chain names."""
    leaves = {p.name for p in directory.iterdir() if p.name.startswith(("volume-", "snapshot-"))}
    hidden = {p.name for p in directory.iterdir() if p.name.startswith(".") and not p.name.endswith((".tmp", ".lock"))}
    backed: set[str] = set()
    for leaf in leaves:
        info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json",
                                          str(directory / leaf)], capture_output=True, text=True, check=True).stdout)
        backed |= {Path(layer["filename"]).name for layer in info[1:]}
    return leaves, hidden - backed


def rbd_names(ceph: CephCluster) -> set[str]:
    from mcloud.core.ceph import bindings

    rados, rbd = bindings()
    with ceph.ioctx(POOL) as ioctx:
        return set(rbd.RBD().list(ioctx))


def test_kill_during_creates_and_attaches(cloud: LiveCloud, ceph: CephCluster, tmp_path: Path) -> None:
    admin = Admin(cloud)
    admin.call("PUT", f"/volume/v3/{admin.project}/os-quota-sets/{admin.project}",
               {"quota_set": {"volumes": -1, "gigabytes": -1, "snapshots": -1}})
    for backend in ("file", "ceph"):
        admin.call("POST", f"/volume/v3/{admin.project}/types",
                   {"volume_type": {"name": backend, "extra_specs": {"volume_backend_name": backend}}})
    raw = tmp_path / "image.raw"
    with open(raw, "wb") as f:  # incompressible, so copies take real time
        for _ in range(IMAGE_MB):
            f.write(os.urandom(1 << 20))
    image = admin.call("POST", "/image/v2/images", {"name": "faults", "disk_format": "raw",
                                                    "container_format": "bare"}, 201)["id"]
    admin.call("PUT", f"/image/v2/images/{image}/file", want=204, content=raw.read_bytes(),
               headers={"Content-Type": "application/octet-stream"})
    server = admin.call("POST", "/compute/v2.1/servers", {"server": {
        "name": "faults", "imageRef": image, "flavorRef": "42", "networks": "none"}}, 202)["server"]["id"]
    for _ in range(300):
        if admin.call("GET", f"/compute/v2.1/servers/{server}")["server"]["status"] == "ACTIVE":
            break
        time.sleep(0.1)

    # 20 creates at once; each volume attached to the server as soon as it is available
    ids: list[str] = []
    attach_sent = threading.Semaphore(0)
    killed = threading.Event()

    def create_and_attach(i: int) -> None:
        backend = ("file", "ceph")[i % 2]
        try:
            with admin.client() as c:
                r = c.post(f"/volume/v3/{admin.project}/volumes", json={"volume": {
                    "name": f"fault-{i}", "size": 1, "imageRef": image, "volume_type": backend}})
                assert r.status_code == 202, r.text
                vid = r.json()["volume"]["id"]
                ids.append(vid)
                while not killed.is_set():
                    status = c.get(f"/volume/v3/{admin.project}/volumes/{vid}").json()["volume"]["status"]
                    if status == "available":
                        c.post(f"/compute/v2.1/servers/{server}/os-volume_attachments",
                               json={"volumeAttachment": {"volumeId": vid}})
                        attach_sent.release()
                        return
                    time.sleep(0.05)
        except httpx.HTTPError:
            assert killed.is_set()  # the process went away under us

    threads = [threading.Thread(target=create_and_attach, args=(i,)) for i in range(2 * VOLUMES_PER_BACKEND)]
    for t in threads:
        t.start()
    # kill once a few attaches are under way (or after 20 s: then creates are still running)
    deadline = time.monotonic() + 20
    for _ in range(4):
        if not attach_sent.acquire(timeout=max(0.0, deadline - time.monotonic())):
            break
    assert cloud.proc is not None
    killed.set()
    cloud.proc.kill()
    cloud.proc.wait()
    cloud.proc = None
    for t in threads:
        t.join(timeout=30)
    assert len(ids) == 2 * VOLUMES_PER_BACKEND, "every create was answered before the kill"

    cloud.start(timeout=120)
    admin.login()
    deadline = time.monotonic() + 180
    while True:
        listed = {v["id"]: v for v in volumes(admin)}
        unsettled = {i: v["status"] for i, v in listed.items() if v["status"] not in SETTLED}
        if not unsettled:
            break
        assert time.monotonic() < deadline, f"volumes still moving after the restart: {unsettled}"
        time.sleep(0.5)
    assert set(ids) <= set(listed), "a volume whose create was accepted is missing"

    # every error says why (a user message about the volume)
    messages = admin.call("GET", f"/volume/v3/{admin.project}/messages",
                          headers={**admin.headers, "OpenStack-API-Version": "volume 3.3"})["messages"]
    about = {m["resource_uuid"] for m in messages}
    assert [i for i, v in listed.items() if v["status"] == "error" and i not in about] == []

    # the server and the volumes agree about attachments
    srv = admin.call("GET", f"/compute/v2.1/servers/{server}")["server"]
    on_server = {a["id"] for a in srv["os-extended-volumes:volumes_attached"]}
    in_use = {i for i, v in listed.items() if v["status"] == "in-use"}
    assert on_server == in_use
    for i in in_use:
        assert [a["server_id"] for a in listed[i]["attachments"]] == [server]
    assert all(v["attachments"] == [] for i, v in listed.items() if i not in in_use)

    # the backends hold exactly the live volumes
    live = {b: {f"volume-{i}" for i, v in listed.items() if v["os-vol-host-attr:host"]
                and v["os-vol-host-attr:host"].split("@")[1].split("#")[0] == b} for b in ("file", "ceph")}
    leaves, unused = file_names(cloud.data_dir / "volumes" / "file")
    assert leaves <= live["file"] and unused == set(), (leaves - live["file"], unused)
    assert rbd_names(ceph) <= live["ceph"], rbd_names(ceph) - live["ceph"]
    for i, v in listed.items():  # a usable volume has its data
        if v["status"] != "error":
            backend = v["os-vol-host-attr:host"].split("@")[1].split("#")[0]
            assert f"volume-{i}" in (leaves if backend == "file" else rbd_names(ceph)), v

    # quota usage matches what exists
    usage = admin.call("GET", f"/volume/v3/{admin.project}/os-quota-sets/{admin.project}?usage=true")["quota_set"]
    assert usage["volumes"]["in_use"] == len(listed)
    assert usage["gigabytes"]["in_use"] == sum(v["size"] for v in listed.values())
    pools = admin.call("GET", f"/volume/v3/{admin.project}/scheduler-stats/get_pools?detail=true")["pools"]
    allocated = {p["name"].split("#")[-1]: p["capabilities"].get("allocated_capacity_gb") for p in pools}
    for b in ("file", "ceph"):
        want = sum(v["size"] for v in listed.values() if v["os-vol-host-attr:host"]
                   and v["os-vol-host-attr:host"].split("@")[1].split("#")[0] == b)
        assert allocated[b] == want, (b, allocated, want)

    # and everything can still be undone: detach, delete, nothing left
    for i in in_use:
        admin.call("DELETE", f"/compute/v2.1/servers/{server}/os-volume_attachments/{i}", want=202)
    for i in listed:
        for _ in range(300):
            if admin.call("GET", f"/volume/v3/{admin.project}/volumes/{i}")["volume"]["status"] in ("available",
                                                                                                   "error"):
                break
            time.sleep(0.1)
        admin.call("DELETE", f"/volume/v3/{admin.project}/volumes/{i}", want=202)
    deadline = time.monotonic() + 120
    while volumes(admin):
        assert time.monotonic() < deadline, volumes(admin)
        time.sleep(0.3)
    leaves, unused = file_names(cloud.data_dir / "volumes" / "file")
    assert leaves == set() and unused == set()
    assert rbd_names(ceph) == set()
    usage = admin.call("GET", f"/volume/v3/{admin.project}/os-quota-sets/{admin.project}?usage=true")["quota_set"]
    assert usage["volumes"]["in_use"] == 0 and usage["gigabytes"]["in_use"] == 0
