#!/usr/bin/env python3
"""Image benchmark: OpenStack Glance and mCloud image, side by side.

Measures, for each server, on loopback only, with the file store:
  * upload    PUT /v2/images/{id}/file  (application/octet-stream, Content-Length)
  * download  GET /v2/images/{id}/file
as MB/s (10^6 bytes/s) for one image of --size-mib, --repeat times (best and median
reported), the server's CPU seconds per GiB moved, and its memory (RSS and PSS summed
over its processes) after the run. Both servers hash every upload the same way (md5
``checksum`` plus sha512 ``os_hash_value``) and inspect the format of 'bare' images.

The Glance peer is installed from PyPI into bench/.peers/glance-venv (kept between
runs), configured with SQLite, the file store and no authentication (the
unauthenticated-context pipeline), and served by gunicorn with 2 sync workers, as
operators run it. mCloud is `mcloud up` (1 worker) with its default file store; its
requests carry a token, validated in-process.

Only the standard library is needed to run this script (http.client streaming a reused
4 MiB block up and reading into a reused buffer down, so that the client costs little
CPU on a small machine).

    python3 bench/image.py                          # both servers, 1 GiB, 3 rounds
    python3 bench/image.py --only mcloud --size-mib 256 --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity import (BENCH_DIR, PEERS_DIR, REPO_DIR, Server, free_port, issue_token, log, run,  # noqa: E402
                      tree_cpu_seconds, tree_memory, venv_python)

GLANCE_VENV = PEERS_DIR / "glance-venv"
GLANCE_REQUIREMENT = "glance>=33,<34"
GLANCE_EXTRA_PACKAGES = ["gunicorn"]
GLANCE_WSGI_APP = "glance.wsgi.api:application"
BLOCK = 4 * 1024 * 1024


def ensure_glance_venv(python: str) -> None:
    if (GLANCE_VENV / "bin" / "glance-manage").exists() and (GLANCE_VENV / "bin" / "gunicorn").exists():
        return
    log(f"installing {GLANCE_REQUIREMENT} and gunicorn into {GLANCE_VENV} (once)")
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", str(GLANCE_VENV)], check=True, timeout=600)
    pip = [str(venv_python(GLANCE_VENV)), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True, timeout=600)
    subprocess.run(pip + [GLANCE_REQUIREMENT] + GLANCE_EXTRA_PACKAGES, check=True, timeout=1800)


def glance_conf(state: Path, port: int) -> str:
    return f"""[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
worker_self_reference_url = http://127.0.0.1:{port}
log_file = {state / 'glance-api.log'}
image_size_cap = 1099511627776
enabled_import_methods = []

[database]
connection = sqlite:///{state / 'glance.sqlite'}

[glance_store]
stores = file
default_store = file
filesystem_store_datadir = {state / 'images'}/

[paste_deploy]
flavor =
config_file = {state / 'glance-api-paste.ini'}

[oslo_policy]
enforce_new_defaults = false
enforce_scope = false
"""


# ------------------------------------------------------------------ transfers


class Endpoint:
    """One image API on loopback: how to reach it and what to send with every request."""

    def __init__(self, port: int, prefix: str, headers: dict[str, str]):
        self.port = port
        self.prefix = prefix
        self.headers = headers

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def json(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        c = self.conn()
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {**self.headers, "Content-Type": "application/json", "Accept": "application/json"}
            c.request(method, self.prefix + path, body=data, headers=headers)
            r = c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else {})
        finally:
            c.close()

    def create(self) -> str:
        status, image = self.json("POST", "/v2/images", {"name": "bench", "disk_format": "raw",
                                                          "container_format": "bare"})
        if status != 201:
            raise RuntimeError(f"create image: {status} {image}")
        return image["id"]

    def delete(self, image_id: str) -> None:
        self.json("DELETE", f"/v2/images/{image_id}")

    def upload(self, image_id: str, size: int, block: bytes) -> float:
        def body():
            left = size
            while left > 0:
                chunk = block if left >= len(block) else block[:left]
                left -= len(chunk)
                yield chunk

        c = self.conn()
        try:
            started = time.perf_counter()
            c.request("PUT", f"{self.prefix}/v2/images/{image_id}/file", body=body(),
                      headers={**self.headers, "Content-Type": "application/octet-stream",
                               "Content-Length": str(size)})
            r = c.getresponse()
            r.read()
            took = time.perf_counter() - started
        finally:
            c.close()
        if r.status != 204:
            raise RuntimeError(f"upload: HTTP {r.status}")
        return took

    def download(self, image_id: str, size: int) -> float:
        buf = memoryview(bytearray(BLOCK))
        c = self.conn()
        try:
            started = time.perf_counter()
            c.request("GET", f"{self.prefix}/v2/images/{image_id}/file", headers=self.headers)
            r = c.getresponse()
            if r.status != 200:
                raise RuntimeError(f"download: HTTP {r.status}")
            got = 0
            while True:
                n = r.readinto(buf)
                if not n:
                    break
                got += n
            took = time.perf_counter() - started
        finally:
            c.close()
        if got != size:
            raise RuntimeError(f"download: {got} bytes of {size}")
        return took


def bench_transfers(name: str, endpoint: Endpoint, pid: int, args) -> dict:
    size = args.size_mib * 1024 * 1024
    block = os.urandom(BLOCK)
    up, down = [], []
    cpu_up = cpu_down = 0.0
    # one small round first: every code path loaded before anything is timed
    warm = endpoint.create()
    endpoint.upload(warm, BLOCK, block)
    endpoint.download(warm, BLOCK)
    endpoint.delete(warm)
    for i in range(args.repeat):
        image_id = endpoint.create()
        cpu0 = tree_cpu_seconds(pid)
        up.append(endpoint.upload(image_id, size, block))
        cpu1 = tree_cpu_seconds(pid)
        down.append(endpoint.download(image_id, size))
        cpu2 = tree_cpu_seconds(pid)
        cpu_up += cpu1 - cpu0
        cpu_down += cpu2 - cpu1
        log(f"{name}: round {i + 1}: upload {size / up[-1] / 1e6:.0f} MB/s, "
            f"download {size / down[-1] / 1e6:.0f} MB/s")
        endpoint.delete(image_id)
    gib = size * args.repeat / (1 << 30)

    def rates(times: list[float]) -> dict:
        mbs = sorted(size / t / 1e6 for t in times)
        return {"best_mb_s": round(mbs[-1], 1), "median_mb_s": round(statistics.median(mbs), 1),
                "runs_mb_s": [round(x, 1) for x in mbs]}

    return {"upload": {**rates(up), "server_cpu_s_per_gib": round(cpu_up / gib, 2)},
            "download": {**rates(down), "server_cpu_s_per_gib": round(cpu_down / gib, 2)}}


# ------------------------------------------------------------------ the two servers


@contextlib.contextmanager
def workdir(name: str, prefix: str, keep_logs: bool):
    """A scratch directory for one server, and a slot for the server, stopped (and the
    directory removed unless logs are kept) however the run ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    slot: dict[str, Server] = {}
    try:
        yield path, slot
    finally:
        if "server" in slot:
            slot["server"].stop()
        if keep_logs:
            log(f"{name} state and logs kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_glance(args, results: dict) -> None:
    port = args.glance_port or free_port()
    with workdir("glance", "glance-bench-", args.keep_logs) as (state, slot):
        (state / "images").mkdir()
        shutil.copy(GLANCE_VENV / "etc" / "glance" / "glance-api-paste.ini", state / "glance-api-paste.ini")
        (state / "glance-api.conf").write_text(glance_conf(state, port))
        run([GLANCE_VENV / "bin" / "glance-manage", "--config-file", state / "glance-api.conf", "db_sync"],
            timeout=600)
        env = {**os.environ, "OS_GLANCE_CONFIG_DIR": str(state)}
        cmd = [GLANCE_VENV / "bin" / "gunicorn", "--workers", "2", "--worker-class", "sync",
               "--bind", f"127.0.0.1:{port}", "--timeout", "600", GLANCE_WSGI_APP]
        server = slot["server"] = Server("glance", cmd, env=env, logfile=state / "gunicorn.log")
        log(f"glance: gunicorn (2 sync workers) on 127.0.0.1:{port}, state {state}")
        startup = server.wait_http(f"http://127.0.0.1:{port}/versions", timeout=180)
        ops = bench_transfers("glance", Endpoint(port, "", {}), server.proc.pid, args)
        version = run([venv_python(GLANCE_VENV), "-c", "import glance.version as v; "
                       "print(v.version_info.version_string())"]).strip()
        results["glance"] = {"version": version, "serving": "gunicorn, 2 sync workers; SQLite; file store; "
                             "no auth (unauthenticated-context)", "startup_seconds": round(startup, 2), **ops,
                             "memory": tree_memory(server.proc.pid)}


def run_mcloud(args, results: dict) -> None:
    mcloud = Path(args.mcloud_bin)
    if not mcloud.exists():
        raise RuntimeError(f"{mcloud} not found (build the repo's .venv, or pass --mcloud-bin)")
    port = args.mcloud_port or free_port()
    with workdir("mcloud", "mcloud-image-bench-", args.keep_logs) as (datadir, slot):
        cmd = [mcloud, "up", "--host", "127.0.0.1", "--port", port, "--data-dir", datadir,
               "--admin-password", args.admin_password]
        server = slot["server"] = Server("mcloud", cmd, logfile=datadir / "bench.log", ready_line="mCloud ready")
        startup = server.wait_ready_line(300)
        log(f"mcloud: ready in {startup:.2f}s on 127.0.0.1:{port}")
        token = issue_token(f"http://127.0.0.1:{port}/identity/v3", args.admin_password)
        ops = bench_transfers("mcloud", Endpoint(port, "/image", {"X-Auth-Token": token}), server.proc.pid, args)
        results["mcloud"] = {"serving": "mcloud up, 1 worker; SQLite; file store; Keystone tokens",
                             "startup_seconds": round(startup, 2), **ops,
                             "memory": tree_memory(server.proc.pid)}


def hash_bound() -> dict:
    """What hashing alone allows: both servers compute md5 and sha512 of every byte uploaded."""
    import hashlib

    data = os.urandom(1 << 20) * 128
    speeds = {}
    for name in ("md5", "sha512"):
        h = hashlib.new(name)
        started = time.perf_counter()
        h.update(data)
        speeds[name] = len(data) / (time.perf_counter() - started) / 1e6
    both = 1 / (1 / speeds["md5"] + 1 / speeds["sha512"])
    return {"md5_mb_s": round(speeds["md5"]), "sha512_mb_s": round(speeds["sha512"]),
            "upload_bound_one_core_mb_s": round(both), "upload_bound_all_cores_mb_s": round(both * (os.cpu_count() or 1)),
            "note": "md5 + sha512 of every uploaded byte, one core; the all-cores bound leaves nothing for HTTP, "
                    "the disk or the client"}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["glance", "mcloud"])
    p.add_argument("--size-mib", type=int, default=1024, help="size of each image (default 1024)")
    p.add_argument("--repeat", type=int, default=3, help="images moved per server (default 3)")
    p.add_argument("--output", help="JSON results path (default bench/results/image-<date>.json)")
    p.add_argument("--admin-password", default="bench-admin-Secret1")
    p.add_argument("--mcloud-bin", default=str(REPO_DIR / ".venv/bin/mcloud"))
    p.add_argument("--mcloud-port", type=int, default=0)
    p.add_argument("--glance-port", type=int, default=0)
    p.add_argument("--glance-python", default=getattr(sys, "_base_executable", sys.executable),
                   help="python that creates the Glance virtualenv")
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args(argv)

    if args.only in (None, "glance"):
        ensure_glance_venv(args.glance_python)
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    results: dict = {
        "benchmark": "image",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                    "runner_python": platform.python_version()},
        "config": {"size_mib": args.size_mib, "repeat": args.repeat, "client_block_bytes": BLOCK,
                   "disk_format": "raw", "container_format": "bare"},
        "notes": [f"server and client share the machine's {os.cpu_count()} cores (loopback); both servers "
                  "compute md5 and sha512 of every upload and write to local disk (page cache)"],
    }
    failures = []
    for name, runner in (("glance", run_glance), ("mcloud", run_mcloud)):
        if args.only in (None, name):
            try:
                runner(args, results)
            except Exception as e:  # noqa: BLE001 - report, go on
                log(f"{name} side failed: {e}")
                failures.append(f"{name}: {e}")
    results["hash_bound"] = hash_bound()
    g, m = results.get("glance"), results.get("mcloud")
    if g and m:
        results["ratios_mcloud_over_glance"] = {
            op: {"best": ratio(m[op]["best_mb_s"], g[op]["best_mb_s"]),
                 "median": ratio(m[op]["median_mb_s"], g[op]["median_mb_s"]),
                 "server_cpu_per_gib": ratio(m[op]["server_cpu_s_per_gib"], g[op]["server_cpu_s_per_gib"])}
            for op in ("upload", "download")}
    if failures:
        results["failures"] = failures
    out = Path(args.output) if args.output else BENCH_DIR / "results" / f"image-{_dt.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'':10}{'upload MB/s':>14}{'download MB/s':>16}{'up CPU s/GiB':>14}{'down CPU s/GiB':>16}{'RSS MB':>9}")
    for name in ("glance", "mcloud"):
        r = results.get(name)
        if r:
            print(f"{name:10}{r['upload']['median_mb_s']:>14}{r['download']['median_mb_s']:>16}"
                  f"{r['upload']['server_cpu_s_per_gib']:>14}{r['download']['server_cpu_s_per_gib']:>16}"
                  f"{r['memory']['rss_mb']:>9}")
    if "ratios_mcloud_over_glance" in results:
        rr = results["ratios_mcloud_over_glance"]
        print(f"mcloud/glance (median): upload {rr['upload']['median']}x, download {rr['download']['median']}x")
    hb = results["hash_bound"]
    print(f"hashing bound for uploads: {hb['upload_bound_one_core_mb_s']} MB/s per core "
          f"(md5 {hb['md5_mb_s']}, sha512 {hb['sha512_mb_s']} MB/s)")
    print(f"results: {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
