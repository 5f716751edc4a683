#!/usr/bin/env python3
"""Network benchmark: mCloud's Neutron API on the fake driver and on the real OVN data plane.

A real ``mcloud up`` (one worker, SQLite, loopback) runs once with ``[network] driver =
"fake"`` and once with ``"ovn"`` (mcloud up then runs its own OVN/OVS daemons, in a network
namespace named for the run). Against each:

  * port create     POST /v2.0/ports on one network (a /16 subnet), C concurrent clients,
                    N ports: throughput and latency (with ovn every port is also written to
                    the OVN Northbound database before the answer)
  * port list       GET /v2.0/ports with 10,000 ports in the cloud (the whole list, and one
                    page of 100 with ?limit=100): latency (fake run only: a list reads no
                    data plane)
  * ACTIVE+ping     (ovn) a port created through the API, plugged into a namespace as a test
                    host (an OVS internal port, mcloud.network.host), its address set: the time
                    until the API says ACTIVE, and until a neighbour's ping is answered

Needs root and Debian's ovn-central ovn-host openvswitch-switch iputils-ping (tools/setup.sh
test), and runs with the repo's virtualenv (it imports mcloud and tests/netns.py):

    .venv/bin/python bench/network.py                       # both, 2,000 created, 10,000 listed
    .venv/bin/python bench/network.py --ports 500 --list-ports 2000 --only fake
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

from mcloud.network.host import Host  # noqa: E402
from tests.harness import LiveCloud, free_port  # noqa: E402
from tests.netns import Namespaces  # noqa: E402

CHASSIS = "bench"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(pct(values, 0.5), 2), "p99_ms": round(pct(values, 0.99), 2),
            "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else 0.0,
            "max_ms": round(max(values) * 1000, 2) if values else 0.0}


class Api:
    def __init__(self, cloud: LiveCloud):
        self.base = cloud.url + "/networking/v2.0"
        r = httpx.post(cloud.url + "/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": cloud.admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        r.raise_for_status()
        self.headers = {"X-Auth-Token": r.headers["x-subject-token"]}
        self.project = r.json()["token"]["project"]["id"]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=60)

    def call(self, method: str, path: str, body: Any = None, want: int = 200) -> dict[str, Any]:
        r = httpx.request(method, self.base + path, json=body, headers=self.headers, timeout=120)
        assert r.status_code == want, f"{method} {path} -> {r.status_code}: {r.text}"
        return r.json() if r.content else {}


def start_cloud(root: Path, driver: str) -> tuple[LiveCloud, str]:
    data = root / driver
    data.mkdir()
    namespace = f"mcb-{driver}-{os.getpid()}"
    (data / "mcloud.toml").write_text(
        f'[network]\ndriver = "{driver}"\n\n[network.ovn]\nnamespace = "{namespace}"\nchassis = "{CHASSIS}"\n')
    cloud = LiveCloud(data, free_port(), env={"MCLOUD_NETWORK_DRIVER": driver})
    seconds = cloud.start(timeout=120)
    log(f"{driver}: mcloud up ready in {seconds:.2f}s")
    return cloud, namespace


def setup_network(api: Api) -> tuple[str, str]:
    api.call("PUT", f"/quotas/{api.project}", {"quota": {"port": -1, "network": -1, "subnet": -1}})
    net = api.call("POST", "/networks", {"network": {"name": "bench"}}, 201)["network"]
    sub = api.call("POST", "/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.96.0.0/16",
                                                   "ip_version": 4, "name": "bench"}}, 201)["subnet"]
    return net["id"], sub["id"]


async def create_ports(api: Api, network_id: str, count: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    todo = iter(range(count))

    async def worker() -> None:
        async with api.client() as client:
            for i in todo:
                t = time.perf_counter()
                r = await client.post("/ports", json={"port": {"network_id": network_id, "name": f"p{i}"}})
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 201, r.text

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"ports": count, "concurrency": concurrency, "seconds": round(elapsed, 2),
            "per_second": round(count / elapsed, 1), "latency": summary(latencies)}


async def list_ports(api: Api, repeats: int) -> dict[str, Any]:
    results = {}
    async with api.client() as client:
        for name, params in (("all", {}), ("page of 100", {"limit": "100"})):
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                r = await client.get("/ports", params=params)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200
            results[name] = {"returned": len(r.json()["ports"]), **summary(times)}
    return results


async def active_and_pingable(api: Api, cloud: LiveCloud, namespace: str, network_id: str,
                              samples: int) -> dict[str, Any]:
    """Per sample: POST a port, plug it into a namespace with its address; the seconds until the
    API shows ACTIVE, and until a neighbour's ping is answered."""
    host = Host(f"unix:{cloud.data_dir / 'ovn' / 'db.sock'}", namespace)
    groups = api.call("GET", "/security-groups?name=default")["security_groups"]
    group = next(g for g in groups if g["project_id"] == api.project)
    api.call("POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "icmp"}}, 201)
    active: list[float] = []
    pingable: list[float] = []
    with Namespaces(prefix="mcb") as ns:
        async with api.client() as client:
            async def plugged(label: str) -> tuple[str, str, float, float]:
                t0 = time.perf_counter()
                r = await client.post("/ports", json={"port": {"network_id": network_id, "binding:host_id": CHASSIS}})
                port = r.json()["port"]
                guest = ns.add(label)
                await asyncio.to_thread(host.plug_namespace, port["id"], port["mac_address"], guest)
                ip = port["fixed_ips"][0]["ip_address"]
                ns.run(guest, "ip", "addr", "add", f"{ip}/16", "dev", "eth0")
                while (await client.get(f"/ports/{port['id']}")).json()["port"]["status"] != "ACTIVE":
                    await asyncio.sleep(0.01)
                t_active = time.perf_counter() - t0
                return guest, ip, t0, t_active

            anchor, anchor_ip, _, _ = await plugged("anchor")
            for i in range(samples):
                guest, ip, t0, t_active = await plugged(f"s{i}")
                while not ns.ping(anchor, ip, wait=0.2):
                    pass
                active.append(t_active)
                pingable.append(time.perf_counter() - t0)
                await asyncio.to_thread(ns.delete, guest)
    return {"samples": samples, "create_to_active": summary(active), "create_to_pingable": summary(pingable)}


def run(driver: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    cloud, namespace = start_cloud(root, driver)
    try:
        api = Api(cloud)
        network_id, _ = setup_network(api)
        out: dict[str, Any] = {"driver": driver}
        log(f"{driver}: creating {args.ports} ports, {args.concurrency} clients")
        out["port_create"] = asyncio.run(create_ports(api, network_id, args.ports, args.concurrency))
        log(f"{driver}: {out['port_create']['per_second']} ports/s")
        if driver == "fake" and args.list_ports:
            more = args.list_ports - args.ports
            if more > 0:
                log(f"{driver}: creating {more} more ports for the list")
                asyncio.run(create_ports(api, network_id, more, args.concurrency))
            out["port_list"] = asyncio.run(list_ports(api, args.list_repeats))
            out["port_list"]["ports_in_cloud"] = max(args.ports, args.list_ports)
            log(f"{driver}: list {out['port_list']}")
        if driver == "ovn":
            out["active_and_pingable"] = asyncio.run(active_and_pingable(api, cloud, namespace, network_id,
                                                                         args.samples))
            log(f"{driver}: {out['active_and_pingable']}")
        return out
    finally:
        cloud.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ports", type=int, default=2000, help="ports created for the throughput (each driver)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--list-ports", type=int, default=10000, help="ports in the cloud for the list latency")
    p.add_argument("--list-repeats", type=int, default=20)
    p.add_argument("--samples", type=int, default=10, help="ports timed to ACTIVE and pingable")
    p.add_argument("--only", choices=("fake", "ovn"))
    p.add_argument("--output")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/network.py needs root (the OVN data plane and namespaces)")
    results: dict[str, Any] = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "ovn": subprocess.run(["ovn-northd", "--version"], capture_output=True, text=True).stdout
                    .splitlines()[0] if os.path.exists("/usr/bin/ovn-northd") else None},
        "runs": []}
    with tempfile.TemporaryDirectory(prefix="mcloud-bench-net-") as tmp:
        for driver in ("fake", "ovn"):
            if args.only and driver != args.only:
                continue
            results["runs"].append(run(driver, args, Path(tmp)))
    runs = {r["driver"]: r for r in results["runs"]}
    if "fake" in runs and "ovn" in runs:
        results["ovn_vs_fake_create"] = round(runs["ovn"]["port_create"]["per_second"]
                                              / runs["fake"]["port_create"]["per_second"], 2)
    text = json.dumps(results, indent=2)
    print(text)
    out = Path(args.output) if args.output else REPO / "bench" / "results" / f"network-{_dt.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    log(f"written to {out}")


if __name__ == "__main__":
    main()
