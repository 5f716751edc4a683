"""The host side of a port: plugging it into this chassis's br-int, and unplugging it.

OVN binds a logical port to this chassis when an OVS interface on br-int carries
``external_ids:iface-id=<port id>`` (ovn-controller then reports the port up, and the network
service makes it ACTIVE). Two kinds of plug:

- ``plug_tap``: a guest's NIC. With the userspace datapath (no kernel module), OVS reads and
  writes a plain kernel tap device as a "system" port, so mCloud makes a *persistent* tap
  (``tap<port id[:11]>``, Neutron's name) in the data plane's namespace, adds it to br-int, and
  qemu attaches to that tap. qemu runs in the host's namespace, where the tap is not visible
  by name, so the compute service asks ``open_tap(name)`` for a file descriptor opened inside the
  data plane's namespace and hands it to qemu: ``-netdev tap,id=n0,fd=N`` (``pass_fds``). The
  device carries no traffic until qemu holds it.
- ``plug_namespace``: a test host (or a container): an OVS *internal* port, given the port's
  MAC and moved into the network namespace as ``ifname``. OVS keeps the device's file
  descriptor, so it keeps switching its traffic after the move.

Both set ``external_ids`` ``iface-id``, ``attached-mac`` and ``iface-status=active`` as
Nova's os-vif does. ``unplug(port_id)`` removes the OVS port and the device.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import time

from mcloud.network.dataplane import DataPlane, call_in_netns, in_netns

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000


class HostError(RuntimeError):
    pass


def device_name(port_id: str) -> str:
    """The device of a port on this host: ``tap`` + the first 11 characters of its id (as Neutron)."""
    return f"tap{port_id[:11]}"


class Host:
    """Plugs ports into br-int of one chassis (its Open_vSwitch database, its namespace)."""

    def __init__(self, ovs_remote: str, namespace: str = "", bridge: str = "br-int"):
        self.ovs_remote = ovs_remote
        self.namespace = namespace
        self.bridge = bridge

    @classmethod
    def of(cls, dataplane: DataPlane) -> Host:
        return cls(dataplane.ovs_remote, dataplane.namespace)

    # -- commands -------------------------------------------------------------------------

    def _run(self, argv: list[str], in_namespace: bool = False, check: bool = True) -> str:
        if in_namespace:
            argv = in_netns(self.namespace, argv)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise HostError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def _vsctl(self, *args: str) -> str:
        return self._run(["ovs-vsctl", f"--db={self.ovs_remote}", "--timeout=20", *args])

    def _ip(self, *args: str, check: bool = True) -> str:
        return self._run(["ip", *args], in_namespace=True, check=check)

    def _add_port(self, name: str, port_id: str, mac: str, kind: str) -> None:
        interface = ["--", "set", "Interface", name, f"external_ids:iface-id={port_id}",
                     f"external_ids:attached-mac={mac}", "external_ids:iface-status=active",
                     f"external_ids:mcloud-plug={kind}"]
        if kind == "namespace":
            interface.append("type=internal")
        self._vsctl("--may-exist", "add-port", self.bridge, name, *interface)

    def _wait_link(self, name: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self._link_exists(name):
            if time.monotonic() > deadline:
                raise HostError(f"{name} did not appear in the data plane's namespace")
            time.sleep(0.02)

    def _link_exists(self, name: str) -> bool:
        argv = in_netns(self.namespace, ["ip", "link", "show", name])
        return subprocess.run(argv, capture_output=True).returncode == 0

    # -- plugging ---------------------------------------------------------------------------

    def plug_tap(self, port_id: str, mac: str, mtu: int | None = None) -> str:
        """A persistent tap for a guest's NIC, on br-int for ``port_id``; returns its name.
        The guest's NIC must use ``mac`` (port security allows no other)."""
        name = device_name(port_id)
        if not self._link_exists(name):
            self._ip("tuntap", "add", "dev", name, "mode", "tap")
        if mtu:
            self._ip("link", "set", name, "mtu", str(mtu))
        self._ip("link", "set", name, "up")
        self._add_port(name, port_id, mac, "tap")
        return name

    def open_tap(self, name: str) -> int:
        """A file descriptor of tap ``name`` (made by ``plug_tap``), opened in the data plane's
        namespace, for qemu's ``-netdev tap,fd=N``. The caller owns (and closes) it."""

        def opener() -> int:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI))
            except BaseException:
                os.close(fd)
                raise
            return fd

        try:
            return call_in_netns(self.namespace or None, opener)
        except Exception as exc:
            raise HostError(f"cannot open tap {name}: {exc}") from exc

    def plug_namespace(self, port_id: str, mac: str, netns: str, ifname: str = "eth0",
                       mtu: int | None = None) -> str:
        """An OVS internal port for ``port_id`` with its MAC, moved into namespace ``netns`` as
        ``ifname`` and set up (no address: give it one, or ask DHCP). Returns the OVS port's name."""
        name = device_name(port_id)
        self._add_port(name, port_id, mac, "namespace")
        self._wait_link(name)
        self._ip("link", "set", name, "address", mac)
        if mtu:
            self._ip("link", "set", name, "mtu", str(mtu))
        self._ip("link", "set", name, "netns", netns)
        self._run(in_netns(netns, ["ip", "link", "set", name, "name", ifname]))
        self._run(in_netns(netns, ["ip", "link", "set", ifname, "up"]))
        return name

    def unplug(self, port_id: str) -> None:
        """Remove ``port_id``'s OVS port from br-int and its device (idempotent)."""
        names = self._vsctl("--bare", "--columns=name", "find", "Interface",
                            f"external_ids:iface-id={port_id}").split()
        for name in names or [device_name(port_id)]:
            kind = self._vsctl("--if-exists", "get", "Interface", name, "external_ids:mcloud-plug",
                               ).strip().strip('"') if names else ""
            self._vsctl("--if-exists", "del-port", self.bridge, name)
            if kind == "tap" or (not names and self._link_exists(name)):
                self._ip("tuntap", "del", "dev", name, "mode", "tap", check=False)

    def plugged(self) -> dict[str, str]:
        """Port id -> OVS port name of every port plugged on br-int here."""
        out = self._vsctl("--bare", "--columns=name,external_ids", "find", "Interface", "external_ids:iface-id!=\"\"")
        found: dict[str, str] = {}
        for block in out.strip().split("\n\n"):
            lines = block.strip().splitlines()
            if len(lines) < 2:
                continue
            for item in lines[1].split():
                if item.startswith("iface-id="):
                    found[item.split("=", 1)[1].strip('"')] = lines[0].strip()
        return found
