"""A private single-node Ceph cluster for tests and benchmarks.

``CephCluster`` starts Debian's Ceph daemons (16.2) as child processes, everything under one
temp dir: one monitor on a free loopback port, one manager (without one, capacity stats read
zero and ``ceph pg stat`` hangs) and one BlueStore OSD on a sparse file. Pools keep one copy
and authentication is off. ``stop()`` ends only the processes it started, by PID, and removes
the temp dir.

It needs neither pytest nor mCloud: a benchmark can use it with a plain ``python3``. The
pytest fixture ``ceph`` (tests/conftest.py) starts one per session.

    with CephCluster() as cluster:
        cluster.create_pool("volumes")
        subprocess.run(["rbd", "--conf", str(cluster.conf), "ls", "images"])
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DAEMONS = ("ceph-mon", "ceph-mgr", "ceph-osd", "monmaptool", "ceph")
MGR_MODULES = Path("/usr/share/ceph/mgr")
#: the manager modules Ceph 16 runs whatever the configuration says; without them health is an error
ALWAYS_ON_MGR_MODULES = {"balancer", "crash", "devicehealth", "orchestrator", "pg_autoscaler", "progress",
                         "rbd_support", "status", "telemetry", "volumes"}


class CephMissing(RuntimeError):
    """A Ceph program is not installed."""


def ceph_missing() -> str | None:
    """What is missing to run a cluster (a sentence), or None."""
    absent = [d for d in DAEMONS if shutil.which(d) is None]
    return f"Ceph programs {', '.join(absent)} (Debian: ceph-mon ceph-osd ceph-mgr ceph-common)" if absent else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CephCluster:
    """One mon, one mgr, one OSD; ``conf`` is the cluster's ceph.conf for clients."""

    def __init__(self, pools: tuple[str, ...] = ("images",), osd_size_gib: int = 20):
        self._first_pools = pools
        self.pools: list[str] = []  # the pools made so far
        self.osd_size = osd_size_gib << 30
        self.fsid = str(uuid.uuid4())
        self.root = Path(tempfile.mkdtemp(prefix="mcloud-ceph-"))
        self.conf = self.root / "ceph.conf"
        self.port = _free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.start_seconds = 0.0
        self._pgs: dict[str, int] = {}  # each pool's placement groups

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> CephCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> float:
        """Bring the cluster up until its pools are usable; returns the seconds it took."""
        if (what := ceph_missing()) is not None:
            raise CephMissing(what)
        started = time.monotonic()
        try:
            self._write_conf()
            self._start_mon()
            # the one module that would make a pool of its own: it watches disks' SMART data
            self.ceph("config", "set", "mgr", "mgr/devicehealth/enable_monitoring", "false", "--force")
            self._spawn("mgr.x", ["ceph-mgr", "-i", "x"])
            osd_id, mkfs = self._mkfs_osd()
            for name in self._first_pools:  # while the OSD formats its store
                self.create_pool(name, wait=False)
            if mkfs.wait(timeout=120) != 0:
                raise RuntimeError(f"ceph-osd --mkfs failed: {self._log_tail(f'osd.{osd_id}')}")
            del self.procs[f"mkfs.osd.{osd_id}"]
            self._spawn(f"osd.{osd_id}", ["ceph-osd", "-i", osd_id])
            self.wait_for(self._pgs_active, timeout, "placement groups to be active")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self.start_seconds

    def stop(self) -> None:
        """Stop the daemons this cluster started (by PID) and remove its directory."""
        # the OSD first: stopping, it tells the monitor, and waits seconds for one that is gone
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- what tests use -----------------------------------------------------------------------

    def ceph(self, *args: str, timeout: float = 60) -> str:
        """Run the ``ceph`` CLI against this cluster; returns its stdout (raises on failure)."""
        result = subprocess.run(["ceph", "--conf", str(self.conf), *args], capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"ceph {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    @contextlib.contextmanager
    def ioctx(self, pool: str) -> Iterator[Any]:
        """A librados client of ``pool`` of our own, as Nova or Cinder would open it (the
        Debian bindings must be installed: see mcloud.core.ceph)."""
        from mcloud.core.ceph import bindings

        rados, _ = bindings()
        cluster = rados.Rados(conffile=str(self.conf))
        cluster.connect()
        try:
            ctx = cluster.open_ioctx(pool)
            try:
                yield ctx
            finally:
                ctx.close()
        finally:
            cluster.shutdown()

    def ceph_json(self, *args: str) -> object:
        return json.loads(self.ceph(*args, "--format", "json"))

    def create_pool(self, name: str, pg_num: int = 8, application: str = "rbd", wait: bool = True) -> str:
        """A pool with one copy, tagged for ``application``, its placement groups active; returns
        its name."""
        self.ceph("osd", "pool", "create", name, str(pg_num), str(pg_num), "--size", "1")
        self.ceph("osd", "pool", "application", "enable", name, application)
        self._pgs[name] = pg_num
        self.pools.append(name)
        if wait:
            self.wait_for(self._pgs_active, 60, f"pool {name}'s placement groups to be active")
        return name

    def delete_pool(self, name: str) -> None:
        """Remove a pool and its data (later waits for active placement groups no longer count it)."""
        self.ceph("osd", "pool", "rm", name, name, "--yes-i-really-really-mean-it")
        del self._pgs[name]
        self.pools.remove(name)

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"ceph {name} exited with {proc.returncode}: {self._log_tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ceph: timed out waiting for {what}")
            time.sleep(0.1)

    def health(self) -> str:
        return str(self.ceph_json("health")["status"])  # type: ignore[index]

    def rss_bytes(self) -> int:
        """Resident memory of the cluster's daemons, summed."""
        total = 0
        for proc in self.procs.values():
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except FileNotFoundError:
                pass
        return total

    # -- the pieces ---------------------------------------------------------------------------

    def _write_conf(self) -> None:
        r = self.root
        for d in ("run", "log", "mon.a", "mgr.x", "osd.0"):
            (r / d).mkdir()
        with open(r / "osd.0.block", "wb") as f:  # sparse, outside the OSD's data dir
            f.truncate(self.osd_size)
        # The manager loads only the modules Ceph always runs (the others cost ~150 MB).
        optional_modules = sorted(p.name for p in MGR_MODULES.iterdir()
                                  if p.is_dir() and p.name not in ALWAYS_ON_MGR_MODULES)
        self.conf.write_text(f"""\
[global]
fsid = {self.fsid}
mon host = v2:127.0.0.1:{self.port}
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = {r}/run
crash dir = {r}/log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0

[mon]
mon data = {r}/$name
log file = {r}/log/$name.log
admin socket = {r}/run/$name.asok
mon cluster log file = {r}/log/$cluster.$channel.log
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0
mon pg warn min per osd = 0
paxos propose interval = 0.1

[mgr]
mgr data = {r}/$name
log file = {r}/log/$name.log
admin socket = {r}/run/$name.asok
mgr stats period = 1
mgr tick period = 1
mgr disabled modules = {" ".join(optional_modules)}

[osd]
osd data = {r}/$name
log file = {r}/log/$name.log
admin socket = {r}/run/$name.asok
osd objectstore = bluestore
bluestore block path = {r}/$name.block
bluestore block create = false
bluestore fsck on mkfs = false
bluestore fsck on mount = false
bluestore cache autotune = false
bluestore cache size = 67108864
osd op num shards = 1
osd op num threads per shard = 2

[client]
log file = /dev/null
""")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with open(self.root / "log" / f"{name}.stderr", "wb") as stderr:  # the child keeps its own copy
            self.procs[name] = subprocess.Popen([*cmd, "--conf", str(self.conf), "-f"], stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=stderr)

    def _log_tail(self, name: str) -> str:
        texts = []
        for path in (self.root / "log" / f"{name}.stderr", self.root / "log" / f"{name}.log"):
            if path.exists():
                texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts)

    def _run(self, *cmd: str) -> None:
        result = subprocess.run([*cmd, "--conf", str(self.conf)], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")

    def _start_mon(self) -> None:
        monmap = self.root / "monmap"
        subprocess.run(["monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
                        f"[v2:127.0.0.1:{self.port}]", str(monmap)], check=True, capture_output=True)
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap))
        self._spawn("mon.a", ["ceph-mon", "-i", "a"])

    def _mkfs_osd(self) -> tuple[str, subprocess.Popen[bytes]]:
        """Register an OSD and start formatting its BlueStore; returns its id and the mkfs."""
        osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph("osd", "new", osd_uuid).strip()
        mkfs = subprocess.Popen(["ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid, "--conf", str(self.conf)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[f"mkfs.osd.{osd_id}"] = mkfs
        return osd_id, mkfs

    def _pgs_active(self) -> bool:
        summary = self.ceph_json("pg", "stat")["pg_summary"]  # type: ignore[index]
        return summary["num_pgs"] >= sum(self._pgs.values()) and all(
            state["name"].startswith("active") for state in summary["num_pg_by_state"])
