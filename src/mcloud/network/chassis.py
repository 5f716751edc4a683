"""The data plane of an extra compute host: one more OVN chassis on the controller's OVN.

``mcloud up`` runs the whole OVN of the cloud (``mcloud.network.dataplane.DataPlane``: the
Northbound and Southbound databases, ovn-northd, and the controller's own chassis). Each further
compute host (``mcloud agent``) runs a ``Chassis``: its own ``Open_vSwitch`` database
(``ovsdb-server``), ``ovs-vswitchd`` (the userspace datapath where the kernel module is absent)
and ``ovn-controller``, in a network namespace of its own, registered in the controller's
Southbound database as a chassis named after the host (``name``: a port whose
``binding:host_id`` names the host is claimed here only, through the Northbound
``requested-chassis`` option the ovn driver writes as Neutron's does).

Traffic between chassis goes through Geneve tunnels, between the tunnel endpoints of the
chassis (``tunnel_cidr``, an address on ``br-phy``; the controller's data plane has one when its
``[network.ovn] tunnel_cidr`` is set). ``br-phy`` carries the uplinks: ``uplink``, an interface
already in the chassis's namespace (a NIC moved there), and/or, on one machine (tests, a host
given over to several chassis), a veth pair to a peer data plane's namespace
(``peer_namespace`` + ``peer_ovs_connection``: one end on each side's br-phy). The peer's br-phy
is a switch, so several chassis linked to the controller's data plane reach each other too.

    chassis = Chassis(ChassisOptions.parse({"name": "compute-2", "sb_connection": dataplane.sb_remote,
                                            "tunnel_cidr": "10.255.0.2/24",
                                            "peer_namespace": dataplane.namespace,
                                            "peer_ovs_connection": dataplane.ovs_remote}, data_dir))
    chassis.start()
    host = chassis.host            # mcloud.network.host.Host: plug_tap / open_tap / unplug
    ...
    chassis.stop()                 # deregisters the chassis; daemons, veth and namespace gone

``stop()`` asks ovn-controller to exit cleanly (its Chassis row leaves the Southbound
database and the other chassis drop their tunnels to it), stops the daemons it started by PID,
removes the veth and its port on the peer's br-phy, and the namespace it made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import logging
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcloud.network.dataplane import (
    OVS_SCHEMA,
    TUNNEL_BRIDGE,
    DataPlane,
    DataPlaneError,
    OvnOptions,
    in_netns,
)
from mcloud.network.host import Host

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ChassisOptions:
    """An extra chassis: who it is, where the controller's OVN is, how its tunnels leave."""

    #: the chassis (and compute host) name: ports bound to this host (binding:host_id) bind here
    name: str = ""
    #: the controller's Southbound database (``unix:/.../sb.sock`` on one machine, or ``tcp:IP:6642``)
    sb_connection: str = ""
    #: this chassis's tunnel endpoint, address/prefix on its br-phy (as ``10.255.0.2/24``)
    tunnel_cidr: str = ""
    #: its databases, sockets, pid files and logs
    directory: str = ""
    #: its network namespace: "auto" = ``mcloud-<hash of the directory>``, made when missing
    namespace: str = "auto"
    datapath_type: str = "auto"
    #: physical network name -> bridge (none by default: floating IPs and SNAT leave through the
    #: controller's gateway chassis)
    bridge_mappings: str = ""
    #: an interface already in the namespace to put on br-phy (a NIC); "" = none
    uplink: str = ""
    #: on one machine: the data plane to join by a veth pair (its namespace and Open_vSwitch database)
    peer_namespace: str = ""
    peer_ovs_connection: str = ""

    @classmethod
    def parse(cls, options: Mapping[str, Any], data_dir: Path) -> ChassisOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"chassis options unknown: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        opts = cls(**dict(options))
        if not opts.name:
            opts.name = socket.gethostname()
        if not opts.directory:
            opts.directory = str(Path(data_dir) / "chassis")
        if not opts.sb_connection:
            raise ValueError("a chassis needs the controller's Southbound database (sb_connection)")
        if not opts.tunnel_cidr:
            raise ValueError("a chassis needs a tunnel endpoint (tunnel_cidr, as 10.255.0.2/24)")
        if bool(opts.peer_namespace) != bool(opts.peer_ovs_connection):
            raise ValueError("peer_namespace and peer_ovs_connection go together")
        ipaddress.ip_interface(opts.tunnel_cidr)
        return opts

    @classmethod
    def beside(cls, controller: OvnOptions, data_dir: Path, **options: Any) -> ChassisOptions:
        """A chassis on the same machine as the controller's data plane (``controller``: its
        ``[network.ovn]`` options, as ``OvnOptions.parse`` settles them): its Southbound socket,
        and a veth to its namespace. ``options`` give the rest (name, tunnel_cidr, ...)."""
        root = Path(controller.directory)
        return cls.parse({"sb_connection": f"unix:{root / 'sb.sock'}", "peer_namespace": controller.namespace,
                          "peer_ovs_connection": f"unix:{root / 'db.sock'}", **options}, data_dir)

    def ovn_options(self, data_dir: Path) -> OvnOptions:
        return OvnOptions.parse({"directory": self.directory, "namespace": self.namespace, "chassis": self.name,
                                 "datapath_type": self.datapath_type, "tunnel_cidr": self.tunnel_cidr,
                                 "bridge_mappings": self.bridge_mappings}, data_dir)


def veth_name(directory: str) -> str:
    """The name of a chassis's veth to its peer (both ends): ``mcv`` + 8 hex digits of its directory."""
    return "mcv" + hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:8]


class Chassis(DataPlane):
    """An extra chassis's daemons (ovsdb-server, ovs-vswitchd, ovn-controller), run and
    supervised as ``DataPlane`` runs the controller's, joined to the controller's Southbound."""

    databases = (("conf", OVS_SCHEMA, "ovsdb-ovs", "db"),)
    central = False

    def __init__(self, options: ChassisOptions, data_dir: Path | None = None):
        self.chassis_options = options
        super().__init__(options.ovn_options(Path(data_dir or options.directory)))
        self.veth = veth_name(options.directory) if options.peer_namespace else ""
        self._linked = False

    @property
    def name(self) -> str:
        return self.chassis_options.name

    @property
    def sb_remote(self) -> str:
        return self.chassis_options.sb_connection

    @property
    def nb_remote(self) -> str:
        raise DataPlaneError("an extra chassis has no Northbound database")

    @property
    def host(self) -> Host:
        """Plugs ports (guests' taps) into this chassis's br-int."""
        return Host.of(self)

    def start(self, timeout: float = 60) -> float:
        seconds = super().start(timeout)
        try:
            o = self.chassis_options
            if o.uplink:
                self.add_uplink(o.uplink)
            if o.peer_namespace:
                self._link()
        except BaseException:
            self.stop()
            raise
        log.info("network: chassis %s up in %.1fs (tunnel endpoint %s, namespace %s)", self.name, seconds,
                 self.chassis_options.tunnel_cidr, self.namespace or "(host's)")
        return seconds

    def _link(self) -> None:
        """A veth pair: one end on this br-phy, the other on the peer's (in its namespace)."""
        o = self.chassis_options
        self._unlink()  # what a killed earlier run left
        self.run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", self.veth, "netns", o.peer_namespace,
                 namespace=True)
        self._linked = True
        self.add_uplink(self.veth)
        self.run(*in_netns(o.peer_namespace, ["ip", "link", "set", self.veth, "up"]))
        self.run("ovs-vsctl", f"--db={o.peer_ovs_connection}", "--timeout=20", "--may-exist", "add-port",
                 TUNNEL_BRIDGE, self.veth)

    def _unlink(self) -> None:
        o = self.chassis_options
        if not o.peer_namespace:
            return
        self.run("ovs-vsctl", f"--db={o.peer_ovs_connection}", "--timeout=20", "--if-exists", "del-port",
                 TUNNEL_BRIDGE, self.veth, check=False)
        # deleting one end deletes the pair (the peer's end included)
        self.run(*in_netns(o.peer_namespace, ["ip", "link", "delete", self.veth]), check=False)
        self._linked = False

    def stop(self) -> None:
        """Deregister the chassis, stop its daemons (by PID), remove its veth and namespace."""
        self._stopping.set()
        with self._lock:
            controller = self._daemons.get("ovn-controller")
            if controller is not None and controller.proc is not None and controller.proc.poll() is None:
                # a clean exit removes its Chassis row from the Southbound database
                # (its control socket is named by its pid: it takes no --unixctl)
                ctl = self.root / f"ovn-controller.{controller.proc.pid}.ctl"
                self.run("ovn-appctl", "-t", str(ctl), "exit", check=False, timeout=10)
                try:
                    controller.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log.warning("network: ovn-controller of chassis %s did not exit; stopping it", self.name)
        try:
            self._unlink()
        finally:
            super().stop()

    def registered(self) -> bool:
        """Whether the controller's Southbound database lists this chassis."""
        return self._chassis_ready()

