"""Test harness: real components the tests start themselves (PostgreSQL, `mcloud up`).

With ``CI=true`` a missing component fails the run instead of skipping the tests.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """A real component is not on this machine: fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI=true and {what} is missing: the test setup should have installed it")
    pytest.skip(f"{what} is not available")


def wait_for(what, timeout: float = 30.0, interval: float = 0.5, doc: str = ""):
    """Call ``what`` until it returns something true (returned), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {doc or what.__doc__ or what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A private PostgreSQL server in a temp dir on a loopback port; yields a database URL."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        missing("PostgreSQL (Debian package postgresql)")
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="mcloud-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            missing("the postgres system user")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chown(sock, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "mcloud", "-A", "trust",
                    "--no-sync", "-E", "UTF8"], check=True, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([*run_as, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                             "-k", str(sock), "-h", "127.0.0.1", "-c", "fsync=off",
                             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            ok = subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL).returncode == 0
            if ok:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.1)
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mcloud", "mcloud"],
                       check=True)
        yield f"postgresql://mcloud@127.0.0.1:{port}/mcloud"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


class LiveCloud:
    """A real `mcloud up` process."""

    def __init__(self, data_dir: Path, port: int, database: str | None = None, admin_password: str = "admin-secret",
                 env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.database = database
        self.admin_password = admin_password
        self.extra_env = env or {}
        self.extra_args: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir / "mcloud-up.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client of this cloud (the openstack CLI, openstacksdk)."""
        env = dict(os.environ)
        env["OS_CLIENT_CONFIG_FILE"] = str(self.data_dir / "clouds.yaml")
        for key in [k for k in env if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE"]:
            del env[key]
        return env

    def start(self, timeout: float = 60) -> float:
        """Start and wait for `mCloud ready`; returns the seconds it took."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mcloud", "up", "--data-dir", str(self.data_dir), "--port", str(self.port),
               "--admin-password", self.admin_password]
        if self.database:
            cmd += ["--database", self.database]
        cmd += self.extra_args
        # the network service's fake driver unless a test asks for ovn: every `mcloud up` running
        # (as root) its own OVN/OVS daemons would slow the suite for nothing
        env = {"MCLOUD_NETWORK_DRIVER": "fake", **os.environ, **self.extra_env}
        started = time.monotonic()
        with open(self.log, "a") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if "mCloud ready" in line:
                return time.monotonic() - started
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"mcloud up exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            if time.monotonic() - started > timeout:
                raise RuntimeError("mcloud up did not become ready")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        self.kill_guests()
        return code

    def kill_guests(self) -> list[int]:
        """Kill the qemu guests this cloud's host left running (they outlive `mcloud up` by
        design; a test that failed before deleting its servers leaves them): the pids of the
        instances' pid files whose command line names that instance's directory."""
        killed = []
        for pidfile in self.data_dir.glob("instances/*/qemu.pid"):
            try:
                pid = int(pidfile.read_text().split()[0])
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if str(pidfile.parent).encode() in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed

    def openstack(self, *args: str, cloud: str = "mcloud", check: bool = True,
                  json_out: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the real `openstack` CLI against this cloud."""
        exe = Path(sys.executable).parent / "openstack"
        cmd = [str(exe), "--os-cloud", cloud, *args]
        if json_out:
            cmd += ["-f", "json"]
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result
