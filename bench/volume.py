#!/usr/bin/env python3
"""Volume benchmark: mCloud's Cinder API on its two backends, driven over HTTP as a client would.

One real ``mcloud up`` (one worker, SQLite, loopback, the network's fake driver, the qemu compute
driver) with three volume backends, each behind a volume type of its name:

  * ``ceph``      ``rbd`` on a private single-node Ceph cluster (tests/ceph.py: one mon, one mgr,
                  one BlueStore OSD on a sparse file), pool ``volumes``; the image service stores
                  images in the same cluster (pool ``images``), so a volume from an image is an
                  RBD clone of the image's protected snapshot;
  * ``file``      qcow2 files, a volume from an image a copy-on-write overlay of a cached copy;
  * ``filecopy``  qcow2 files with ``image_overlay = false``: every volume a full copy.

It measures:

  * create from image: N volumes (default 100) from one raw image (the tiny disk, 48 MiB; Cinder
    clones raw images only), C at a time (POST, then the
    volume polled until ``available``), per backend: seconds for all N, volumes per second, and
    each volume's POST-to-available latency; then deleting them all.
  * attach/detach on a running guest (the tiny image booted directly, TCG): a 1 GiB volume
    attached through Nova's os-volume_attachments, seconds until the volume is ``in-use`` and
    until the guest's console reports the new disk; detached, seconds until ``available`` and
    until the guest reports the disk gone. K samples per backend.
  * sequential throughput inside a guest: a guest whose user-data script waits for /dev/vdb,
    then writes and reads 256 MiB with ``dd`` (O_DIRECT, 1 MiB blocks) and prints the seconds; per
    backend, beside the same dd run on the host against the backend's own store (a file in the
    volume directory for the file backends, an RBD image through ``rbd bench`` for ceph): the
    bound this machine gives, reported as the guest's share of it.

    .venv/bin/python bench/volume.py                    # everything, 100 volumes per backend
    .venv/bin/python bench/volume.py --volumes 20 --samples 3 --only file,filecopy
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402

from bench.compute import Api, log, machine, save, summary  # noqa: E402
from mcloud.compute.tinyimage import READY  # noqa: E402
from tests.harness import LiveCloud, free_port  # noqa: E402

BACKENDS = ("ceph", "file", "filecopy")
DD_MIB = 512
# what the tiny guest prints when a disk comes and goes (compute/tinyimage_guest.py)
DISK_ADDED = re.compile(r"mcloud-tiny: disk (vd[a-z]+) added")
DISK_REMOVED = re.compile(r"mcloud-tiny: disk (vd[a-z]+) removed")
# the tiny guest's config drive is vdb: the first volume is vdc
DD_SCRIPT = f"""#!/bin/sh
while [ ! -b /dev/vdc ]; do sleep 0.1; done
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/zero of=/dev/vdc bs=1M count={DD_MIB} oflag=direct 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/vdc of=/dev/null bs=1M count={DD_MIB} iflag=direct 2>/dev/null
t2=$(cut -d' ' -f1 /proc/uptime)
echo "bench-dd write $t0 $t1 read $t1 $t2"
"""
DD_LINE = re.compile(r"bench-dd write ([\d.]+) ([\d.]+) read ([\d.]+) ([\d.]+)")


def toml(ceph_conf: Path | None, root: Path) -> str:
    out = ""
    if ceph_conf:
        out += ('[image]\nstores = ["rbd", "file"]\ndefault_store = "rbd"\n'
                f'[image.rbd]\npool = "images"\nconf = "{ceph_conf}"\n\n'
                f'[volume.backends.ceph]\ndriver = "rbd"\npool = "volumes"\nceph_conf = "{ceph_conf}"\n\n')
    out += ('[volume.backends.file]\ndriver = "file"\n\n'
            '[volume.backends.filecopy]\ndriver = "file"\nimage_overlay = false\n')
    return out


class Volumes:
    """The block-storage API of one cloud, as the admin."""

    def __init__(self, api: Api):
        self.api = api
        self.base = f"/volume/v3/{api.project}"

    def call(self, method: str, path: str, body: Any = None, want: int = 200) -> dict[str, Any]:
        return self.api.call(method, self.base + path, body, want, headers={"OpenStack-API-Version": "volume 3.60"})

    def make_type(self, name: str) -> str:
        vt = self.call("POST", "/types", {"volume_type": {"name": name, "extra_specs": {
            "volume_backend_name": name}}})["volume_type"]
        return vt["id"]

    def wait(self, client: httpx.Client, vid: str, want: str, timeout: float = 600) -> float:
        t = time.perf_counter()
        while True:
            r = client.get(f"{self.base}/volumes/{vid}")
            if want == "gone" and r.status_code == 404:
                return time.perf_counter() - t
            status = r.json()["volume"]["status"]
            if status == want:
                return time.perf_counter() - t
            if status.startswith("error") or time.perf_counter() - t > timeout:
                raise RuntimeError(f"volume {vid}: {status} (waiting for {want})")
            time.sleep(0.05)


def create_from_image(vols: Volumes, backend: str, image: str, count: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    ids: list[str] = []

    def one(i: int) -> None:
        with httpx.Client(base_url=vols.api.url, headers=vols.api.headers, timeout=120) as client:
            t = time.perf_counter()
            r = client.post(f"{vols.base}/volumes", json={"volume": {
                "name": f"{backend}-{i}", "size": 1, "imageRef": image, "volume_type": backend}})
            assert r.status_code == 202, r.text
            vid = r.json()["volume"]["id"]
            ids.append(vid)
            vols.wait(client, vid, "available")
            latencies.append(time.perf_counter() - t)

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    created = time.perf_counter() - t
    log(f"{backend}: {count} volumes from the image in {created:.2f}s")

    def gone(vid: str) -> None:
        with httpx.Client(base_url=vols.api.url, headers=vols.api.headers, timeout=120) as client:
            assert client.delete(f"{vols.base}/volumes/{vid}").status_code == 202
            vols.wait(client, vid, "gone")

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(gone, ids))
    deleted = time.perf_counter() - t
    return {"volumes": count, "concurrency": concurrency, "seconds_all": round(created, 2),
            "volumes_per_second": round(count / created, 2), "latency": summary(latencies, unit=1),
            "delete_seconds_all": round(deleted, 2)}


def console(api: Api, client: httpx.Client, sid: str) -> str:
    r = client.post(f"/compute/v2.1/servers/{sid}/action", json={"os-getConsoleOutput": {"length": None}})
    return r.json()["output"] if r.status_code == 200 else ""  # 409 while the server builds


def boot(api: Api, client: httpx.Client, image: str, name: str, user_data: str | None = None) -> str:
    import base64

    body: dict[str, Any] = {"name": name, "imageRef": image, "flavorRef": "42", "networks": "none"}
    if user_data:
        body["user_data"] = base64.b64encode(user_data.encode()).decode()
    r = client.post("/compute/v2.1/servers", json={"server": body},
                    headers={"X-OpenStack-Nova-API-Version": "2.37"})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    # attach once the guest listens for hot-plugged disks (its last boot line)
    t = time.perf_counter()
    while READY not in console(api, client, sid):
        if time.perf_counter() - t > 180:
            raise RuntimeError(f"server {sid} did not boot")
        time.sleep(0.2)
    return sid


def wait_console(api: Api, client: httpx.Client, sid: str, pattern: re.Pattern[str], count: int,
                 timeout: float = 60) -> float:
    t = time.perf_counter()
    while len(pattern.findall(console(api, client, sid))) < count:
        if time.perf_counter() - t > timeout:
            raise RuntimeError(f"server {sid}: no {pattern.pattern!r} on the console:\n"
                               f"{console(api, client, sid)[-1500:]}")
        time.sleep(0.05)
    return time.perf_counter() - t


def attach_detach(api: Api, vols: Volumes, backend: str, image: str, samples: int) -> dict[str, Any]:
    to_in_use, to_seen, to_available, to_gone = [], [], [], []
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as client:
        sid = boot(api, client, image, f"attach-{backend}")
        vid = vols.call("POST", "/volumes", {"volume": {"size": 1, "volume_type": backend}}, 202)["volume"]["id"]
        vols.wait(client, vid, "available")
        for i in range(samples):
            t = time.perf_counter()
            r = client.post(f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                            json={"volumeAttachment": {"volumeId": vid}})
            assert r.status_code == 200, r.text
            vols.wait(client, vid, "in-use")
            to_in_use.append(time.perf_counter() - t)
            wait_console(api, client, sid, DISK_ADDED, i + 1)
            to_seen.append(time.perf_counter() - t)
            t = time.perf_counter()
            r = client.delete(f"/compute/v2.1/servers/{sid}/os-volume_attachments/{vid}")
            assert r.status_code == 202, r.text
            vols.wait(client, vid, "available")
            to_available.append(time.perf_counter() - t)
            wait_console(api, client, sid, DISK_REMOVED, i + 1)
            to_gone.append(time.perf_counter() - t)
            log(f"{backend}: attach {to_in_use[-1]:.2f}s (guest {to_seen[-1]:.2f}s), "
                f"detach {to_available[-1]:.2f}s (guest {to_gone[-1]:.2f}s)")
        client.delete(f"/compute/v2.1/servers/{sid}")
        client.delete(f"{vols.base}/volumes/{vid}")
    return {"samples": samples, "attach_to_in_use": summary(to_in_use, unit=1),
            "attach_to_guest_sees_disk": summary(to_seen, unit=1),
            "detach_to_available": summary(to_available, unit=1),
            "detach_to_guest_loses_disk": summary(to_gone, unit=1)}


def guest_dd(api: Api, vols: Volumes, backend: str, image: str) -> dict[str, float]:
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as client:
        vid = vols.call("POST", "/volumes", {"volume": {"size": 1, "volume_type": backend}}, 202)["volume"]["id"]
        vols.wait(client, vid, "available")
        sid = boot(api, client, image, f"dd-{backend}", user_data=DD_SCRIPT)
        r = client.post(f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                        json={"volumeAttachment": {"volumeId": vid}})
        assert r.status_code == 200, r.text
        t = time.perf_counter()
        while not (m := DD_LINE.search(console(api, client, sid))):
            if time.perf_counter() - t > 240:
                raise RuntimeError(f"dd in server {sid} did not finish:\n{console(api, client, sid)[-1500:]}")
            time.sleep(0.5)
        w0, w1, r0, r1 = map(float, m.groups())
        client.delete(f"/compute/v2.1/servers/{sid}")
        vols.wait(client, vid, "available")
        client.delete(f"{vols.base}/volumes/{vid}")
    out = {"write_mib_s": round(DD_MIB / (w1 - w0), 1), "read_mib_s": round(DD_MIB / (r1 - r0), 1)}
    log(f"{backend}: in the guest: write {out['write_mib_s']} MiB/s, read {out['read_mib_s']} MiB/s")
    return out


def host_dd(backend: str, data_dir: Path, ceph_conf: Path | None) -> dict[str, float]:
    """The same sequential O_DIRECT write and read on the host, against the backend's own store."""
    if backend == "ceph":
        assert ceph_conf
        rbd = ["rbd", "-c", str(ceph_conf)]
        subprocess.run([*rbd, "create", "--size", "1G", "volumes/bench-host"], check=True)
        rates = {}
        try:
            for io in ("write", "read"):  # one request in flight, as dd's O_DIRECT is
                t = time.perf_counter()  # (rbd bench prints whole seconds)
                subprocess.run([*rbd, "bench", "--io-type", io, "--io-size", "1M", "--io-threads", "1",
                                "--io-total", f"{DD_MIB}M", "--io-pattern", "seq", "volumes/bench-host"],
                               capture_output=True, text=True, check=True)
                rates[f"{io}_mib_s"] = round(DD_MIB / (time.perf_counter() - t), 1)
        finally:
            subprocess.run([*rbd, "rm", "volumes/bench-host"], capture_output=True)
        return rates
    directory = data_dir / "volumes" / backend
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "bench-host.raw"
    try:
        t = time.perf_counter()
        subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={DD_MIB}", "oflag=direct"],
                       check=True, capture_output=True)
        write = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run(["dd", f"if={target}", "of=/dev/null", "bs=1M", "iflag=direct"], check=True,
                       capture_output=True)
        read = time.perf_counter() - t
    finally:
        target.unlink(missing_ok=True)
    return {"write_mib_s": round(DD_MIB / write, 1), "read_mib_s": round(DD_MIB / read, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(BACKENDS), help="backends, comma-separated")
    ap.add_argument("--volumes", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--skip-guest", action="store_true", help="no attach/detach or guest throughput")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / f"volume-{_dt.date.today()}.json")
    args = ap.parse_args(argv)
    backends = [b for b in args.only.split(",") if b]
    results: dict[str, Any] = {"machine": machine(), "date": _dt.datetime.utcnow().isoformat() + "Z",
                               "backends": {}}
    from mcloud.compute import tinyimage, tinyimage_upload

    ceph = None
    with tempfile.TemporaryDirectory(prefix="mcloud-bench-volume-") as tmp:
        root = Path(tmp)
        try:
            if "ceph" in backends:
                from tests.ceph import CephCluster

                ceph = CephCluster(pools=("images", "volumes"))
                log(f"ceph: cluster up in {ceph.start():.1f}s")
            data = root / "cloud"
            data.mkdir()
            (data / "mcloud.toml").write_text(toml(ceph.conf if ceph else None, root))
            cloud = LiveCloud(data, free_port(), env={"MCLOUD_NETWORK_DRIVER": "fake",
                                                      "MCLOUD_COMPUTE_DRIVER": "qemu"})
            log(f"mcloud up ready in {cloud.start(timeout=180):.2f}s")
            try:
                api = Api(cloud)
                api.call("PUT", f"/compute/v2.1/os-quota-sets/{api.project}",
                         {"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
                vols = Volumes(api)
                vols.call("PUT", f"/os-quota-sets/{api.project}", {"quota_set": {
                    "volumes": -1, "gigabytes": -1, "snapshots": -1}})
                tiny = tinyimage.build()
                clouds = tinyimage_upload.clouds_yaml_paths(cloud.data_dir)
                image = tinyimage_upload.upload(tiny, tinyimage_upload.load_cloud("mcloud", clouds),
                                                boot=tinyimage_upload.boot_files())["id"]
                # volumes are made from a raw copy of the tiny disk: what an RBD clone needs (Cinder
                # clones raw images only), and what a file overlay and a full copy take as well
                raw = root / "tiny.raw"
                subprocess.run(["qemu-img", "convert", "-O", "raw", str(tiny.path), str(raw)], check=True)
                source = api.call("POST", "/image/v2/images", {"name": "tiny-raw", "disk_format": "raw",
                                                              "container_format": "bare"}, 201)["id"]
                api.call("PUT", f"/image/v2/images/{source}/file", want=204, content=raw.read_bytes(),
                         headers={"Content-Type": "application/octet-stream"})
                results["image"] = {"disk_format": "raw", "size_mib": raw.stat().st_size >> 20}
                for backend in backends:
                    vols.make_type(backend)
                for backend in backends:
                    res: dict[str, Any] = {"create_from_image": create_from_image(
                        vols, backend, source, args.volumes, args.concurrency)}
                    if not args.skip_guest and backend != "filecopy":
                        res["attach_detach"] = attach_detach(api, vols, backend, image, args.samples)
                        res["guest_dd"] = guest_dd(api, vols, backend, image)
                        res["host_dd"] = host_dd(backend, data, ceph.conf if ceph else None)
                        res["guest_share_of_host"] = {
                            k: round(res["guest_dd"][k] / res["host_dd"][k], 2) for k in res["guest_dd"]}
                    results["backends"][backend] = res
            finally:
                cloud.stop()
        finally:
            if ceph:
                ceph.stop()
    made = {b: r["create_from_image"]["seconds_all"] for b, r in results["backends"].items()}
    if "filecopy" in made:
        results["ratios"] = {f"full copy / {b}": round(made["filecopy"] / s, 2) for b, s in made.items()
                             if b != "filecopy"}
    save(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
