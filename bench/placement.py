#!/usr/bin/env python3
"""Placement benchmark: OpenStack Placement and mCloud placement, side by side.

Both servers get the same N resource providers (default 10,000), each with VCPU 64,
MEMORY_MB 262144 and DISK_GB 2000, created through their APIs. Then, on loopback:
  * candidates        GET /allocation_candidates?resources=VCPU:1&limit=1000 (as Nova asks,
                      max_placement_results = 1000), one client: latency
  * candidates (all)  the same without a limit: every provider is a candidate
  * claims            PUT /allocations/{new consumer} of 1 VCPU on a random provider, at
                      microversion 1.39, 8 concurrent clients: throughput
The load generator, the process helpers and the result fields are bench/identity.py's.

The peer is openstack-placement from PyPI, installed into bench/.peers/placement-venv (kept
between runs), on SQLite, served by gunicorn with 2 sync workers, as operators run it;
auth_strategy = noauth2 (no Keystone in the loop; mCloud validates its Fernet tokens in-process).

    python3 bench/placement.py                         # both, 10,000 providers
    python3 bench/placement.py --providers 500 --duration 3 --only mcloud
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity import (PEERS_DIR, REPO_DIR, HttpConn, Server, build_request, free_port,  # noqa: E402
                      log, measure, tree_memory)

PLACEMENT_VENV = PEERS_DIR / "placement-venv"
PLACEMENT_REQUIREMENT = "openstack-placement==16.0.0"
VERSION = "placement 1.39"
INVENTORY = {"VCPU": {"total": 64}, "MEMORY_MB": {"total": 262144}, "DISK_GB": {"total": 2000}}


def ensure_placement_venv(python: str) -> None:
    marker = PLACEMENT_VENV / ".bench-installed"
    if marker.exists():
        return
    log(f"installing {PLACEMENT_REQUIREMENT} and gunicorn into {PLACEMENT_VENV} (once)")
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    if PLACEMENT_VENV.exists():
        shutil.rmtree(PLACEMENT_VENV)
    subprocess.run([python, "-m", "venv", str(PLACEMENT_VENV)], check=True)
    pip = [str(PLACEMENT_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + [PLACEMENT_REQUIREMENT, "gunicorn"], check=True, timeout=1800)
    marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))


# ------------------------------------------------------------------ load


async def _populate(port: int, prefix: str, headers: dict, uuids: list[str], concurrency: int) -> float:
    """Create the providers and their inventories through the API, ``concurrency`` at a time."""
    todo = list(enumerate(uuids))
    locked = [0]
    started = time.perf_counter()

    async def worker() -> None:
        conn = HttpConn("127.0.0.1", port)
        while todo:
            i, rp = todo.pop()
            for method, path, body, want in (
                    ("POST", "/resource_providers", {"name": f"bench-{i}", "uuid": rp}, 200),
                    ("PUT", f"/resource_providers/{rp}/inventories",
                     {"resource_provider_generation": 0, "inventories": INVENTORY}, 200)):
                raw = build_request(method, "127.0.0.1", port, prefix + path, headers, json.dumps(body).encode())
                for attempt in range(20):
                    try:
                        status, _, text = await conn.request(raw)
                    except (ConnectionError, asyncio.IncompleteReadError):  # reset while in a sync server's backlog
                        conn.close()
                        status, text = 0, b"connection reset"
                    # Placement on SQLite answers 500 "database is locked" to concurrent writers: try again
                    if status not in (0, 500) or (status == 500 and b"locked" not in text):
                        break
                    locked[0] += 1
                    await asyncio.sleep(0.05 * (attempt + 1))
                if status != want:
                    raise RuntimeError(f"{method} {path}: {status} {text[:300]!r}")
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if locked[0]:
        log(f"    {locked[0]} writes retried (connection reset, or 500 'database is locked')")
    return time.perf_counter() - started


def bench_placement(label: str, port: int, prefix: str, headers: dict, server_pid: int, args) -> dict:
    headers = {**headers, "OpenStack-API-Version": VERSION}
    uuids = [str(uuid.uuid4()) for _ in range(args.providers)]
    log(f"  {label}: creating {args.providers} providers with inventories")
    took = asyncio.run(_populate(port, prefix, headers, uuids, 8))
    log(f"    {took:.1f}s ({2 * args.providers / took:.0f} writes/s)")
    out: dict = {"providers": args.providers, "populate_seconds": round(took, 1)}

    def get(path: str) -> bytes:
        return build_request("GET", "127.0.0.1", port, prefix + path, headers)

    probe = urllib.request.Request(f"http://127.0.0.1:{port}{prefix}/allocation_candidates?resources=VCPU:1",
                                   headers=headers)
    with urllib.request.urlopen(probe, timeout=300) as r:
        found = len(json.loads(r.read())["allocation_requests"])
    if found != args.providers:
        raise RuntimeError(f"{label}: {found} candidates for {args.providers} providers")
    limited = get("/allocation_candidates?resources=VCPU:1&limit=1000")
    out["candidates_limit_1000"] = measure(f"{label} candidates limit=1000", "127.0.0.1", port,
                                           lambda i, n: limited, 200, 1, args.warmup, args.duration, server_pid)
    everything = get("/allocation_candidates?resources=VCPU:1")
    out["candidates_all"] = measure(f"{label} candidates (all {args.providers})", "127.0.0.1", port,
                                    lambda i, n: everything, 200, 1, args.warmup, args.duration, server_pid)

    def claim(i: int, n: int) -> bytes:
        body = {"allocations": {random.choice(uuids): {"resources": {"VCPU": 1}}}, "project_id": "bench",
                "user_id": "bench", "consumer_generation": None, "consumer_type": "INSTANCE"}
        return build_request("PUT", "127.0.0.1", port, f"{prefix}/allocations/{uuid.uuid4()}", headers,
                             json.dumps(body).encode())

    out["claims"] = measure(f"{label} claims", "127.0.0.1", port, claim, 204, args.concurrency, args.warmup,
                            args.duration, server_pid)
    out["memory"] = tree_memory(server_pid)
    return out


# ------------------------------------------------------------------ servers


def run_peer(args, results: dict) -> None:
    rundir = Path(tempfile.mkdtemp(prefix="placement-bench-"))
    port = free_port()
    (rundir / "placement.conf").write_text(f"""[DEFAULT]
debug = false
log_file = {rundir / 'placement.log'}

[api]
auth_strategy = noauth2

[placement_database]
connection = sqlite:///{rundir / 'placement.db'}
""")
    env = dict(os.environ, OS_PLACEMENT_CONFIG_DIR=str(rundir))
    bin_dir = PLACEMENT_VENV / "bin"
    server = None
    try:
        subprocess.run([bin_dir / "placement-manage", "--config-file", rundir / "placement.conf", "db", "sync"],
                       check=True, env=env, capture_output=True, timeout=300)
        version = subprocess.run([bin_dir / "python", "-c", "import importlib.metadata as m; "
                                  "print(m.version('openstack-placement'))"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        # Each worker syncs the standard traits and classes into the database as it boots; two
        # doing so at once on SQLite fail with "database is locked" and gunicorn gives up. Load
        # the application once first, so that the workers find them there.
        subprocess.run([bin_dir / "python", "-c", "import placement.wsgi.api"], check=True, env=env,
                       capture_output=True, timeout=300)
        server = Server("placement", [bin_dir / "gunicorn", "--workers", "2", "--worker-class", "sync",
                                      "--bind", f"127.0.0.1:{port}", "--timeout", "300",
                                      "placement.wsgi.api:application"], env=env, logfile=rundir / "gunicorn.log")
        startup = server.wait_http(f"http://127.0.0.1:{port}/", timeout=120)
        log(f"placement {version}: gunicorn (2 sync workers) on 127.0.0.1:{port}")
        ops = bench_placement("placement", port, "", {"X-Auth-Token": "admin"}, server.proc.pid, args)
        results["placement"] = {"version": version, "serving": "gunicorn, 2 sync workers; SQLite; noauth2",
                                "startup_seconds": round(startup, 2), **ops}
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(rundir, ignore_errors=True)


def run_mcloud(args, results: dict) -> None:
    datadir = Path(tempfile.mkdtemp(prefix="mcloud-placement-bench-"))
    port = free_port()
    cmd = [args.mcloud_bin, "up", "--host", "127.0.0.1", "--port", port, "--data-dir", datadir,
           "--admin-password", args.admin_password]
    if args.mcloud_workers > 1:
        cmd += ["--workers", str(args.mcloud_workers)]
    server = None
    try:
        server = Server("mcloud", cmd, logfile=datadir / "bench.log", ready_line="mCloud ready")
        server.wait_ready_line(300)
        body = json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": args.admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/identity/v3/auth/tokens", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            token = r.headers["X-Subject-Token"]
        ops = bench_placement("mcloud", port, "/placement", {"X-Auth-Token": token}, server.proc.pid, args)
        results["mcloud"] = {"workers": args.mcloud_workers, "serving": "mcloud up; SQLite", **ops}
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(datadir, ignore_errors=True)


# ------------------------------------------------------------------ report


def report(results: dict) -> None:
    p, m = results.get("placement"), results.get("mcloud")
    rows = [("candidates limit=1000", "candidates_limit_1000"), ("candidates all", "candidates_all"),
            ("claims", "claims")]
    ratios: dict = {}
    print(f"\nPlacement benchmark, {results['date']}, {results['config']['providers']} providers")
    print(f"{'':34}{'Placement':>12}{'mCloud':>12}{'ratio':>10}")
    for label, key in rows:
        for field, better in (("rps", "higher"), ("p50_ms", "lower"), ("p99_ms", "lower")):
            a = p[key][field] if p else None
            b = m[key][field] if m else None
            r = None
            if a and b:
                r = round(b / a, 2) if better == "higher" else round(a / b, 2)
                ratios[f"{key}_{field}"] = r
            print(f"{label + ' ' + field:34}{a if a is not None else '-':>12}{b if b is not None else '-':>12}"
                  f"{(str(r) + 'x') if r else '-':>10}")
    for who, d in (("Placement", p), ("mCloud", m)):
        if d:
            print(f"{who}: populate {d['populate_seconds']} s, RSS {d['memory']['rss_mb']} MB, "
                  f"PSS {d['memory']['pss_mb']} MB; claims server CPU {d['claims']['server_cpu_percent']} %")
    print("ratio: how many times better mCloud is (req/s mCloud/Placement; latency Placement/mCloud)\n")
    results["ratios"] = ratios


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["placement", "mcloud"])
    ap.add_argument("--providers", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=8, help="claim clients (default 8)")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--admin-password", default="bench-admin-Secret1")
    ap.add_argument("--mcloud-bin", default=str(REPO_DIR / ".venv/bin/mcloud"))
    ap.add_argument("--mcloud-workers", type=int, default=1)
    ap.add_argument("--placement-python", default=getattr(sys, "_base_executable", sys.executable))
    ap.add_argument("--output")
    args = ap.parse_args(argv)
    results: dict = {"benchmark": "placement", "date": _dt.datetime.now().isoformat(timespec="seconds"),
                     "config": {"providers": args.providers, "claim_concurrency": args.concurrency,
                                "duration_s": args.duration, "warmup_s": args.warmup,
                                "microversion": VERSION, "cores": os.cpu_count()}}
    if args.only in (None, "placement"):
        ensure_placement_venv(args.placement_python)
        run_peer(args, results)
    if args.only in (None, "mcloud"):
        run_mcloud(args, results)
    report(results)
    out = Path(args.output) if args.output else REPO_DIR / "bench" / "results" / \
        f"placement-{_dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
