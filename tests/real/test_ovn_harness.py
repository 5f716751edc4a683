"""The data plane mCloud supervises (mcloud.network.dataplane via tests/ovn.py): its daemons
run in a namespace of their own, nothing appears in the machine's default namespace, a daemon
that dies is restarted, and ports plug into namespaces."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

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
