"""The data plane mCloud supervises (mcloud.network.dataplane via tests/ovn.py): its daemons
run in a namespace of their own, nothing appears in the machine's default namespace, a daemon
that dies is restarted, and ports plug into namespaces. And the harness's loopback forward into a
namespace."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.harness import free_port
from tests.netns import LoopbackForward, Namespaces
from tests.ovn import OvnHarness

pytestmark = pytest.mark.real


def test_daemons_run_in_the_data_planes_namespace(ovn: OvnHarness) -> None:
    pids = ovn.dataplane.pids()
    assert set(pids) == {"ovsdb-nb", "ovsdb-sb", "ovsdb-ovs", "ovn-northd", "ovs-vswitchd", "ovn-controller"}
    assert all(ovn.dataplane.alive().values())
    ours = os.readlink("/proc/self/ns/net")
    for name in ("ovs-vswitchd", "ovn-controller"):
        assert os.readlink(f"/proc/{pids[name]}/ns/net") != ours, name
    # the bridges and the datapath's taps exist there, and not here
    inside = ovn.dataplane.run("ip", "-o", "link", namespace=True)
    for link in ("br-int", "br-ex"):
        assert f" {link}:" in inside
        assert subprocess.run(["ip", "link", "show", link], capture_output=True).returncode != 0
    assert "datapath_type: netdev" in ovn.dataplane.vsctl("show") or ovn.dataplane.datapath == "system"
    # every file of the data plane is in its directory
    assert {p.name for p in Path(ovn.dataplane.root).glob("*.sock")} == {"nb.sock", "sb.sock", "db.sock"}


def test_a_daemon_that_dies_is_restarted(ovn: OvnHarness) -> None:
    before = ovn.dataplane.pids()["ovn-northd"]
    restarts = ovn.dataplane.restarts()["ovn-northd"]
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while ovn.dataplane.restarts()["ovn-northd"] == restarts or not ovn.dataplane.alive()["ovn-northd"]:
        assert time.monotonic() < deadline, "ovn-northd was not restarted"
        time.sleep(0.1)
    assert ovn.dataplane.pids()["ovn-northd"] != before
    # and it works: a switch in the Northbound database reaches the Southbound one
    ovn.nb("ls-add", "restart-check")
    try:
        ovn.wait_flows()
        assert "restart-check" in ovn.sb("--columns=external_ids", "list", "Datapath_Binding")
    finally:
        ovn.nb("ls-del", "restart-check")


def test_namespaces_are_cleaned_up() -> None:
    """A harness leaves no namespace, daemon or directory behind."""
    harness = OvnHarness()
    harness.start()
    ns = harness.ns.add("gone")
    pids = list(harness.dataplane.pids().values())
    root = harness.root
    harness.stop()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert harness.namespace not in listed and ns not in listed
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            continue
        assert state == "Z"  # ended (a zombie until reaped by whoever adopted it), not running
    assert not root.exists()


def test_a_loopback_forward_leads_a_namespace_to_a_server_here() -> None:
    """``LoopbackForward``: 127.0.0.1:PORT inside a namespace reaches a server on 127.0.0.1:PORT
    here (as Tempest in "the outside" reaches `mcloud up`), and nothing once it is closed."""
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/x', timeout=5).read())"
    try:
        with Namespaces(prefix="mcf") as ns:
            inside = ns.add("fwd")
            assert ns.run(inside, sys.executable, "-c", fetch, check=False).returncode != 0  # nothing there yet
            with LoopbackForward(inside, port):
                for _ in range(3):
                    assert ns.run(inside, sys.executable, "-c", fetch).stdout.strip() == "b'hello /x'"
            assert ns.run(inside, sys.executable, "-c", fetch, check=False).returncode != 0
    finally:
        server.shutdown()
        server.server_close()


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the handler's name
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
