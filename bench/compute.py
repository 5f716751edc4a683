#!/usr/bin/env python3
"""Compute benchmark: boot and delete servers through mCloud's Nova API.

A real ``mcloud up`` (one worker, SQLite, loopback, the network's fake driver) runs:

  * fake     ``[compute] driver = "fake"`` with ``[compute.fake] hosts = 100`` (one process
             simulating 100 compute hosts, each registered in Placement): N servers booted by C
             concurrent clients (POST /servers, then each server's status polled), every one
             scheduled through Placement, given a port and spawned on its host; then all
             deleted. Reported: servers per second to ACTIVE and to gone, API latency p50/p99
             of POST and DELETE, and Rally's boot_and_delete_server shape (one client
             iteration = boot, wait ACTIVE, delete, wait gone) at concurrency 4.
  * qemu     ``[compute] driver = "qemu"``: a tiny guest (``mcloud image build-tiny --upload``:
             the disk naming its kernel and initramfs images, booted directly as Nova boots an
             image with kernel_id/ramdisk_id) booted one at a time: seconds from POST /servers to
             ACTIVE, and to the guest's boot marker in its console log; beside it, the same guest
             booted by the driver alone (no API, scheduler or network), and plain qemu booting the
             same kernel and initramfs (no driver, no config drive: the physical bound under this
             machine's accelerator); and the driver booting the disk through its boot loader.

    .venv/bin/python bench/compute.py                        # both; 1,000 servers on fake
    .venv/bin/python bench/compute.py --only fake --servers 200
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402

from tests.harness import LiveCloud, free_port  # noqa: E402

FLAVOR = "42"  # m1.nano: 1 VCPU, 192 MB, 1 GB


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summary(values: list[float], unit: float = 1000.0) -> dict[str, float]:
    """p50/p95/p99/mean/max, in ms by default (unit=1: seconds)."""
    key = "ms" if unit == 1000.0 else "s"
    return {"n": len(values), f"p50_{key}": round(pct(values, 0.5) * unit, 2),
            f"p95_{key}": round(pct(values, 0.95) * unit, 2), f"p99_{key}": round(pct(values, 0.99) * unit, 2),
            f"mean_{key}": round(statistics.fmean(values) * unit, 2) if values else 0.0,
            f"max_{key}": round(max(values) * unit, 2) if values else 0.0}


class Api:
    def __init__(self, cloud: LiveCloud):
        self.url = cloud.url
        r = httpx.post(cloud.url + "/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": cloud.admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        r.raise_for_status()
        self.headers = {"X-Auth-Token": r.headers["x-subject-token"]}
        self.project = r.json()["token"]["project"]["id"]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=120,
                                 limits=httpx.Limits(max_connections=64))

    def call(self, method: str, path: str, body: Any = None, want: int = 200, headers: dict[str, str] | None = None,
             **kw: Any) -> dict[str, Any]:
        r = httpx.request(method, self.url + path, json=body, headers={**self.headers, **(headers or {})},
                          timeout=300, **kw)
        assert r.status_code == want, f"{method} {path} -> {r.status_code}: {r.text[:500]}"
        return r.json() if r.content else {}


def start_cloud(root: Path, name: str, toml: str) -> LiveCloud:
    data = root / name
    data.mkdir()
    (data / "mcloud.toml").write_text(toml)
    cloud = LiveCloud(data, free_port(), env={"MCLOUD_NETWORK_DRIVER": "fake", "MCLOUD_COMPUTE_DRIVER": name})
    seconds = cloud.start(timeout=180)
    log(f"{name}: mcloud up ready in {seconds:.2f}s")
    return cloud


def prepare(api: Api, image_file: Path) -> tuple[str, str]:
    """An unlimited quota for the admin project, a public image, a network with a /16."""
    api.call("PUT", f"/compute/v2.1/os-quota-sets/{api.project}",
             {"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
    api.call("PUT", f"/networking/v2.0/quotas/{api.project}", {"quota": {"port": -1}})
    image = api.call("POST", "/image/v2/images", {"name": "bench", "disk_format": "qcow2",
                                                 "container_format": "bare", "visibility": "public"}, 201)
    api.call("PUT", f"/image/v2/images/{image['id']}/file", want=204, content=image_file.read_bytes(),
             headers={"Content-Type": "application/octet-stream"})
    net = api.call("POST", "/networking/v2.0/networks", {"network": {"name": "bench"}}, 201)["network"]
    api.call("POST", "/networking/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.96.0.0/16",
                                                            "ip_version": 4, "name": "bench"}}, 201)
    return image["id"], net["id"]


def server_body(name: str, image: str, network: str) -> dict[str, Any]:
    return {"server": {"name": name, "imageRef": image, "flavorRef": FLAVOR, "networks": [{"uuid": network}]}}


async def wait_all(client: httpx.AsyncClient, ids: set[str], started: float, want: str) -> dict[str, float]:
    """Poll the detailed list until every id is ``want`` (ACTIVE) or gone (want=""); the seconds
    since ``started`` at which each was first seen so."""
    seen: dict[str, float] = {}
    while len(seen) < len(ids):
        servers: list[dict[str, Any]] = []
        url = "/compute/v2.1/servers/detail?limit=1000"
        while url:
            r = await client.get(url)
            body = r.json()
            servers += body["servers"]
            nxt = [link["href"] for link in body.get("servers_links", []) if link["rel"] == "next"]
            url = nxt[0].split("/compute/v2.1", 1)[-1] if nxt else ""
            url = "/compute/v2.1" + url if url else ""
        now = time.perf_counter() - started
        present = {s["id"]: s["status"] for s in servers}
        for sid in ids - set(seen):
            if want and present.get(sid) == want:
                seen[sid] = now
            elif not want and sid not in present:
                seen[sid] = now
            elif present.get(sid) == "ERROR":
                raise RuntimeError(f"server {sid} went to ERROR")
        await asyncio.sleep(0.2)
    return seen


async def boot_and_delete_all(api: Api, image: str, network: str, count: int, concurrency: int) -> dict[str, Any]:
    post_lat: list[float] = []
    delete_lat: list[float] = []
    ids: list[str] = []
    todo = iter(range(count))
    async with api.client() as client:
        async def booter() -> None:
            for i in todo:
                t = time.perf_counter()
                r = await client.post("/compute/v2.1/servers", json=server_body(f"b{i}", image, network))
                post_lat.append(time.perf_counter() - t)
                assert r.status_code == 202, r.text
                ids.append(r.json()["server"]["id"])

        started = time.perf_counter()
        await asyncio.gather(*(booter() for _ in range(concurrency)))
        posted = time.perf_counter() - started
        active = await wait_all(client, set(ids), started, "ACTIVE")
        boot_seconds = max(active.values())
        log(f"fake: {count} servers ACTIVE in {boot_seconds:.1f}s (POSTs done in {posted:.1f}s)")

        todo_del = iter(list(ids))

        async def deleter() -> None:
            for sid in todo_del:
                t = time.perf_counter()
                r = await client.delete(f"/compute/v2.1/servers/{sid}")
                delete_lat.append(time.perf_counter() - t)
                assert r.status_code == 204, r.text

        started = time.perf_counter()
        await asyncio.gather(*(deleter() for _ in range(concurrency)))
        gone = await wait_all(client, set(ids), started, "")
        delete_seconds = max(gone.values())
        log(f"fake: {count} servers gone in {delete_seconds:.1f}s")
    return {"servers": count, "concurrency": concurrency,
            "boot": {"seconds_to_all_active": round(boot_seconds, 2),
                     "servers_per_second": round(count / boot_seconds, 1),
                     "post_latency": summary(post_lat),
                     "time_to_active": summary(list(active.values()), unit=1)},
            "delete": {"seconds_to_all_gone": round(delete_seconds, 2),
                       "servers_per_second": round(count / delete_seconds, 1),
                       "delete_latency": summary(delete_lat)}}


async def rally_boot_and_delete(api: Api, image: str, network: str, iterations: int, concurrency: int) -> dict[str, Any]:
    """Rally's NovaServers.boot_and_delete_server: each iteration boots a server, waits for
    ACTIVE (polling GET /servers/{id}), deletes it and waits until it is gone."""
    durations: list[float] = []
    todo = iter(range(iterations))
    async with api.client() as client:
        async def runner() -> None:
            for i in todo:
                t = time.perf_counter()
                r = await client.post("/compute/v2.1/servers", json=server_body(f"r{i}", image, network))
                assert r.status_code == 202, r.text
                sid = r.json()["server"]["id"]
                while True:
                    status = (await client.get(f"/compute/v2.1/servers/{sid}")).json()["server"]["status"]
                    if status == "ACTIVE":
                        break
                    assert status != "ERROR", sid
                    await asyncio.sleep(0.05)
                assert (await client.delete(f"/compute/v2.1/servers/{sid}")).status_code == 204
                while (await client.get(f"/compute/v2.1/servers/{sid}")).status_code != 404:
                    await asyncio.sleep(0.05)
                durations.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(runner() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"iterations": iterations, "concurrency": concurrency, "seconds": round(elapsed, 2),
            "iterations_per_second": round(iterations / elapsed, 2), "duration": summary(durations, unit=1)}


def empty_qcow2(root: Path) -> Path:
    path = root / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


def run_fake(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    cloud = start_cloud(root, "fake", f'[compute.fake]\nhosts = {args.hosts}\n')
    try:
        api = Api(cloud)
        image, network = prepare(api, empty_qcow2(root))
        providers = api.call("GET", "/placement/resource_providers",
                             headers={"OpenStack-API-Version": "placement 1.14"})
        out: dict[str, Any] = {"driver": "fake", "hosts": args.hosts,
                               "placement_providers": len(providers["resource_providers"])}
        log(f"fake: {out['placement_providers']} providers; booting {args.servers} servers")
        out["boot_and_delete_all"] = asyncio.run(boot_and_delete_all(api, image, network, args.servers,
                                                                     args.concurrency))
        log(f"fake: rally boot_and_delete_server x{args.rally_iterations}, concurrency 4")
        out["rally_boot_and_delete"] = asyncio.run(rally_boot_and_delete(api, image, network,
                                                                         args.rally_iterations, 4))
        log(f"fake: {out['rally_boot_and_delete']}")
        return out
    finally:
        cloud.stop()


def run_qemu(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from mcloud.compute import tinyimage, tinyimage_upload  # the QEMU part's image builder

    tiny = tinyimage.build()
    cloud = start_cloud(root, "qemu", "")
    try:
        api = Api(cloud)
        _, network = prepare(api, empty_qcow2(root))
        clouds = tinyimage_upload.clouds_yaml_paths(cloud.data_dir)
        image = tinyimage_upload.upload(tiny, tinyimage_upload.load_cloud("mcloud", clouds),
                                        boot=tinyimage_upload.boot_files())["id"]
        to_active: list[float] = []
        to_marker: list[float] = []
        marker = tinyimage.MARKER_BOOTED
        with httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as client:
            for i in range(args.qemu_samples):
                t = time.perf_counter()
                r = client.post("/compute/v2.1/servers", json=server_body(f"q{i}", image, network))
                assert r.status_code == 202, r.text
                sid = r.json()["server"]["id"]
                active = None
                while True:
                    if active is None:
                        status = client.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"]
                        assert status != "ERROR", client.get(f"/compute/v2.1/servers/{sid}").text
                        if status == "ACTIVE":
                            active = time.perf_counter() - t
                    if active is not None:
                        out = client.post(f"/compute/v2.1/servers/{sid}/action",
                                          json={"os-getConsoleOutput": {"length": None}}).json()["output"]
                        if marker in out:
                            break
                    # the console is read as the driver-alone boots read it (every 0.2 s): each read is
                    # an API call and a host op in the process whose cores the guest shares
                    time.sleep(0.05 if active is None else 0.2)
                to_active.append(active)
                to_marker.append(time.perf_counter() - t)
                log(f"qemu: sample {i}: ACTIVE {active:.2f}s, boot marker {to_marker[-1]:.2f}s")
                client.delete(f"/compute/v2.1/servers/{sid}")
                while client.get(f"/compute/v2.1/servers/{sid}").status_code != 404:
                    time.sleep(0.1)
    finally:
        cloud.stop()
    driver = asyncio.run(driver_boots(root, args.qemu_samples, direct=True))
    disk = asyncio.run(driver_boots(root, args.qemu_samples, direct=False))
    bare = [plain_qemu_boot(root) for _ in range(args.qemu_samples)]
    out = {"driver": "qemu", "samples": args.qemu_samples, "post_to_active": summary(to_active, unit=1),
           "post_to_boot_marker": summary(to_marker, unit=1), "driver_alone_to_marker": summary(driver, unit=1),
           "plain_qemu_to_marker": summary(bare, unit=1), "driver_alone_disk_boot_to_marker": summary(disk, unit=1)}
    marker = statistics.median(to_marker)
    out["ratios"] = {"post_to_marker / driver_alone": round(marker / statistics.median(driver), 2),
                     "post_to_marker / plain_qemu": round(marker / statistics.median(bare), 2)}
    return out


async def driver_boots(root: Path, samples: int, direct: bool) -> list[float]:
    """The tiny guest booted by the qemu driver alone (no API, scheduler or network): seconds from
    spawn to the boot marker; ``direct``: its kernel and initramfs given to qemu (as the uploaded
    image names them), else from its disk through syslinux."""
    from tests.qemu import Guests, make_spec, tiny, tiny_direct, wait_console

    seconds = []
    async with Guests(root / ("direct" if direct else "disk")) as guests:
        for _ in range(samples):
            spec = make_spec(tiny_direct() if direct else tiny())
            t = time.perf_counter()
            await guests.driver.spawn(spec)
            await wait_console(guests.driver, spec.uuid, lambda c: c.booted)
            seconds.append(time.perf_counter() - t)
            log(f"qemu: driver alone ({'direct' if direct else 'disk'} boot): boot marker {seconds[-1]:.2f}s")
            await guests.driver.destroy(spec.uuid)
    return seconds


def plain_qemu_boot(root: Path) -> float:
    """qemu alone (the driver's machine, accelerator and memory; no QMP, NIC or config drive)
    booting the tiny image's kernel and initramfs: seconds to the boot marker."""
    from mcloud.compute import tinyimage, tinyimage_upload
    from mcloud.compute.drivers import qemu_accel
    from tests.qemu import GUEST_MB, tiny

    boot = tinyimage_upload.boot_files()
    work = Path(tempfile.mkdtemp(dir=root))
    disk, console = work / "disk", work / "console.log"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(tiny().path), "-F", "qcow2", str(disk)],
                   check=True)
    accel = asyncio.run(qemu_accel.settle("auto", cache=tinyimage.default_cache_dir() / "accel.json"))[0]
    argv = ["qemu-system-x86_64", "-machine", "pc", "-accel", "kvm" if accel == "kvm" else "tcg,tb-size=32",
            "-m", str(GUEST_MB), "-nodefaults", "-no-user-config", "-display", "none",
            "-chardev", f"file,id=c,path={console}", "-serial", "chardev:c",
            "-drive", f"file={disk},if=virtio,format=qcow2",
            "-kernel", str(boot.kernel), "-initrd", str(boot.ramdisk), "-append", boot.cmdline]
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while tinyimage.MARKER_BOOTED not in (console.read_text(errors="replace") if console.exists() else ""):
            if time.perf_counter() - t > 120 or proc.poll() is not None:
                raise RuntimeError(f"plain qemu did not boot: {console.read_text(errors='replace')[-500:]}")
            time.sleep(0.02)
        seconds = time.perf_counter() - t
    finally:
        proc.kill()
        proc.wait()
    log(f"qemu: plain qemu: boot marker {seconds:.2f}s")
    return seconds


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "os": platform.platform()}


def save(results: dict[str, Any], out: Path) -> None:
    """Write a benchmark's results as JSON (bench/results/NAME-DATE.json) and print them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["fake", "qemu"])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rally-iterations", type=int, default=100)
    ap.add_argument("--qemu-samples", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / f"compute-{_dt.date.today()}.json")
    args = ap.parse_args(argv)
    results: dict[str, Any] = {"machine": machine(), "date": _dt.datetime.utcnow().isoformat() + "Z"}
    with tempfile.TemporaryDirectory(prefix="mcloud-bench-compute-") as tmp:
        root = Path(tmp)
        if args.only in (None, "fake"):
            results["fake"] = run_fake(args, root)
        if args.only in (None, "qemu"):
            results["qemu"] = run_qemu(args, root)
    save(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
