"""Network namespaces as test hosts: a guest (or "the outside") is a namespace with one interface.

``Namespaces`` makes namespaces with unique names (``mct-<pid>-<n>``), runs commands in them,
pings between them, and deletes every one it made at ``cleanup()`` (also on failure: use it as
a context manager or a fixture). Nothing here touches the machine's default namespace.

    with Namespaces() as ns:
        guest = ns.add("guest")
        ns.run(guest, "ip", "addr")
        assert ns.ping(guest, "10.0.0.5")
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_counter = itertools.count()


class Namespaces:
    def __init__(self, prefix: str = "mct"):
        self.prefix = f"{prefix}-{os.getpid()}"
        self.made: list[str] = []

    def __enter__(self) -> Namespaces:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def add(self, label: str = "ns") -> str:
        """A new namespace with loopback up; returns its name (at most 15 characters of label)."""
        name = f"{self.prefix}-{next(_counter)}-{label}"[:40]
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.made.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def delete(self, name: str) -> None:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        if name in self.made:
            self.made.remove(name)

    def cleanup(self) -> None:
        for name in list(reversed(self.made)):
            # a udhcpc or other process started in it keeps nothing alive: kill what runs there
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            self.delete(name)

    # -- inside a namespace -----------------------------------------------------------------

    def run(self, name: str, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"in {name}: {' '.join(argv)} failed ({result.returncode}): "
                               f"{result.stdout.strip()} {result.stderr.strip()}")
        return result

    def ping(self, name: str, address: str, count: int = 1, wait: float = 1.0) -> bool:
        """Whether ``address`` answers a ping from namespace ``name``."""
        result = self.run(name, "ping", "-n", "-c", str(count), "-W", str(wait), address, check=False,
                          timeout=count * wait + 10)
        return result.returncode == 0

    def wait_ping(self, name: str, address: str, timeout: float = 20.0) -> float:
        """Ping until ``address`` answers; returns the seconds it took (raises on timeout)."""
        started = time.monotonic()
        while not self.ping(name, address, wait=0.5):
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{address} did not answer a ping from {name} in {timeout}s")
        return time.monotonic() - started

    def no_ping(self, name: str, address: str, tries: int = 3) -> bool:
        """True when ``address`` stays silent to ``tries`` pings (a block, not a slow start)."""
        return not any(self.ping(name, address, wait=0.5) for _ in range(tries))

    def udp_source(self, server: str, address: str, client: str, port: int = 9999) -> str:
        """Send one UDP datagram from namespace ``client`` to ``address``:``port``, where namespace
        ``server`` listens; returns the source address the server saw (NAT shows here)."""
        listener = subprocess.Popen(
            ["ip", "netns", "exec", server, sys.executable, "-c",
             "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"s.bind(({address!r},{port}))\nprint('ready',flush=True)\ns.settimeout(10)\n"
             "print(s.recvfrom(100)[1][0],flush=True)"], stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
            for _ in range(5):
                self.run(client, sys.executable, "-c", "import socket\n"
                         f"socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'x',({address!r},{port}))")
                try:
                    out, _ = listener.communicate(timeout=1)
                    return out.strip()
                except subprocess.TimeoutExpired:
                    continue
            raise AssertionError(f"no datagram from {client} reached {address}:{port} in {server}")
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()

    def addresses(self, name: str, ifname: str, family: int = 4) -> list[str]:
        out = self.run(name, "ip", f"-{family}", "-o", "addr", "show", "dev", ifname).stdout
        return [line.split()[3] for line in out.splitlines() if " scope global" in line]

    def dhcp(self, name: str, ifname: str, timeout: float = 15.0) -> dict[str, str]:
        """Get an address by DHCPv4 (busybox udhcpc, once, no daemon left) and configure it with
        its routes and MTU; returns what the lease said (ip, mask, router, dns, mtu, lease,
        serverid, staticroutes, domain)."""
        udhcpc = shutil.which("udhcpc") or "udhcpc"
        script = Path(__file__).with_name("udhcpc.script")
        with tempfile.TemporaryDirectory(prefix="mcloud-udhcpc-") as tmp:
            lease_file = Path(tmp) / "lease"
            result = subprocess.run(
                ["ip", "netns", "exec", name, "env", f"UDHCPC_LEASE_FILE={lease_file}", udhcpc, "-i", ifname,
                 "-n", "-q", "-f", "-t", str(int(timeout)), "-T", "1", "-O", "mtu", "-O", "staticroutes",
                 "-s", str(script)], capture_output=True, text=True, timeout=timeout + 10)
            if result.returncode != 0 or not lease_file.exists():
                raise RuntimeError(f"udhcpc in {name} got no lease on {ifname}: {result.stderr.strip()}")
            return dict(line.split("=", 1) for line in lease_file.read_text().splitlines() if "=" in line)
