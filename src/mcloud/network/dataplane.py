"""The OVN/OVS data plane mCloud runs in all-in-one mode: databases, daemons and supervision.

``DataPlane`` creates the three OVSDB databases from Debian's schemas (OVN Northbound, OVN
Southbound, the local ``Open_vSwitch`` database) and runs, as child processes it supervises,
``ovsdb-server`` for each, ``ovn-northd``, ``ovs-vswitchd`` and ``ovn-controller``. Sockets,
pid files, logs and databases live in one directory (``<data_dir>/ovn`` for ``mcloud up``).
A daemon that dies is restarted (its databases are files, so nothing is lost).

Where the daemons run: the OVS userspace datapath (``datapath_type=netdev``, used when the
``openvswitch`` kernel module is absent) creates its bridges and internal ports as tap devices
in the network namespace of ``ovs-vswitchd``. So the daemons run inside a network namespace of
their own (``[network.ovn] namespace``, default ``mcloud-<8 hex digits of the directory's hash>``,
one per data dir; created when missing, removed at stop when this supervisor created it):
br-int, br-ex and every tap stay out of the host's own namespace. An empty ``namespace`` runs
them in the caller's namespace (only on a host given over to mCloud). The databases' Unix sockets are files, so mCloud itself (in the host's
namespace) reaches them all the same.

The chassis: one, named ``chassis`` (default: the host name, so that a port's
``binding:host_id`` names it as in Neutron), Geneve on 127.0.0.1, bridge mappings
``public:br-ex`` (the provider network ``public`` reaches the outside through br-ex; mCloud
creates br-ex, and whoever owns the uplink adds it to br-ex).

Tunnels to other chassis (``tunnel_cidr``, e.g. ``10.255.0.1/24``; see
``mcloud.network.chassis`` for the extra compute hosts): the userspace datapath sends and
receives Geneve itself, so the tunnel endpoint is an address on an OVS bridge of that datapath,
``br-phy``, with the uplinks (a NIC, or a veth to another host's namespace) as its ports; OVS
routes by the routes of its own namespace (``ovs-appctl ovs/route/show``) and resolves the
next hop by ARP on br-phy. The kernel datapath takes the same layout.

Nothing here needs pytest or the network service: tests/ovn.py and bench/network.py use it
as it is.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

#: what the data plane runs (Debian packages ovn-central ovn-host openvswitch-switch)
PROGRAMS = ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd", "ovn-northd", "ovn-controller", "ip")
NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
#: Unix socket paths longer than this do not fit sockaddr_un
_SUN_PATH_MAX = 107


#: where ``ip netns add`` keeps the handles of named network namespaces
NETNS_DIR = "/var/run/netns"


def in_netns(namespace: str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the named network namespace (one ``ip netns add`` made), or as it is
    when ``namespace`` is None. nsenter enters the network namespace only; ``ip netns exec`` also
    unshares the mount namespace to remount /sys, which fails where / is not a mount point (a
    chroot), and nothing run here needs that /sys."""
    if not namespace:
        return list(argv)
    return ["nsenter", f"--net={NETNS_DIR}/{namespace}", "--", *argv]


_T = TypeVar("_T")


def call_in_netns(namespace: str | None, fn: Callable[[], _T]) -> _T:
    """``fn()``, called by a thread of its own that entered the named network namespace (or as it
    is when ``namespace`` is None): ``setns`` moves only the calling thread, which ends right
    after. Sockets and devices ``fn`` opens stay in that namespace, whoever uses them later (a
    tap's descriptor for qemu, a listening socket). What ``fn`` raises is raised here."""
    if not namespace:
        return fn()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"{NETNS_DIR}/{namespace}") as ns:
                if libc.setns(ns.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), f"setns into network namespace {namespace}")
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"in-netns-{namespace}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def programs_missing() -> str | None:
    """What keeps this machine from running the data plane (a sentence), or None."""
    if os.geteuid() != 0:
        return "not running as root (the OVN/OVS daemons need it)"
    absent = [p for p in PROGRAMS if shutil.which(p) is None]
    absent += [str(s) for s in (NB_SCHEMA, SB_SCHEMA, OVS_SCHEMA) if not s.exists()]
    if absent:
        return f"missing {', '.join(absent)} (Debian: ovn-central ovn-host openvswitch-switch)"
    return None


def kernel_datapath_available() -> bool:
    """Whether the openvswitch kernel module is loaded or can be loaded."""
    if Path("/sys/module/openvswitch").exists():
        return True
    release = os.uname().release
    return any(Path(f"/lib/modules/{release}").rglob("openvswitch.ko*")) if Path(
        f"/lib/modules/{release}").is_dir() else False


@dataclasses.dataclass
class OvnOptions:
    """``[network.ovn]``: the ovn driver's options and those of the data plane it supervises."""

    #: start and supervise the daemons (all-in-one); False: use an OVN run by someone else
    manage: bool = True
    #: where the databases, sockets, pid files and logs live ("" = <data_dir>/ovn)
    directory: str = ""
    #: the Northbound database (default: the managed one's socket)
    nb_connection: str = ""
    #: the network namespace the daemons run in: "auto" = ``mcloud-<hash of the directory>``, made
    #: when missing; "" = the caller's own (only on a host given over to mCloud)
    namespace: str = "auto"
    #: "auto" (system when the kernel module exists, else netdev), "netdev" or "system"
    datapath_type: str = "auto"
    #: this chassis's name (default: the host name)
    chassis: str = ""
    encap_ip: str = "127.0.0.1"
    #: this chassis's tunnel endpoint as address/prefix on br-phy ("" = none: no other chassis
    #: can reach this one); its address replaces ``encap_ip``
    tunnel_cidr: str = ""
    #: physical network name -> bridge, comma-separated as ovn-bridge-mappings
    bridge_mappings: str = "public:br-ex"
    #: seconds a driver call waits on the Northbound database
    timeout: float = 30.0

    @classmethod
    def parse(cls, options: Mapping[str, Any], data_dir: Path) -> OvnOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"[network.ovn] has unknown options: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(known))})")
        opts = cls(**dict(options))
        if not opts.directory:
            opts.directory = str(Path(data_dir) / "ovn")
        if opts.namespace == "auto":
            opts.namespace = "mcloud-" + hashlib.sha256(str(Path(opts.directory).resolve()).encode()).hexdigest()[:8]
        if not opts.chassis:
            opts.chassis = socket.gethostname()
        if not opts.nb_connection:
            opts.nb_connection = f"unix:{Path(opts.directory) / 'nb.sock'}"
        if opts.datapath_type not in ("auto", "netdev", "system"):
            raise ValueError("[network.ovn] datapath_type is auto, netdev or system")
        if opts.tunnel_cidr:
            try:
                interface = ipaddress.ip_interface(opts.tunnel_cidr)
            except ValueError:
                raise ValueError(f"[network.ovn] tunnel_cidr {opts.tunnel_cidr!r} is no address/prefix") from None
            if interface.version != 4 or interface.network.prefixlen == 32:
                raise ValueError("[network.ovn] tunnel_cidr is an IPv4 address with its prefix, as 10.255.0.1/24")
            opts.encap_ip = str(interface.ip)
        return opts

    @property
    def mappings(self) -> dict[str, str]:
        pairs = [m.split(":", 1) for m in self.bridge_mappings.split(",") if m.strip()]
        return {name.strip(): bridge.strip() for name, bridge in pairs}

    def effective_datapath(self) -> str:
        if self.datapath_type != "auto":
            return self.datapath_type
        return "system" if kernel_datapath_available() else "netdev"


#: the OVS bridge that holds the tunnel endpoint's address and the uplinks
TUNNEL_BRIDGE = "br-phy"


class DataPlaneError(RuntimeError):
    pass


@dataclasses.dataclass
class _Daemon:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0


class DataPlane:
    """The OVN/OVS daemons of one chassis, run and supervised from ``root``."""

    #: the OVSDB databases it keeps: (file stem, schema, daemon, socket stem)
    databases: tuple[tuple[str, Path, str, str], ...] = (
        ("nb", NB_SCHEMA, "ovsdb-nb", "nb"), ("sb", SB_SCHEMA, "ovsdb-sb", "sb"), ("conf", OVS_SCHEMA, "ovsdb-ovs", "db"))
    #: runs the central part (the Northbound and Southbound databases, ovn-northd); an extra
    #: chassis (``mcloud.network.chassis``) runs only its switch and ovn-controller
    central = True

    def __init__(self, options: OvnOptions):
        self.options = options
        self.root = Path(options.directory)
        self.namespace = options.namespace
        self.datapath = options.effective_datapath()
        self._daemons: dict[str, _Daemon] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._made_namespace = False
        self.start_seconds = 0.0

    # -- addresses ----------------------------------------------------------------------------

    def _sock(self, name: str) -> Path:
        return self.root / f"{name}.sock"

    @property
    def nb_remote(self) -> str:
        return f"unix:{self._sock('nb')}"

    @property
    def sb_remote(self) -> str:
        return f"unix:{self._sock('sb')}"

    @property
    def ovs_remote(self) -> str:
        return f"unix:{self._sock('db')}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVN_RUNDIR", "OVN_LOGDIR", "OVN_DBDIR"):
            env[var] = str(self.root)
        return env

    def in_namespace(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the data plane's namespace."""
        return in_netns(self.namespace, argv)

    # -- tools --------------------------------------------------------------------------------

    def run(self, *argv: str, namespace: bool = False, check: bool = True, timeout: float = 30) -> str:
        cmd = self.in_namespace(list(argv)) if namespace else list(argv)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self._env())
        if check and result.returncode != 0:
            raise DataPlaneError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def vsctl(self, *args: str, wait: bool = False) -> str:
        """``ovs-vsctl`` against this chassis's Open_vSwitch database."""
        return self.run("ovs-vsctl", f"--db={self.ovs_remote}", "--timeout=20", *(() if wait else ("--no-wait",)),
                        *args)

    def nbctl(self, *args: str) -> str:
        return self.run("ovn-nbctl", f"--db={self.nb_remote}", "--timeout=20", *args)

    def sbctl(self, *args: str) -> str:
        return self.run("ovn-sbctl", f"--db={self.sb_remote}", "--timeout=20", *args)

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> DataPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> float:
        """Create what is missing and start every daemon; returns once ovn-controller has
        registered the chassis and br-int exists. Returns the seconds it took."""
        if (why := programs_missing()) is not None:
            raise DataPlaneError(why)
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if len(str(self.root / "br-int.mgmt")) > _SUN_PATH_MAX:
            raise DataPlaneError(f"the OVN directory {self.root} is too long a path for Unix sockets")
        try:
            self._stop_stale()
            self._ensure_namespace()
            for name, schema, _, _ in self.databases:
                db = self.root / f"{name}.db"
                if not db.exists():
                    self.run("ovsdb-tool", "create", str(db), str(schema))
                else:  # a newer Debian package may have moved the schema on
                    if self.run("ovsdb-tool", "needs-conversion", str(db), str(schema)).strip() == "yes":
                        self.run("ovsdb-tool", "convert", str(db), str(schema))
            r = self.root
            for db, _, name, sock in self.databases:
                self._add(name, ["ovsdb-server", str(r / f"{db}.db"), f"--remote=punix:{self._sock(sock)}",
                                 f"--pidfile={r / name}.pid", f"--unixctl={r / name}.ctl",
                                 f"--log-file={r / name}.log", "-vconsole:off"])
                self._spawn(self._daemons[name])
            self._wait(lambda: all(self._sock(d[3]).exists() for d in self.databases), 20, "the databases' sockets")
            self._configure_ovs()
            if self.central:
                self._add("ovn-northd", ["ovn-northd", f"--ovnnb-db={self.nb_remote}", f"--ovnsb-db={self.sb_remote}",
                                         f"--pidfile={r}/ovn-northd.pid", f"--unixctl={r}/ovn-northd.ctl",
                                         f"--log-file={r}/ovn-northd.log", "-vconsole:off"])
            vswitchd = ["ovs-vswitchd", self.ovs_remote, f"--pidfile={r}/ovs-vswitchd.pid",
                        f"--unixctl={r}/ovs-vswitchd.ctl", f"--log-file={r}/ovs-vswitchd.log", "-vconsole:off"]
            if self.datapath == "netdev":
                vswitchd.append("--disable-system")
            self._add("ovs-vswitchd", self.in_namespace(vswitchd))
            self._add("ovn-controller", self.in_namespace([
                "ovn-controller", self.ovs_remote, f"--pidfile={r}/ovn-controller.pid",
                f"--log-file={r}/ovn-controller.log", "-vconsole:off"]))
            for name in ("ovn-northd", "ovs-vswitchd", "ovn-controller"):
                if name in self._daemons:
                    self._spawn(self._daemons[name])
            self._create_bridges()
            self._wait(self._chassis_ready, timeout, "ovn-controller to register the chassis and make br-int")
        except BaseException:
            self.stop()
            raise
        self._stopping.clear()
        self._watcher = threading.Thread(target=self._watch, name="ovn-dataplane-supervisor", daemon=True)
        self._watcher.start()
        self.start_seconds = time.monotonic() - started
        log.info("network: OVN data plane up in %.1fs (%s datapath, namespace %s, %s)", self.start_seconds,
                 self.datapath, self.namespace or "(host's)", self.root)
        return self.start_seconds

    def stop(self) -> None:
        """Stop the daemons this supervisor started (by PID) and the namespace it made."""
        self._stopping.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)
        self._watcher = None
        with self._lock:
            # the controller and the switch first, the databases last
            for daemon in reversed(list(self._daemons.values())):
                proc = daemon.proc
                if proc is None:
                    continue
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                daemon.proc = None
            self._daemons.clear()
        if self._made_namespace:
            subprocess.run(["ip", "netns", "delete", self.namespace], capture_output=True)
            self._made_namespace = False

    def alive(self) -> dict[str, bool]:
        with self._lock:
            return {name: d.proc is not None and d.proc.poll() is None for name, d in self._daemons.items()}

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {name: d.proc.pid for name, d in self._daemons.items() if d.proc is not None}

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {name: d.restarts for name, d in self._daemons.items()}

    # -- the pieces ---------------------------------------------------------------------------

    def _ensure_namespace(self) -> None:
        if not self.namespace:
            return
        if not Path(f"/run/netns/{self.namespace}").exists():
            self.run("ip", "netns", "add", self.namespace)
            self._made_namespace = True
        self.run("ip", "link", "set", "lo", "up", namespace=True)

    def _stop_stale(self) -> None:
        """End the daemons an earlier supervisor of this directory left running (it was killed):
        they hold the databases' locks. Only processes whose pid file is here and whose command
        line names this directory are touched."""
        for pidfile in self.root.glob("*.pid"):
            try:
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except (ValueError, OSError):
                continue
            if str(self.root) not in cmdline:
                continue
            log.warning("network: stopping %s (pid %d) left by an earlier run", pidfile.stem, pid)
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                        break
                    time.sleep(0.05)
                else:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError):
                pass

    def _add(self, name: str, argv: list[str]) -> None:
        self._daemons[name] = _Daemon(name, argv)

    def _spawn(self, daemon: _Daemon) -> None:
        # a pid file left by a killed daemon would make the new one refuse to start
        with open(self.root / f"{daemon.name}.stderr", "ab") as stderr:
            daemon.proc = subprocess.Popen([*daemon.argv, "--overwrite-pidfile"], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=stderr, env=self._env(),
                                           cwd=self.root, start_new_session=True)
        daemon.started_at = time.monotonic()

    def _configure_ovs(self) -> None:
        o = self.options
        self.vsctl("init")
        self.vsctl("set", "Open_vSwitch", ".",
                   f"external_ids:system-id={o.chassis}", f"external_ids:hostname={o.chassis}",
                   f"external_ids:ovn-remote={self.sb_remote}", "external_ids:ovn-encap-type=geneve",
                   f"external_ids:ovn-encap-ip={o.encap_ip}", f'external_ids:ovn-bridge-mappings="{o.bridge_mappings}"',
                   f"external_ids:ovn-bridge-datapath-type={self.datapath}",
                   # ovn-controller asks the switch rather than probing each few seconds
                   "external_ids:ovn-remote-probe-interval=0", "external_ids:ovn-openflow-probe-interval=0")

    def _create_bridges(self) -> None:
        self.vsctl("--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                   f"datapath_type={self.datapath}", "fail-mode=secure", "other-config:disable-in-band=true")
        bridges = sorted(set(self.options.mappings.values()))
        if self.options.tunnel_cidr:
            bridges.append(TUNNEL_BRIDGE)
        for bridge in bridges:
            self.vsctl("--may-exist", "add-br", bridge, "--", "set", "Bridge", bridge, f"datapath_type={self.datapath}")
        # the bridges' own ports come up (taps of the userspace datapath) in the namespace
        for bridge in ("br-int", *bridges):
            self._wait(lambda b=bridge: self._link_exists(b), 20, f"{bridge} to appear")
            self.run("ip", "link", "set", bridge, "up", namespace=True)
        if self.options.tunnel_cidr:
            # the tunnel endpoint; OVS learns the route to its subnet from this namespace's table
            self.run("ip", "addr", "replace", self.options.tunnel_cidr, "dev", TUNNEL_BRIDGE, namespace=True)

    def add_uplink(self, ifname: str) -> None:
        """Put interface ``ifname`` (in the data plane's namespace: a NIC, or a veth to another
        chassis) on br-phy, up: the tunnels to the chassis behind it go through it."""
        if not self.options.tunnel_cidr:
            raise DataPlaneError("this data plane has no tunnel endpoint ([network.ovn] tunnel_cidr)")
        self.run("ip", "link", "set", ifname, "up", namespace=True)
        self.vsctl("--may-exist", "add-port", TUNNEL_BRIDGE, ifname)

    def remove_uplink(self, ifname: str) -> None:
        self.vsctl("--if-exists", "del-port", TUNNEL_BRIDGE, ifname)

    def _link_exists(self, name: str) -> bool:
        cmd = self.in_namespace(["ip", "link", "show", name])
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def _chassis_ready(self) -> bool:
        out = subprocess.run(["ovn-sbctl", f"--db={self.sb_remote}", "--timeout=5", "--bare", "--columns=name",
                              "find", "Chassis", f"name={self.options.chassis}"], capture_output=True, text=True)
        return out.returncode == 0 and out.stdout.strip() == self.options.chassis

    def _wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for daemon in self._daemons.values():
                if daemon.proc is not None and daemon.proc.poll() is not None:
                    raise DataPlaneError(f"{daemon.name} exited with {daemon.proc.returncode}: "
                                         f"{self.log_tail(daemon.name)}")
            if time.monotonic() > deadline:
                raise DataPlaneError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def log_tail(self, name: str, size: int = 2000) -> str:
        texts = []
        for path in (self.root / f"{name}.stderr", self.root / f"{name}.log"):
            if path.exists():
                texts.append(path.read_text(errors="replace")[-size:])
        return "\n".join(texts)

    def _watch(self) -> None:
        """Restart a daemon that died (at most once a second each)."""
        while not self._stopping.wait(0.5):
            with self._lock:
                if self._stopping.is_set():
                    return
                for daemon in self._daemons.values():
                    proc = daemon.proc
                    if proc is None or proc.poll() is None:
                        continue
                    if time.monotonic() - daemon.started_at < 1.0:
                        continue
                    log.warning("network: %s (pid %d) exited with %s; restarting it", daemon.name, proc.pid,
                                proc.returncode)
                    daemon.restarts += 1
                    self._spawn(daemon)


def start_for_up(config: Any) -> DataPlane | None:
    """For ``mcloud up``, once in the parent before any worker: settle ``[network] driver =
    "auto"`` (ovn where it can run, else fake, said in one log line) and, for ovn with
    ``manage`` on, start the data plane. Returns it (the caller stops it at exit), or None."""
    from mcloud.network.config import NetworkConfig
    from mcloud.network.drivers import settle

    network = config.section("network", NetworkConfig)  # the section object the workers will read
    if settle(network) != "ovn":
        return None
    options = OvnOptions.parse(network.ovn, config.data_dir)
    if not options.manage:
        return None
    dataplane = DataPlane(options)
    dataplane.start()
    return dataplane
