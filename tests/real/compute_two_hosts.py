"""Two compute hosts on one machine, as the issue's "Must show" has them: a real `mcloud up` with
the ovn network driver (its data plane in a namespace of its own, a tunnel endpoint on its
br-phy) whose in-process host is ``CONTROLLER``, and a real `mcloud agent --beside` process,
host ``AGENT``, with its own OVN chassis in a namespace of its own joined by a veth.

    with TwoHosts(tmp, driver="fake") as hosts:
        hosts.cli("server", "create", ...)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness import LiveCloud, free_port, missing, wait_for
from tests.ovn import ovn_missing

CONTROLLER = "ctl-host"
AGENT = "agent-host"
ADMIN_PASSWORD = "admin-secret"
REPORT_INTERVAL = 1
SERVICE_DOWN_TIME = 4


class TwoHosts:
    def __init__(self, root: Path, driver: str = "fake", qemu_options: str = "", env: dict[str, str] | None = None):
        if (what := ovn_missing()) is not None:
            missing(what)
        self.root = root
        self.driver = driver
        self.namespace = f"mco-2h-{os.getpid()}"
        common = f"[compute.qemu]\n{qemu_options}\n" if qemu_options else ""
        (root / "ctl").mkdir(parents=True, exist_ok=True)
        (root / "ctl" / "mcloud.toml").write_text(
            f'[network]\ndriver = "ovn"\n\n[network.ovn]\nnamespace = "{self.namespace}"\nchassis = "{CONTROLLER}"\n'
            f'tunnel_cidr = "100.64.255.1/24"\n\n{common}')
        self.agent_dir = root / "agent"
        self.agent_dir.mkdir(parents=True, exist_ok=True)
        if common:
            (self.agent_dir / "mcloud.toml").write_text(common)
        self.env = {"MCLOUD_IDENTITY_PASSWORD_HASH_ROUNDS": "4", "MCLOUD_NETWORK_DRIVER": "ovn",
                    "MCLOUD_COMPUTE_DRIVER": driver, "MCLOUD_COMPUTE_REPORT_INTERVAL": str(REPORT_INTERVAL),
                    "MCLOUD_COMPUTE_SERVICE_DOWN_TIME": str(SERVICE_DOWN_TIME), **(env or {})}
        self.cloud = LiveCloud(root / "ctl", free_port(), admin_password=ADMIN_PASSWORD,
                               env={**self.env, "MCLOUD_COMPUTE_HOST": CONTROLLER})
        self.agent: subprocess.Popen[str] | None = None
        self.agent_log = self.agent_dir / "agent.log"
        self.chassis_namespace = f"mcc-2h-{os.getpid()}"
        self.cloud_exit: int | None = None

    def __enter__(self) -> TwoHosts:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.cloud.start(timeout=120)
        try:
            self.start_agent()
            self.wait(lambda: self.service(AGENT) and self.service(AGENT)["State"] == "up", 60,
                      "the agent's service to be up")
        except BaseException:
            self.stop()
            raise

    def start_agent(self) -> None:
        with open(self.agent_log, "a") as log:
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "mcloud", "agent", "--data-dir", str(self.agent_dir),
                 "--controller", self.cloud.url, "--compute-host", AGENT, "--beside", str(self.cloud.data_dir),
                 "--tunnel-cidr", "100.64.255.2/24", "--chassis-namespace", self.chassis_namespace],
                stdout=log, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, **self.env, "MCLOUD_AGENT_PASSWORD": ADMIN_PASSWORD})

    def stop_agent(self) -> int | None:
        """SIGTERM (after SIGCONT, should a test have stopped it): the agent stops its chassis."""
        proc, self.agent = self.agent, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stop(self) -> None:
        try:
            self.stop_agent()
        finally:
            #: mcloud up's exit status: 0 when it stopped cleanly (its data plane with it), not killed
            self.cloud_exit = self.cloud.stop()
            # what a failed agent may have left (its own stop() removes these)
            subprocess.run(["ip", "netns", "delete", self.chassis_namespace], capture_output=True)
            self.kill_guests()

    def kill_guests(self) -> list[int]:
        """qemu guests of both hosts still running (a failed test's: qemu outlives its host, by
        design), killed by the PIDs in their pid files."""
        killed = []
        for pidfile in self.root.glob("*/instances/*/qemu.pid"):
            try:
                pid = int(pidfile.read_text().strip())
                if pidfile.parent.name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            except (ValueError, OSError):
                continue
        return killed

    # -- reading the cloud

    def cli(self, *args: str) -> Any:
        return json.loads(self.cloud.openstack(*args, json_out=True).stdout)

    def service(self, host: str) -> dict[str, Any] | None:
        rows = self.cli("compute", "service", "list", "--service", "nova-compute")
        return next((r for r in rows if r["Host"] == host), None)

    def sb_chassis(self) -> set[str]:
        """The chassis the controller's Southbound database lists."""
        out = subprocess.run(["ovn-sbctl", f"--db=unix:{self.cloud.data_dir / 'ovn' / 'sb.sock'}", "--bare",
                              "--columns=name", "list", "Chassis"], capture_output=True, text=True, check=True)
        return {line.strip() for line in out.stdout.split() if line.strip()}

    @staticmethod
    def wait(what, timeout: float, doc: str) -> Any:
        return wait_for(what, timeout, doc=doc)
