"""Real guests through the real `openstack` CLI, as the issue's "Must show" has them: a real
`mcloud up` with the qemu hypervisor driver and the ovn network driver (its OVN/OVS data plane in
a namespace of its own), mCloud's tiny image, and:

- the tiny image as `build-tiny --upload` makes it (its kernel and initramfs as aki/ari images it
  names: servers boot the kernel directly, as Nova's kernel_id/ramdisk_id);
- `server create --user-data ... --wait` reaches ACTIVE; `console log show` has the guest's boot
  marker with its id and its user data;
- a second guest on the same network pings the first over OVN (its user-data script does);
- a floating IP reaches the first guest from an "outside" namespace on the provider network;
- stop/start, soft and hard reboot, pause/unpause, suspend/resume happen to the running guest
  (its console and its boot counter, kept on its disk, say so; the floating IP answers after);
- `server image create`, then a server booted from that snapshot carries the disk (its boot
  counter goes on from the original's); resize (confirmed) grows its disk; rebuild starts over
  from the image; delete leaves no qemu process and no port.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from mcloud.compute import tinyimage_upload
from mcloud.compute.tinyimage import IMAGE_PROPERTIES, GuestConsole, parse_console
from mcloud.network.dataplane import DataPlane, OvnOptions
from tests.harness import LiveCloud, free_port, missing
from tests.netns import Namespaces
from tests.ovn import outside, ovn_missing
from tests.qemu import qemu_missing, tiny

pytestmark = pytest.mark.real

HOST = "qemu-cli"


class Cli:
    def __init__(self, cloud: LiveCloud):
        self.cloud = cloud

    def __call__(self, *args: str) -> Any:
        out = self.cloud.openstack(*args, json_out=True).stdout
        return json.loads(out) if out.strip() else None

    def run(self, *args: str) -> None:
        self.cloud.openstack(*args)

    def server(self, name: str) -> dict[str, Any]:
        return self("server", "show", name)

    def wait_status(self, name: str, status: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            server = self.server(name)
            if server["status"] == status and not server.get("OS-EXT-STS:task_state"):
                return server
            assert server["status"] != "ERROR", server.get("fault")
            assert time.monotonic() < deadline, f"{name} is {server['status']}, not {status}"
            time.sleep(0.5)

    def console(self, name: str) -> str:
        return self.cloud.openstack("console", "log", "show", name).stdout

    def wait_console(self, name: str, until: Any, timeout: float = 120) -> GuestConsole:
        deadline = time.monotonic() + timeout
        while True:
            text = self.console(name)
            seen = parse_console(text)
            if until(seen):
                return seen
            assert time.monotonic() < deadline, f"{name}'s console never got there:\n{text[-3000:]}"
            time.sleep(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    for why in (ovn_missing(), qemu_missing()):
        if why is not None:
            missing(why)
    root = tmp_path_factory.mktemp("qemu-cli")
    namespace = f"mco-qc-{os.getpid()}"
    (root / "mcloud.toml").write_text(
        f'[network]\ndriver = "ovn"\n\n[network.ovn]\nnamespace = "{namespace}"\nchassis = "{HOST}"\n\n'
        f'[compute]\ndriver = "qemu"\nhost = "{HOST}"\n')
    cloud = LiveCloud(root, free_port(), env={"MCLOUD_IDENTITY_PASSWORD_HASH_ROUNDS": "4",
                                              "MCLOUD_NETWORK_DRIVER": "ovn", "MCLOUD_COMPUTE_DRIVER": "qemu"})
    cloud.start(timeout=120)
    ns = Namespaces(prefix="mcq")
    try:
        cli = Cli(cloud)
        # as `mcloud image build-tiny --upload` (and devstack with CirrOS's UEC tarball): the kernel and
        # initramfs as aki/ari images the disk names, so its servers boot the kernel directly
        boot = tinyimage_upload.boot_files()
        kernel = cli("image", "create", "--file", str(boot.kernel), "--disk-format", "aki", "--container-format",
                     "aki", "--public", "tiny-kernel")
        ramdisk = cli("image", "create", "--file", str(boot.ramdisk), "--disk-format", "ari", "--container-format",
                      "ari", "--public", "tiny-ramdisk")
        props = [a for k, v in {**IMAGE_PROPERTIES, "kernel_id": kernel["id"], "ramdisk_id": ramdisk["id"],
                                "os_command_line": boot.cmdline}.items() for a in ("--property", f"{k}={v}")]
        cli("image", "create", "--file", str(tiny().path), "--disk-format", "qcow2", "--container-format", "bare",
            "--public", *props, "tiny")
        cli("flavor", "create", "--ram", "96", "--disk", "1", "--vcpus", "1", "t.small")
        cli("flavor", "create", "--ram", "128", "--disk", "2", "--vcpus", "1", "t.big")
        net = cli("network", "create", "qnet")
        sub = cli("subnet", "create", "--network", net["id"], "--subnet-range", "10.91.0.0/24", "qsub")
        cli.run("security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "default")
        public = cli("network", "create", "--external", "--provider-network-type", "flat",
                     "--provider-physical-network", "public", "public")
        cli("subnet", "create", "--network", public["id"], "--subnet-range", "172.24.5.0/24", "--no-dhcp",
            "--gateway", "172.24.5.1", "public-sub")
        cli("router", "create", "qrouter")
        cli.run("router", "set", "--external-gateway", public["id"], "qrouter")
        cli.run("router", "add", "subnet", "qrouter", sub["id"])
        dataplane = DataPlane(OvnOptions.parse({"namespace": namespace, "chassis": HOST}, root))
        world_outside, _ = outside(dataplane, ns, "172.24.5.100/24")
        yield {"cli": cli, "cloud": cloud, "ns": ns, "outside": world_outside, "net": net["id"], "root": root}
    finally:
        ns.cleanup()
        assert cloud.stop() == 0


def qemu_pids(root: Path) -> list[int]:
    pids = []
    for pidfile in root.rglob("qemu.pid"):
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] not in ("Z", "X"):
            pids.append(pid)
    return pids


def test_real_guests_through_the_cli(world: dict[str, Any], tmp_path: Path) -> None:
    cli: Cli = world["cli"]
    ns: Namespaces = world["ns"]
    user_data = tmp_path / "ud.txt"
    user_data.write_text("hello from mcloud user data\n")
    vm1 = cli("server", "create", "--image", "tiny", "--flavor", "t.small", "--network", world["net"],
              "--user-data", str(user_data), "--wait", "vm1")
    assert vm1["status"] == "ACTIVE"
    seen = cli.wait_console("vm1", lambda c: c.booted and c.ready)
    assert seen.uuid == vm1["id"]
    assert seen.user_data == "hello from mcloud user data"
    ip1 = next(iter(seen.leases.values())).split("/")[0]
    assert ip1 in json.dumps(cli.server("vm1")["addresses"])

    # a second guest on the network pings the first over OVN
    script = tmp_path / "ping.sh"
    script.write_text(f"#!/bin/sh\nping -c 3 -W 2 {ip1}\n")
    cli("server", "create", "--image", "tiny", "--flavor", "t.small", "--network", world["net"],
        "--user-data", str(script), "--wait", "vm2")
    pinged = cli.wait_console("vm2", lambda c: c.script_exit is not None)
    assert pinged.script_exit == 0, pinged.script_output
    assert "3 packets received" in (pinged.script_output or ""), pinged.script_output

    # a floating IP reaches vm1 from the outside
    fip = cli("floating", "ip", "create", "public")["floating_ip_address"]
    cli.run("server", "add", "floating", "ip", "vm1", fip)
    ns.wait_ping(world["outside"], fip)

    # power actions on the real guest
    cli.run("server", "stop", "vm1")
    cli.wait_status("vm1", "SHUTOFF")
    assert parse_console(cli.console("vm1")).powering_off  # it got the ACPI button
    cli.run("server", "start", "vm1")
    cli.wait_status("vm1", "ACTIVE")
    assert cli.wait_console("vm1", lambda c: c.ready and c.boot_count == 2).booted
    cli.run("server", "reboot", "vm1")
    cli.wait_status("vm1", "ACTIVE")
    cli.wait_console("vm1", lambda c: c.ready and c.boot_count == 3)
    cli.run("server", "reboot", "--hard", "vm1")
    cli.wait_status("vm1", "ACTIVE")
    cli.wait_console("vm1", lambda c: c.ready and c.boot_count == 4)
    ns.wait_ping(world["outside"], fip)

    cli.run("server", "pause", "vm1")
    cli.wait_status("vm1", "PAUSED")
    assert not ns.ping(world["outside"], fip)  # a paused guest answers nothing
    cli.run("server", "unpause", "vm1")
    cli.wait_status("vm1", "ACTIVE")
    ns.wait_ping(world["outside"], fip)

    cli.run("server", "suspend", "vm1")
    cli.wait_status("vm1", "SUSPENDED")
    assert not ns.ping(world["outside"], fip)
    cli.run("server", "resume", "vm1")
    cli.wait_status("vm1", "ACTIVE")
    ns.wait_ping(world["outside"], fip)
    assert parse_console(cli.console("vm1")).boot_count == 4  # resumed where it was, not rebooted

    # a snapshot carries the disk: a server booted from it counts on from vm1's boots
    cli.run("server", "image", "create", "--name", "snap1", "--wait", "vm1")
    snap = cli("image", "show", "snap1")
    assert snap["status"] == "active"
    # the snapshot names the same kernel and ramdisk (Nova's snapshot metadata): vm3 boots directly too
    tiny_image = cli("image", "show", "tiny")
    assert {k: snap["properties"].get(k) for k in ("kernel_id", "ramdisk_id", "os_command_line")} == \
        {k: tiny_image["properties"][k] for k in ("kernel_id", "ramdisk_id", "os_command_line")}
    cli.run("server", "delete", "--wait", "vm2")
    cli("server", "create", "--image", "snap1", "--flavor", "t.small", "--network", world["net"], "--wait", "vm3")
    after = cli.wait_console("vm3", lambda c: c.ready)
    assert after.boot_count is not None and after.boot_count >= 5

    # resize grows the root disk (1 GB -> 2 GB), confirmed
    before = max(after.disks.values())
    cli.run("server", "resize", "--flavor", "t.big", "--wait", "vm3")
    assert cli.server("vm3")["status"] == "VERIFY_RESIZE"
    cli.run("server", "resize", "confirm", "vm3")
    cli.wait_status("vm3", "ACTIVE")
    grown = cli.wait_console("vm3", lambda c: c.ready and max(c.disks.values(), default=0) > before)
    assert max(grown.disks.values()) >= 2 * 10**9
    assert cli.server("vm3")["flavor"]["original_name"] == "t.big"

    # rebuild starts over from the image: a fresh disk counts from 1
    cli.run("server", "rebuild", "--image", "tiny", "--wait", "vm3")
    cli.wait_console("vm3", lambda c: c.ready and c.boot_count == 1)

    # delete: no guest process, no port left
    for name in ("vm1", "vm3"):
        cli.run("server", "delete", "--wait", name)
    assert qemu_pids(world["root"]) == []
    ports = cli("port", "list", "--network", world["net"], "--device-owner", "compute:nova")
    assert ports == []
