"""`mcloud up` with the ovn driver, as a user runs it: it starts and supervises its own OVN/OVS
daemons (in a namespace of their own, here one named for the test), the real `openstack` CLI
makes a network and ports, the ports plugged into namespaces go ACTIVE and ping each other;
stopping `mcloud up` stops the daemons and removes their namespace."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from mcloud.network.host import Host
from tests.harness import LiveCloud, free_port, missing
from tests.netns import Namespaces
from tests.ovn import ovn_missing

pytestmark = pytest.mark.real


def test_mcloud_up_runs_the_ovn_data_plane(tmp_path: Path) -> None:
    if (what := ovn_missing()) is not None:
        missing(what)
    namespace = f"mco-up-{os.getpid()}"
    (tmp_path / "mcloud.toml").write_text(f'[network]\ndriver = "ovn"\n\n[network.ovn]\nnamespace = "{namespace}"\n'
                                          'chassis = "up-test"\n')
    cloud = LiveCloud(tmp_path, free_port(), env={"MCLOUD_IDENTITY_PASSWORD_HASH_ROUNDS": "4",
                                                  "MCLOUD_NETWORK_DRIVER": "ovn"})
    cloud.start(timeout=90)
    pids: list[int] = []
    try:
        root = tmp_path / "ovn"
        pids = [int(p.read_text()) for p in root.glob("*.pid")]
        assert len(pids) == 6, sorted(p.name for p in root.glob("*.pid"))
        assert Path(f"/run/netns/{namespace}").exists()

        def cli(*args: str) -> dict:
            return json.loads(cloud.openstack(*args, json_out=True).stdout)

        net = cli("network", "create", "up-net")
        cli("subnet", "create", "--network", net["id"], "--subnet-range", "10.90.0.0/24", "up-sub")
        cloud.openstack("security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "default")
        host = Host(f"unix:{root / 'db.sock'}", namespace)
        with Namespaces() as ns:
            guests = []
            for name in ("p1", "p2"):
                port = cli("port", "create", "--network", net["id"], "--host", "up-test", name)
                assert port["status"] == "DOWN"
                guest = ns.add(name)
                host.plug_namespace(port["id"], port["mac_address"], guest)
                deadline = time.monotonic() + 30
                while cli("port", "show", port["id"])["status"] != "ACTIVE":
                    assert time.monotonic() < deadline, "the plugged port did not go ACTIVE"
                    time.sleep(0.2)
                lease = ns.dhcp(guest, "eth0")
                assert lease["ip"] == port["fixed_ips"][0]["ip_address"]
                guests.append((guest, lease["ip"]))
            ns.wait_ping(guests[0][0], guests[1][1])
            assert ns.ping(guests[1][0], guests[0][1])
    finally:
        assert cloud.stop() == 0
    # the daemons it started are gone, and so is their namespace
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            continue
        assert state == "Z", f"daemon {pid} still runs after mcloud up stopped"
    assert namespace not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
