#!/usr/bin/env python3
"""Time to make an image bootable in Ceph RBD: mCloud's rbd store and Glance's, side by side.

On a private single-node Ceph cluster (tests/ceph.py: one mon, one mgr, one BlueStore OSD on a
sparse file, started by this script and stopped at the end), it measures:

  * upload: N MiB of incompressible data given to the store in 64 KiB pieces (as an HTTP body
    arrives, size unknown in advance) until the store returns its location, i.e. until the
    image's protected snapshot ``snap`` exists; MiB/s and the CPU the uploading process used.
    mCloud's store is measured bare and with MD5 + SHA-512 computed over the same pieces (the
    hashing Glance's store does inside ``add`` and mCloud's image service does around it).
  * bootable: a copy-on-write clone of ``snap`` (what Nova and Cinder do to make a disk from the
    image), then opening the clone and reading its first 4 KiB as a booting guest would;
    and, for scale, a full copy of the image (what making it bootable costs without layering).

The peer is OpenStack's glance_store rbd driver (``Store.add``), installed from PyPI into
bench/.peers/glance-store-venv (kept between runs; it uses Debian's python3 and its rados/rbd
bindings). Both stores create format-2 images with only the layering feature and 8 MiB objects.

Needs Debian's ceph-mon ceph-osd ceph-mgr ceph-common python3-rados python3-rbd
(tools/setup.sh test installs them) and Python 3.11 (the repo's .venv or Debian's python3).

    python3 bench/image_rbd.py                      # 512 MiB, 3 uploads each, both stores
    python3 bench/image_rbd.py --size-mib 128 --repeats 5 --only mcloud
    python3 bench/image_rbd.py --output /tmp/image_rbd.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path[:0] = [str(REPO_DIR), str(REPO_DIR / "src")]  # tests/ceph.py and mcloud, without installing

from mcloud.core.ceph import bindings  # noqa: E402
from mcloud.image.drivers.rbd import RbdStore  # noqa: E402
from tests.ceph import CephCluster  # noqa: E402

PEER_VENV = BENCH_DIR / ".peers" / "glance-store-venv"
PEER_REQUIREMENT = "glance-store>=5,<6"
PIECE = 64 << 10
OBJECT = 8 << 20
PATTERN = os.urandom(OBJECT + PIECE)  # incompressible data: slices of this at moving offsets

# Runs inside the peer's venv: glance_store's rbd Store.add, as glance-api calls it for an upload
# of unknown size (image_size 0), reading the body from a file-like object.
PEER_SCRIPT = r"""
import json, os, sys, time, uuid
from oslo_config import cfg
import glance_store
from glance_store._drivers import rbd as rbd_store

conf_path, pool, size, repeats, piece = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
pattern = bytes.fromhex(sys.stdin.read().strip())
object_size = len(pattern) - piece

class Body:
    # the upload's body: `size` bytes made of the same slices as mCloud's run
    def __init__(self):
        self.sent = 0
    def read(self, n=-1):
        n = min(size - self.sent if n < 0 else n, size - self.sent)
        out = bytearray()
        while len(out) < n:
            i = (self.sent // piece) % (object_size // piece)
            start = (i * 4099) % object_size + self.sent % piece
            take = min(n - len(out), piece - self.sent % piece)
            out += pattern[start:start + take]
            self.sent += take
        return bytes(out)

conf = cfg.ConfigOpts()
glance_store.register_opts(conf)
conf([], project="glance")
for key, value in [("rbd_store_pool", pool), ("rbd_store_ceph_conf", conf_path), ("rbd_store_user", "admin"),
                   ("rbd_store_chunk_size", object_size >> 20)]:
    conf.set_override(key, value, group="glance_store")
runs = []
for _ in range(repeats):
    store = rbd_store.Store(conf)  # a fresh one each time: Store.add keeps the last size it grew to
    store.configure()
    image_id = str(uuid.uuid4())
    t0, c0 = time.monotonic(), time.process_time()
    location, written, checksum, multihash, _ = store.add(image_id, Body(), 0, "sha512")
    runs.append({"seconds": time.monotonic() - t0, "cpu_seconds": time.process_time() - c0,
                 "bytes": written, "location": location, "image": image_id})
print(json.dumps(runs))
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def body(size: int, hashes: list | None = None) -> AsyncIterator[bytes]:
    """`size` bytes in PIECE-sized pieces; with `hashes`, each piece is hashed on its way."""
    sent = 0
    slots = OBJECT // PIECE
    while sent < size:
        i = (sent // PIECE) % slots
        start = (i * 4099) % OBJECT
        piece = PATTERN[start:start + min(PIECE, size - sent)]
        for h in hashes or ():
            h.update(piece)
        sent += len(piece)
        yield piece


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


async def mcloud_uploads(cluster: CephCluster, size: int, repeats: int, hashed: bool) -> list[dict]:
    store = RbdStore("rbd", pool="images", conf_path=cluster.conf, chunk_size=OBJECT)
    runs = []
    try:
        await store.connect()  # a running image service holds its connection: the uploads do not pay for it
        for _ in range(repeats):
            image_id = str(uuid.uuid4())
            hashes = [hashlib.md5(), hashlib.sha512()] if hashed else None
            t0, c0 = time.monotonic(), time.process_time()
            stored = await store.add(image_id, body(size, hashes))
            runs.append({"seconds": time.monotonic() - t0, "cpu_seconds": time.process_time() - c0,
                         "bytes": stored.size, "location": stored.location, "image": image_id})
    finally:
        await store.close()
    return runs


def upload_result(runs: list[dict], size: int) -> dict:
    assert all(r["bytes"] == size for r in runs), "a store wrote fewer bytes than it was given"
    seconds = [r["seconds"] for r in runs]
    return {"seconds": summary(seconds), "mib_per_s": size / (1 << 20) / statistics.median(seconds),
            "cpu_seconds": summary([r["cpu_seconds"] for r in runs]), "images": [r["image"] for r in runs]}


def make_bootable(ioctx, rbd, image: str, clones: int) -> dict:
    """Clone `image@snap` copy-on-write `clones` times, and copy it fully once."""
    clone_s, first_read_s, names = [], [], []
    for _ in range(clones):
        name = f"disk-{uuid.uuid4()}"
        t0 = time.monotonic()
        rbd.RBD().clone(ioctx, image, "snap", ioctx, name, features=rbd.RBD_FEATURE_LAYERING)
        t1 = time.monotonic()
        with rbd.Image(ioctx, name) as disk:
            boot_sector = disk.read(0, 4096)
        t2 = time.monotonic()
        assert len(boot_sector) == 4096
        clone_s.append(t1 - t0)
        first_read_s.append(t2 - t1)
        names.append(name)
    copy_name = f"copy-{uuid.uuid4()}"
    t0 = time.monotonic()
    with rbd.Image(ioctx, image, snapshot="snap", read_only=True) as src:
        src.copy(ioctx, copy_name)
    copy_s = time.monotonic() - t0
    for name in [*names, copy_name]:
        rbd.RBD().remove(ioctx, name)
    return {"clone_seconds": summary(clone_s), "open_and_read_4k_seconds": summary(first_read_s),
            "full_copy_seconds": copy_s}


def remove_images(ioctx, rbd, images: list[str]) -> None:
    for image in images:
        with rbd.Image(ioctx, image) as img:
            for snap in img.list_snaps():
                if img.is_protected_snap(snap["name"]):
                    img.unprotect_snap(snap["name"])
                img.remove_snap(snap["name"])
        rbd.RBD().remove(ioctx, image)


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ".bench-installed"
    if marker.exists():
        return python
    log(f"installing {PEER_REQUIREMENT} into {PEER_VENV} (once; a minute or two)")
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    # Debian's python3 with its site packages: the peer imports rados and rbd as Glance does
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--clear", str(PEER_VENV)], check=True)
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PEER_REQUIREMENT],
                         capture_output=True, text=True, timeout=1800)
    if pip.returncode != 0:
        raise RuntimeError(f"installing {PEER_REQUIREMENT} failed: {pip.stderr[-3000:]}")
    version = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('glance_store'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    marker.write_text(f"glance_store {version}\n")
    return python


def glance_uploads(cluster: CephCluster, size: int, repeats: int) -> list[dict]:
    python = ensure_peer_venv()
    # like for like: Glance takes the image features from the client's rbd_default_features
    conf = cluster.root / "glance-ceph.conf"
    conf.write_text(cluster.conf.read_text() + "\n[client]\nrbd default features = 1\n")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PEER_SCRIPT)
    try:
        out = subprocess.run([str(python), f.name, str(conf), "images", str(size), str(repeats), str(PIECE)],
                             input=PATTERN.hex(), capture_output=True, text=True, timeout=3600)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"glance_store peer failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clones", type=int, default=5, help="clones timed per image")
    parser.add_argument("--only", choices=["mcloud", "glance"])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    size = args.size_mib << 20
    rados, rbd = bindings()
    results: dict = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                     "size_mib": args.size_mib, "repeats": args.repeats, "piece_bytes": PIECE, "object_bytes": OBJECT}
    log("starting a private Ceph cluster")
    with CephCluster(osd_size_gib=max(20, 4 * args.size_mib * args.repeats >> 10)) as cluster:
        results["cluster"] = {"start_seconds": cluster.start_seconds, "rss_mib": cluster.rss_bytes() / (1 << 20),
                              "version": cluster.ceph("--version").strip()}
        client = rados.Rados(conffile=str(cluster.conf))
        client.connect()
        ioctx = client.open_ioctx("images")
        try:
            stores = (["mcloud", "mcloud_hashed"] if args.only != "glance" else []) + (
                ["glance"] if args.only != "mcloud" else [])
            runs: dict[str, list[dict]] = {key: [] for key in stores}
            # the stores take turns, so that load from elsewhere on the machine falls on all alike
            for turn in range(args.repeats):
                log(f"uploads of {args.size_mib} MiB, turn {turn + 1} of {args.repeats}: {', '.join(stores)}")
                for key in stores:
                    if key == "glance":
                        runs[key] += glance_uploads(cluster, size, 1)
                    else:
                        runs[key] += asyncio.run(mcloud_uploads(cluster, size, 1, hashed=key == "mcloud_hashed"))
            for key in stores:
                results[key] = upload_result(runs[key], size)
            for key in stores:
                image = results[key]["images"][0]
                with rbd.Image(ioctx, image, read_only=True) as img:
                    assert img.is_protected_snap("snap") and img.features() == rbd.RBD_FEATURE_LAYERING
                results[key]["bootable"] = make_bootable(ioctx, rbd, image, args.clones)
                remove_images(ioctx, rbd, results[key].pop("images"))
        finally:
            ioctx.close()
            client.shutdown()
        results["cluster"]["rss_mib_after"] = cluster.rss_bytes() / (1 << 20)
    if "mcloud" in results and "glance" in results:
        results["ratios"] = {
            "upload_speed_mcloud_over_glance": results["glance"]["seconds"]["median"]
            / results["mcloud"]["seconds"]["median"],
            "upload_speed_mcloud_hashed_over_glance": results["glance"]["seconds"]["median"]
            / results["mcloud_hashed"]["seconds"]["median"],
        }
    print_table(results)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_table(res: dict) -> None:
    c = res["cluster"]
    print(f"\nCeph {c['version'].split()[2]}: cluster up in {c['start_seconds']:.1f} s, "
          f"daemons' RSS {c['rss_mib']:.0f} MiB (after the run {c['rss_mib_after']:.0f} MiB)")
    print(f"upload of {res['size_mib']} MiB in {res['piece_bytes'] >> 10} KiB pieces until `snap` is protected "
          f"(median of {res['repeats']}), then making it bootable:\n")
    print(f"{'store':<16}{'upload s':>10}{'MiB/s':>9}{'CPU s':>8}{'clone ms':>10}{'+read 4K ms':>13}{'full copy s':>13}")
    for key in ("mcloud", "mcloud_hashed", "glance"):
        if key not in res:
            continue
        r, b = res[key], res[key]["bootable"]
        print(f"{key:<16}{r['seconds']['median']:>10.2f}{r['mib_per_s']:>9.0f}{r['cpu_seconds']['median']:>8.2f}"
              f"{b['clone_seconds']['median'] * 1e3:>10.1f}{b['open_and_read_4k_seconds']['median'] * 1e3:>13.1f}"
              f"{b['full_copy_seconds']:>13.2f}")
    for name, value in res.get("ratios", {}).items():
        print(f"{name}: {value:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
