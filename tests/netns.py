"""Network namespaces as test hosts: a guest (or "the outside") is a namespace with one interface.

``Namespaces`` makes namespaces with unique names (``mct-<pid>-<n>``), runs commands in them,
pings between them, and deletes every one it made at ``cleanup()`` (also on failure: use it as
a context manager or a fixture). Nothing here touches the machine's default namespace.

    with Namespaces() as ns:
        guest = ns.add("guest")
        ns.run(guest, "ip", "addr")
        assert ns.ping(guest, "10.0.0.5")

``LoopbackForward(namespace, port)`` makes ``127.0.0.1:port`` inside a namespace lead to
``127.0.0.1:port`` of the test's own namespace (a client run in "the outside" reaches a `mcloud up`
at the URLs of its catalog); the namespace gets no other way out.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mcloud.network.dataplane import call_in_netns, in_netns

_counter = itertools.count()


class Namespaces:
    def __init__(self, prefix: str = "mct"):
        self.prefix = f"{prefix}-{os.getpid()}"
        self.made: list[str] = []
        #: helpers left running in a namespace (VLAN interfaces), ended at cleanup
        self._daemons: list[subprocess.Popen[str]] = []

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
        for daemon in self._daemons:
            self._end(daemon)
        self._daemons.clear()
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
        result = subprocess.run(in_netns(name, argv), capture_output=True, text=True, timeout=timeout)
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

    def pinger(self, name: str, address: str, interval: float = 0.02) -> Pinger:
        """A ping running from namespace ``name`` to ``address`` every ``interval`` seconds until
        ``stop()``, which returns the replies' times: to see what a move of ``address`` costs."""
        return Pinger(in_netns(name, ["ping", "-n", "-D", "-i", str(interval), "-W", "1", address]), interval)

    def no_ping(self, name: str, address: str, tries: int = 3) -> bool:
        """True when ``address`` stays silent to ``tries`` pings (a block, not a slow start)."""
        return not any(self.ping(name, address, wait=0.5) for _ in range(tries))

    def _serve(self, name: str, code: str) -> subprocess.Popen[str]:
        """A python ``code`` run in namespace ``name`` that prints ``ready`` once it listens, then
        its result; returned once ready (the caller ends it with ``_result``)."""
        server = subprocess.Popen(in_netns(name, [sys.executable, "-c", code]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            server.kill()
            raise RuntimeError(f"listener in {name} did not start: {server.communicate()[1].strip()}")
        return server

    @staticmethod
    def _result(server: subprocess.Popen[str], timeout: float) -> str | None:
        """The listener's result line, None if it has none in ``timeout`` seconds (it keeps running)."""
        try:
            out, _ = server.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return out.strip()

    @staticmethod
    def _end(server: subprocess.Popen[str]) -> None:
        if server.poll() is None:
            server.kill()
            server.communicate()

    def udp_source(self, server: str, address: str, client: str, port: int = 9999) -> str:
        """Send one UDP datagram from namespace ``client`` to ``address``:``port``, where namespace
        ``server`` listens; returns the source address the server saw (NAT shows here)."""
        return self.udp_receive(server, address, client, port)[0]

    def udp_tos(self, server: str, address: str, client: str, port: int = 9998, tos: int = 0) -> int:
        """The IP TOS byte (DSCP << 2 | ECN) of a UDP datagram sent with ``tos`` from namespace
        ``client`` to ``address``:``port`` as namespace ``server`` receives it (IP_RECVTOS)."""
        return self.udp_receive(server, address, client, port, tos)[1]

    def udp_receive(self, server: str, address: str, client: str, port: int, tos: int = 0) -> tuple[str, int]:
        """(source address, TOS byte) of a datagram from ``client`` as ``server`` receives it."""
        listener = self._serve(server, "import socket\n"
                               "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                               "s.setsockopt(socket.IPPROTO_IP,socket.IP_RECVTOS,1)\n"
                               f"s.bind(({address!r},{port}))\nprint('ready',flush=True)\ns.settimeout(15)\n"
                               "_,anc,_,src=s.recvmsg(100,socket.CMSG_SPACE(1))\n"
                               "tos=[d[0] for l,t,d in anc if l==socket.IPPROTO_IP and t==socket.IP_TOS]\n"
                               "print(src[0],tos[0] if tos else -1,flush=True)")
        try:
            for _ in range(5):
                self.run(client, sys.executable, "-c", "import socket\n"
                         "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                         f"s.setsockopt(socket.IPPROTO_IP,socket.IP_TOS,{tos})\n"
                         f"s.sendto(b'x',({address!r},{port}))")
                if (out := self._result(listener, 1)) is not None:
                    source, received = out.split()
                    return source, int(received)
            raise AssertionError(f"no datagram from {client} reached {address}:{port} in {server}")
        finally:
            self._end(listener)

    def tcp_exchange(self, server: str, listen: str, port: int, client: str, address: str,
                     target_port: int, timeout: float = 5) -> str:
        """Connect from namespace ``client`` to ``address``:``target_port`` while namespace
        ``server`` listens on ``listen``:``port``; the server answers what it read. Returns the
        peer address the server saw (raises if no connection carries the exchange)."""
        listener = self._serve(server, "import socket\n"
                               "s=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                               f"s.bind(({listen!r},{port}))\ns.listen(8)\nprint('ready',flush=True)\n"
                               "s.settimeout(30)\nc,peer=s.accept()\nc.settimeout(10)\n"
                               "c.sendall(b'echo:'+c.recv(100))\nc.close()\nprint(peer[0],flush=True)")
        try:
            result = self.run(client, sys.executable, "-c", "import socket,sys\n"
                              f"c=socket.create_connection(({address!r},{target_port}),timeout={timeout})\n"
                              "c.sendall(b'hello')\nprint(c.recv(100).decode())",
                              check=False, timeout=timeout + 10)
            if result.returncode != 0 or result.stdout.strip() != "echo:hello":
                raise AssertionError(f"no TCP exchange from {client} with {address}:{target_port}: "
                                     f"{result.stderr.strip().splitlines()[-1:] or result.stdout}")
            peer = self._result(listener, 5)
            assert peer, f"the listener in {server} reported no peer"
            return peer
        finally:
            self._end(listener)

    def tcp_refused(self, client: str, address: str, port: int, timeout: float = 2) -> bool:
        """True when no TCP connection from ``client`` to ``address``:``port`` is made in ``timeout``."""
        result = self.run(client, sys.executable, "-c", "import socket\n"
                          f"socket.create_connection(({address!r},{port}),timeout={timeout})",
                          check=False, timeout=timeout + 10)
        return result.returncode != 0

    def tcp_rate(self, server: str, address: str, client: str, seconds: float = 2.0, port: int = 5201,
                 skip: float = 0.5) -> float:
        """Bits per second one TCP stream carries from namespace ``client`` to ``address``:``port``
        (namespace ``server`` receiving), over ``seconds`` after the first ``skip`` seconds (slow
        start and a policer's initial burst left out)."""
        listener = self._serve(server, "import socket,time,json\n"
                               "s=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                               f"s.bind(({address!r},{port}))\ns.listen(1)\nprint('ready',flush=True)\n"
                               "s.settimeout(20)\nc,_=s.accept()\nbuf=bytearray(1<<16)\n"
                               f"start=time.monotonic();mark=None;total=0\n"
                               "while True:\n"
                               "    n=c.recv_into(buf)\n"
                               "    if not n: break\n"
                               "    total+=n;now=time.monotonic()\n"
                               f"    if mark is None and now-start>={skip}: mark=(now,total)\n"
                               "print(json.dumps({'bytes':total-mark[1],'seconds':now-mark[0]}),flush=True)")
        try:
            self.run(client, sys.executable, "-c", "import socket,time\n"
                     "c=socket.socket()\nc.setsockopt(socket.SOL_SOCKET,socket.SO_SNDBUF,1<<18)\n"
                     f"c.settimeout(10)\nc.connect(({address!r},{port}))\nb=bytes(1<<16)\n"
                     f"end=time.monotonic()+{skip + seconds}\n"
                     "while time.monotonic()<end: c.sendall(b)\nc.close()", timeout=skip + seconds + 30)
            out = self._result(listener, 30)
            assert out, f"the receiver in {server} reported nothing"
            measured = json.loads(out)
            return measured["bytes"] * 8 / measured["seconds"]
        finally:
            self._end(listener)

    def vlan(self, name: str, parent: str, vlan_id: int, ifname: str, mac: str) -> str:
        """An 802.1Q sub-interface ``ifname`` of ``parent`` for ``vlan_id`` in namespace ``name``,
        with ``mac``, up (give it an address, or ask DHCP); it lives until ``cleanup``.

        The kernel here has no ``8021q`` module (nor VLAN-filtering bridges or tc VLAN actions),
        so the sub-interface is a tap served by a small process in the namespace: what the IP
        stack sends on the tap leaves ``parent`` with the 802.1Q tag inserted, and frames that
        arrive on ``parent`` tagged ``vlan_id`` (the kernel hands the tag over as packet
        auxiliary data, or leaves it in the frame) reach the tap untagged. On the wire it is
        exactly what ``ip link add link parent type vlan id N`` would send and receive."""
        daemon = subprocess.Popen(in_netns(name, [sys.executable, "-c", _VLAN_DAEMON, parent, ifname,
                                                   str(vlan_id)]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._daemons.append(daemon)
        assert daemon.stdout is not None
        if daemon.stdout.readline().strip() != "ready":
            self._end(daemon)
            raise RuntimeError(f"VLAN interface {ifname} in {name} did not start: {daemon.communicate()[1].strip()}")
        self.run(name, "ip", "link", "set", ifname, "address", mac)
        self.run(name, "ip", "link", "set", ifname, "up")
        return ifname

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
                in_netns(name, ["env", f"UDHCPC_LEASE_FILE={lease_file}", udhcpc, "-i", ifname,
                                "-n", "-q", "-f", "-t", str(int(timeout)), "-T", "1", "-O", "mtu", "-O", "staticroutes",
                                "-s", str(script)]), capture_output=True, text=True, timeout=timeout + 10)
            if result.returncode != 0 or not lease_file.exists():
                raise RuntimeError(f"udhcpc in {name} got no lease on {ifname}: {result.stderr.strip()}")
            return dict(line.split("=", 1) for line in lease_file.read_text().splitlines() if "=" in line)


class LoopbackForward:
    """TCP from ``127.0.0.1:port`` inside network namespace ``namespace`` to ``127.0.0.1:port``
    (or ``target``) here, while it is open. The listening socket is made in the namespace
    (``call_in_netns``) and stays there; each connection is relayed by two threads of this
    namespace."""

    def __init__(self, namespace: str, port: int, target: tuple[str, int] | None = None):
        self.target = target or ("127.0.0.1", port)

        def listen() -> socket.socket:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            return sock

        self.listener = call_in_netns(namespace, listen)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name=f"forward-{port}", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open.update((client, server))
        back = threading.Thread(target=self._pump, args=(server, client), daemon=True)
        back.start()
        self._pump(client, server)
        back.join()
        with self._lock:
            self._open.difference_update((client, server))
        client.close()
        server.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._acceptor.join(timeout=5)
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def __enter__(self) -> LoopbackForward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pinger:
    """A running ``ping -D``; ``stop()`` ends it and returns the times (epoch seconds) of the
    replies; ``gap(replies)`` is the longest silence between two of them."""

    def __init__(self, argv: list[str], interval: float):
        self.interval = interval
        self.started = time.time()
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop(self) -> list[float]:
        self._proc.send_signal(2)  # SIGINT: ping prints its summary and exits
        out, _ = self._proc.communicate(timeout=10)
        return [float(line[1:line.index("]")]) for line in out.splitlines()
                if line.startswith("[") and " bytes from " in line]

    @staticmethod
    def gap(replies: list[float]) -> float:
        return max((b - a for a, b in zip(replies, replies[1:])), default=0.0)


#: the process behind ``Namespaces.vlan``: argv parent ifname vlan_id
_VLAN_DAEMON = """
import fcntl, os, select, socket, struct, sys
parent, ifname, vid = sys.argv[1], sys.argv[2], int(sys.argv[3])
tap = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tap, 0x400454CA, struct.pack("16sH", ifname.encode(), 0x0002 | 0x1000))  # TUNSETIFF tap, no PI
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
raw.bind((parent, 3))
raw.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA
tag = struct.pack("!HH", 0x8100, vid)
print("ready", flush=True)
while True:
    ready, _, _ = select.select([raw, tap], [], [])
    if tap in ready:
        frame = os.read(tap, 65536)
        try:
            raw.send(frame[:12] + tag + frame[12:])
        except OSError:
            pass  # too big for the parent: dropped, as a real VLAN device would
    if raw in ready:
        frame, ancillary, _, address = raw.recvmsg(65536, socket.CMSG_SPACE(32))
        if address[2] == socket.PACKET_OUTGOING:
            continue
        tci = None
        for level, kind, data in ancillary:
            if level == 263 and kind == 8:  # tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
                status, _, _, _, _, vlan_tci, _ = struct.unpack("IIIHHHH", data[:20])
                if status & 0x10:  # TP_STATUS_VLAN_VALID
                    tci = vlan_tci
        if tci is None and frame[12:14] == b"\\x81\\x00":
            tci = struct.unpack("!H", frame[14:16])[0]
            frame = frame[:12] + frame[16:]
        if tci is not None and tci & 0xFFF == vid:
            os.write(tap, frame)
"""
