"""A private OVN/OVS data plane for tests and benchmarks (like tests/ceph.py for Ceph).

``OvnHarness`` runs mCloud's own supervisor (``mcloud.network.dataplane.DataPlane``) in a temp
dir, with every daemon inside a network namespace of its own (``mco-<pid>-<n>``), so br-int,
br-ex and their taps never appear in the machine's default namespace. It adds what tests need
around it: ``host`` (plugging ports: ``mcloud.network.host.Host``), ``ns`` (test hosts:
``tests.netns.Namespaces``) and ``outside(...)``, a namespace standing for the world beyond
the provider network ``public`` (a veth from br-ex into it), and ``add_chassis(name)``, an extra
compute host's chassis (``mcloud.network.chassis.Chassis``, in a namespace of its own) joined to
this data plane's tunnel endpoint (``TUNNEL_CIDR`` on br-phy) by a veth between the two
namespaces. ``stop()`` stops the chassis and the daemons (by PID), deletes the namespaces and the
temp dir.

It needs neither pytest nor a cloud: ``bench/network.py`` uses it with a plain python.

    with OvnHarness() as ovn:
        driver_options = ovn.driver_options()      # [network.ovn] for the ovn driver
        guest = ovn.ns.add("vm1")
        ovn.host.plug_namespace(port_id, mac, guest)
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcloud.network.chassis import Chassis, ChassisOptions
from mcloud.network.dataplane import DataPlane, OvnOptions, programs_missing
from mcloud.network.host import Host
from tests.netns import Namespaces

_count = itertools.count()

#: the tunnel endpoints' subnet: the data plane is .1, its extra chassis .2, .3 ...
TUNNEL_CIDR = "100.64.255.1/24"

#: turns off TX checksum offload of interface argv[1] (``ethtool -K <if> tx off``; no ethtool here)
_TX_CHECKSUM_OFF = """
import ctypes, fcntl, socket, struct, sys
value = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))  # ETHTOOL_STXCSUM, off
request = struct.pack("16sP", sys.argv[1].encode(), ctypes.addressof(value))
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8946, request)  # SIOCETHTOOL
"""


def ovn_missing() -> str | None:
    """What is missing to run the data plane and the test hosts (a sentence), or None."""
    why = programs_missing()
    absent = [p for p in ("ping", "udhcpc", "ovn-nbctl", "ovn-sbctl") if shutil.which(p) is None]
    if absent:
        why = (why + "; " if why else "") + f"missing {', '.join(absent)} (Debian: iputils-ping udhcpc ovn-central)"
    return why


def outside(dataplane: DataPlane, ns: Namespaces, address: str, bridge: str = "br-ex",
            routes: tuple[str, ...] = ()) -> tuple[str, str]:
    """A namespace (made in ``ns``) on the provider network behind ``bridge`` of ``dataplane``
    (ours, or the one a real ``mcloud up`` runs: ``DataPlane(OvnOptions.parse(...))`` needs no
    start to run commands in it), with ``address`` (CIDR) on its ``eth0``: "the outside" for
    floating IPs. ``routes`` are extra ``ip route`` specs. Returns (namespace, the veth end on the
    bridge)."""
    name = ns.add("outside")
    n = next(_count)
    inner, outer = f"mcx{os.getpid() % 10000}o{n}", f"mcx{os.getpid() % 10000}i{n}"
    # made inside the data plane's namespace, one end then moved: nothing in the host's
    dataplane.run("ip", "link", "add", inner, "type", "veth", "peer", "name", outer, namespace=True)
    dataplane.run("ip", "link", "set", outer, "netns", name, namespace=True)
    dataplane.run("ip", "link", "set", inner, "up", namespace=True)
    dataplane.vsctl("add-port", bridge, inner)
    ns.run(name, "ip", "link", "set", outer, "name", "eth0")
    # a veth leaves TCP/UDP checksums to "hardware" (CHECKSUM_PARTIAL); ovs-vswitchd's
    # userspace datapath reads the frames through a packet socket as they are, and its
    # conntrack marks them invalid (no DNAT of a port forwarding, no stateful ACL match).
    # A host on a real wire sends complete checksums: so does the outside.
    ns.run(name, sys.executable, "-c", _TX_CHECKSUM_OFF, "eth0")
    ns.run(name, "ip", "addr", "add", address, "dev", "eth0")
    ns.run(name, "ip", "link", "set", "eth0", "up")
    for route in routes:
        ns.run(name, "ip", "route", "add", *route.split())
    return name, inner


class OvnHarness:
    def __init__(self, chassis: str = "mcloud-test"):
        self.root = Path(tempfile.mkdtemp(prefix="mcloud-ovn-"))
        self.namespace = f"mco-{os.getpid()}-{next(_count)}"
        self.options = OvnOptions.parse({"namespace": self.namespace, "chassis": chassis,
                                         "directory": str(self.root / "ovn"), "datapath_type": "auto",
                                         "tunnel_cidr": TUNNEL_CIDR}, self.root)
        self.dataplane = DataPlane(self.options)
        self.host = Host.of(self.dataplane)
        self.ns = Namespaces(prefix="mct")
        self._veths: list[str] = []
        self.chassis: dict[str, Chassis] = {}
        self._tunnel_hosts = itertools.count(2)

    def __enter__(self) -> OvnHarness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> float:
        try:
            return self.dataplane.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in list(self.chassis):
            self.remove_chassis(name)
        self.ns.cleanup()
        self.dataplane.stop()  # its namespace goes, and the veth ends in it with it
        shutil.rmtree(self.root, ignore_errors=True)

    def driver_options(self) -> dict[str, Any]:
        """``[network.ovn]`` for an ovn driver (or a cloud) using this data plane, not managing it."""
        return {"manage": False, "nb_connection": self.dataplane.nb_remote, "chassis": self.options.chassis,
                "namespace": self.namespace, "directory": str(self.dataplane.root)}

    def outside(self, address: str, bridge: str = "br-ex", routes: tuple[str, ...] = ()) -> str:
        """A namespace on the provider network behind ``bridge`` with ``address`` (CIDR) on
        its ``eth0``: "the outside" for floating IPs. ``routes`` are extra ``ip route`` specs."""
        name, inner = outside(self.dataplane, self.ns, address, bridge, routes)
        self._veths.append(inner)
        return name

    def chassis_options(self, name: str) -> ChassisOptions:
        """Options of an extra chassis ``name`` joined to this data plane (its own temp dir,
        namespace ``mcc-<pid>-<n>``, the next tunnel address)."""
        network = TUNNEL_CIDR.rsplit(".", 1)[0]
        return ChassisOptions.beside(self.options, self.root, name=name,
                                     tunnel_cidr=f"{network}.{next(self._tunnel_hosts)}/24",
                                     directory=tempfile.mkdtemp(prefix="mcloud-chassis-"),
                                     namespace=f"mcc-{os.getpid()}-{next(_count)}")

    def add_chassis(self, name: str) -> Chassis:
        """An extra chassis ``name``, started and registered (its ``host`` plugs ports there)."""
        options = self.chassis_options(name)
        chassis = Chassis(options)
        self.chassis[name] = chassis
        try:
            chassis.start()
        except BaseException:
            self.remove_chassis(name)
            raise
        return chassis

    def remove_chassis(self, name: str) -> None:
        chassis = self.chassis.pop(name)
        try:
            chassis.stop()
        finally:
            shutil.rmtree(chassis.chassis_options.directory, ignore_errors=True)

    def nb(self, *args: str) -> str:
        return self.dataplane.nbctl(*args)

    def nb_find(self, table: str, *conditions: str, columns: str = "_uuid") -> list[str]:
        """The ``columns`` of the ``table`` rows that match (``ovn-nbctl --bare find``)."""
        out = self.nb("--bare", f"--columns={columns}", "find", table, *conditions)
        return [block.strip() for block in out.strip().split("\n\n") if block.strip()]

    def sb(self, *args: str) -> str:
        return self.dataplane.sbctl(*args)

    def wait_flows(self) -> None:
        """Until ovn-northd and ovn-controller have caught up with the Northbound database."""
        subprocess.run(["ovn-nbctl", f"--db={self.dataplane.nb_remote}", "--timeout=30", "--wait=hv", "sync"],
                       check=True, capture_output=True)
