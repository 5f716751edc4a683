"""Two hosts with the real qemu driver (the issue's "Must show"): a real `mcloud up` on OVN (its
in-process host) and a real `mcloud agent --beside` with its own chassis. One tiny guest (128 MB,
TCG) boots on the controller's host on a tenant network; its remote console works through the
proxy (a real RFB handshake with qemu's VNC server); a live migration to the agent's host
(`openstack server migrate --live-migration --host`) moves it while a ping from a namespace on
the tenant network keeps answering: the longest silence is printed and bounded; the guest's
console shows no second boot. Then a cold migration (`server migrate --host`, confirmed) brings it
back to the controller's host, stopped, its disk copied, booted again there."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator

import pytest

from mcloud.network.host import Host
from tests.e2e.conftest import unique
from tests.harness import missing, wait_for
from tests.netns import Namespaces, Pinger
from tests.real.compute_two_hosts import AGENT, CONTROLLER, TwoHosts
from tests.rfb import handshake, websocket_url

pytestmark = pytest.mark.real


def qemu_missing() -> str | None:
    try:
        qemu = importlib.import_module("mcloud.compute.drivers.qemu")
    except ImportError:
        return "the qemu hypervisor driver (mcloud.compute.drivers.qemu)"
    from mcloud.compute import tinyimage

    return "; ".join(p for p in (qemu.missing(), tinyimage.missing()) if p) or None


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Iterator[TwoHosts]:
    if (what := qemu_missing()) is not None:
        missing(what)
    with TwoHosts(tmp_path_factory.mktemp("two-hosts-qemu"), driver="qemu") as two:
        yield two
    assert two.cloud_exit == 0, "mcloud up did not stop cleanly"


@pytest.fixture(scope="module")
def world(hosts) -> Iterator[dict]:
    """The tiny image, a 128 MB flavor, a tenant network, and a namespace on it (the pinger)."""
    from mcloud.compute import tinyimage

    image = tinyimage.build()
    hosts.cloud.openstack("image", "create", "tiny", "--disk-format", "qcow2", "--container-format", "bare",
                          "--file", str(image.path), "--public", "--property", "hw_vif_model=virtio")
    hosts.cloud.openstack("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "tiny.128")
    net = hosts.cli("network", "create", unique("net"))
    hosts.cli("subnet", "create", "--network", net["id"], "--subnet-range", "10.77.0.0/24", unique("sub"))
    hosts.cloud.openstack("security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "default")
    with Namespaces() as ns:
        port = hosts.cli("port", "create", "--network", net["id"], "--host", CONTROLLER, unique("pinger"))
        pinger = ns.add("pinger")
        root = hosts.cloud.data_dir / "ovn"
        Host(f"unix:{root / 'db.sock'}", hosts.namespace).plug_namespace(port["id"], port["mac_address"], pinger)
        wait_for(lambda: hosts.cli("port", "show", port["id"])["status"] == "ACTIVE", 30, doc="the pinger's port")
        ns.dhcp(pinger, "eth0")
        yield {"net": net, "ns": ns, "pinger": pinger}


def console_log(hosts: TwoHosts, server_id: str) -> str:
    return hosts.cloud.openstack("console", "log", "show", server_id).stdout


def test_live_migration_keeps_a_ping_answering(hosts, world):
    from mcloud.compute.tinyimage import parse_console

    started = time.monotonic()
    server = hosts.cli("server", "create", unique("vm"), "--image", "tiny", "--flavor", "tiny.128",
                       "--network", world["net"]["id"], "--availability-zone", f"nova:{CONTROLLER}")
    server = wait_for(lambda: (s := hosts.cli("server", "show", server["id"]))["status"] != "BUILD" and s, 120,
                      doc="the server to leave BUILD", interval=1)
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-SRV-ATTR:host"] == CONTROLLER
    seen = wait_for(lambda: (s := parse_console(console_log(hosts, server["id"]))).ready and s, 120,
                    doc="the guest to be ready", interval=1)
    print(f"\nguest ready {time.monotonic() - started:.1f}s after the create")
    assert seen.uuid == server["id"]
    ip = next(iter(seen.leases.values())).split("/")[0]
    ns, pinger_ns = world["ns"], world["pinger"]
    ns.wait_ping(pinger_ns, ip, timeout=30)

    # its console through the proxy: qemu's VNC server answers the RFB handshake
    url = hosts.cli("console", "url", "show", "--novnc", server["id"])["url"]
    init = handshake(websocket_url(url))
    assert init.width > 0 and init.height > 0

    pinger: Pinger = ns.pinger(pinger_ns, ip, interval=0.05)
    moved_at = time.time()
    try:
        hosts.cloud.openstack("--os-compute-api-version", "2.30", "server", "migrate", "--live-migration",
                              "--host", AGENT, "--wait", server["id"])
        took = time.time() - moved_at
        time.sleep(3)  # the ping goes on answering from the destination
    finally:
        replies = pinger.stop()
    after = hosts.cli("server", "show", server["id"])
    assert after["status"] == "ACTIVE" and after["OS-EXT-SRV-ATTR:host"] == AGENT, after
    gap = Pinger.gap([t for t in replies if t >= moved_at - 1])
    print(f"live migration took {took:.1f}s; longest ping silence {gap * 1000:.0f} ms; "
          f"{len(replies)} replies")
    assert replies and replies[-1] > moved_at + took, "no reply after the migration"
    assert gap < 5.0, f"the ping was silent for {gap:.2f}s"
    assert ns.ping(pinger_ns, ip)
    # the same guest, not a new boot (the destination's console log starts at the move, as libvirt's)
    assert parse_console(console_log(hosts, server["id"])).boot_count in (None, seen.boot_count)

    migrations = hosts.cli("--os-compute-api-version", "2.80", "server", "migration", "list",
                           "--server", server["id"])
    assert migrations and migrations[0]["Status"] == "completed"

    # the console follows the guest to the agent's host
    url = hosts.cli("console", "url", "show", "--novnc", server["id"])["url"]
    assert handshake(websocket_url(url)).width > 0

    # a cold migration back: the guest is stopped, its disk copied to the controller's host (the
    # boot count it keeps on that disk goes on from there), started again; confirmed, it is ACTIVE
    boots = parse_console(console_log(hosts, server["id"])).boot_count or seen.boot_count
    hosts.cloud.openstack("--os-compute-api-version", "2.56", "server", "migrate", "--host", CONTROLLER,
                          "--wait", server["id"])
    moved = hosts.cli("server", "show", server["id"])
    assert moved["status"] == "VERIFY_RESIZE" and moved["OS-EXT-SRV-ATTR:host"] == CONTROLLER, moved
    hosts.cloud.openstack("server", "resize", "confirm", server["id"])
    wait_for(lambda: hosts.cli("server", "show", server["id"])["status"] == "ACTIVE", 60, doc="the confirm")
    again = wait_for(lambda: (s := parse_console(console_log(hosts, server["id"]))).ready and s, 120,
                     doc="the guest to boot on the controller's host", interval=1)
    assert again.uuid == server["id"] and again.boot_count == boots + 1, (boots, again)
    ns.wait_ping(pinger_ns, next(iter(again.leases.values())).split("/")[0], timeout=30)
    migrations = hosts.cli("--os-compute-api-version", "2.80", "server", "migration", "list",
                           "--server", server["id"])
    assert [m["Type"] for m in migrations][:2] == ["migration", "live-migration"], migrations
    assert migrations[0]["Status"] == "confirmed", migrations
    hosts.cloud.openstack("server", "delete", "--wait", server["id"])
