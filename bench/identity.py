#!/usr/bin/env python3
"""Identity benchmark: OpenStack Keystone and mCloud identity, side by side.

Measures, for each server, on loopback only:
  * token issue      POST /v3/auth/tokens (password, project-scoped as admin)
  * token validation GET  /v3/auth/tokens (X-Auth-Token + X-Subject-Token)
as requests/s, p50 and p99 latency at a fixed concurrency, each bounded in
time; the memory (RSS and PSS, summed over the server's processes) after the
run; for mCloud the time from `mcloud up` to `mCloud ready` on an already
migrated database; and the physical bound for token issue set by one bcrypt
hash at the cost both servers use.

The Keystone peer is installed from PyPI into bench/.peers/keystone-venv (kept
between runs), configured with SQLite, Fernet tokens and memcached caching,
and served by gunicorn with 2 sync workers, as operators run it.

Only the standard library is needed to run this script: the load generator is
a small asyncio HTTP/1.1 client (keep-alive when the server allows it) so that
the client costs as little CPU as possible on a small machine.

    python3 bench/identity.py                       # both servers
    python3 bench/identity.py --only keystone       # one side alone
    python3 bench/identity.py --duration 5 --concurrency 8 --output /tmp/x.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / ".peers"
KEYSTONE_VENV = PEERS_DIR / "keystone-venv"
KEYSTONE_STATE = PEERS_DIR / "keystone-state"
KEYSTONE_REQUIREMENT = "keystone>=30,<31"
KEYSTONE_EXTRA_PACKAGES = ["gunicorn", "pymemcache"]
KEYSTONE_WSGI_APP = "keystone.wsgi.api:application"
# keystone's WSGI entry parses sys.argv with oslo.config, which rejects
# gunicorn's own arguments: the worker imports it through this shim.
KEYSTONE_WSGI_SHIM = f"""import sys
sys.argv = sys.argv[:1]
from {KEYSTONE_WSGI_APP.split(':')[0]} import application  # noqa: E402,F401
"""
# Keystone's [identity] password_hash_algorithm defaults to bcrypt and, with
# password_hash_rounds unset, keystone/common/password_hashers/bcrypt.py
# hashes with rounds=12.  The run confirms it from the stored hash.
KEYSTONE_DEFAULT_BCRYPT_COST = 12

ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"
DOMAIN_ID = "default"

_deadline: float | None = None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def remaining(limit: float) -> float:
    """Seconds allowed for a wait: `limit`, cut to the whole-run deadline."""
    if _deadline is None:
        return limit
    left = _deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("whole-run time limit reached (--max-seconds)")
    return min(limit, left)


def wait_tcp(port: int, timeout: float) -> None:
    end = time.monotonic() + remaining(timeout)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, timeout=600, env=None, cwd=None) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True,
        timeout=remaining(timeout), env=env, cwd=cwd,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


# ---------------------------------------------------------------- processes


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    children = _proc_children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_memory(pid: int) -> dict:
    """RSS and PSS (MiB) summed over a process and all its descendants."""
    rss = pss = 0
    pids = process_tree(pid)
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1),
            "processes": len(pids)}


def tree_cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / ticks


class Server:
    """A child process started in its own session, stopped by its own pgid."""

    def __init__(self, name: str, cmd, env=None, logfile: Path | None = None,
                 ready_line: str | None = None):
        self.name = name
        self.ready_line = ready_line
        self.ready_at: float | None = None
        self.ready = threading.Event()
        self.logfile = logfile
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [str(c) for c in cmd], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._tail: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        out = open(self.logfile, "a") if self.logfile else None
        try:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                if out:
                    out.write(line)
                    out.flush()
                self._tail = (self._tail + [line])[-40:]
                if (self.ready_line and self.ready_at is None
                        and self.ready_line in line):
                    self.ready_at = time.monotonic()
                    self.ready.set()
        finally:
            if out:
                out.close()

    def tail(self) -> str:
        return "".join(self._tail)

    def wait_ready_line(self, timeout: float) -> float:
        end = time.monotonic() + remaining(timeout)
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode})"
                                   f" before ready:\n{self.tail()}")
            if time.monotonic() > end:
                raise TimeoutError(f"{self.name} not ready in {timeout}s:\n"
                                   f"{self.tail()}")
        return self.ready_at - self.started_at

    def wait_http(self, url: str, timeout: float) -> float:
        end = time.monotonic() + remaining(timeout)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode})"
                                   f":\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status < 500:
                        return time.monotonic() - self.started_at
            except urllib.error.HTTPError as e:
                if e.code < 500:
                    return time.monotonic() - self.started_at
            except OSError:
                pass
            if time.monotonic() > end:
                raise TimeoutError(f"{self.name}: {url} not answering after "
                                   f"{timeout}s:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: SIGTERM ignored for {timeout}s, SIGKILL")
        # Whatever is left in the group (workers of a dead master) goes too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(2)


# ------------------------------------------------------------- load client


class HttpConn:
    """One HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def _connect(self):
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connects += 1

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, dict, bytes]:
        reused = self.writer is not None
        if not reused:
            await self._connect()
        try:
            return await self._roundtrip(raw)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if not reused:
                raise
            # a kept-alive connection the server had closed: once more, fresh
            await self._connect()
            return await self._roundtrip(raw)

    async def _roundtrip(self, raw: bytes) -> tuple[int, dict, bytes]:
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


def build_request(method: str, host: str, port: int, path: str,
                  headers: dict | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}",
             "Accept: application/json", "User-Agent: mcloud-bench"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1,
                   int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


async def _load(host, port, make_request, expect_status, concurrency,
                warmup, duration, server_pid):
    """Closed loop: `concurrency` workers, each one request at a time."""
    latencies: list[float] = []
    errors: list[str] = []
    conns = [HttpConn(host, port) for _ in range(concurrency)]
    phase = {"measure": False, "stop": False}

    async def worker(i: int):
        conn = conns[i]
        n = 0
        while not phase["stop"]:
            raw = make_request(i, n)
            n += 1
            t0 = time.perf_counter()
            try:
                status, _, body = await conn.request(raw)
                ok = status == expect_status
                err = None if ok else f"HTTP {status}: {body[:200]!r}"
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                conn.close()
                ok, err = False, f"{type(e).__name__}: {e}"
            dt = time.perf_counter() - t0
            if phase["measure"] and not phase["stop"]:
                if ok:
                    latencies.append(dt)
                else:
                    errors.append(err)
            if not ok:
                await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    scpu0 = tree_cpu_seconds(server_pid)
    phase["measure"] = True
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.sleep(duration)
    phase["stop"] = True
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    scpu = tree_cpu_seconds(server_pid) - scpu0
    # In-flight requests finish (bounded); they are not counted.
    done, pending = await asyncio.wait(tasks, timeout=60)
    for t in pending:
        t.cancel()
    for c in conns:
        c.close()
    return (latencies, errors, elapsed, cpu, scpu,
            sum(c.connects for c in conns))


def client_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_loop(coro):
    """Run the load generator on uvloop when this Python has it (the repo's .venv does), else
    on asyncio's own loop. The client is the same for every server measured in a run."""
    if client_loop() == "asyncio":
        return asyncio.run(coro)
    import uvloop
    return uvloop.run(coro)


def measure(name, host, port, make_request, expect_status, concurrency,
            warmup, duration, server_pid) -> dict:
    remaining(warmup + duration + 60)
    log(f"  {name}: {warmup:g}s warm-up + {duration:g}s at concurrency "
        f"{concurrency}")
    lat, errors, elapsed, client_cpu, scpu, connects = run_loop(
        _load(host, port, make_request, expect_status, concurrency, warmup,
              duration, server_pid))
    lat.sort()
    n = len(lat)
    res = {
        "requests": n,
        "errors": len(errors),
        "seconds": round(elapsed, 2),
        "rps": round(n / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 50) * 1000, 2) if n else None,
        "p99_ms": round(percentile(lat, 99) * 1000, 2) if n else None,
        "mean_ms": round(statistics.fmean(lat) * 1000, 2) if n else None,
        "max_ms": round(lat[-1] * 1000, 2) if n else None,
        "tcp_connects": connects,
        # CPU used during the measured window, in % of one core: the load
        # generator's own process, and the server's processes summed.
        "client_cpu_percent": round(100 * client_cpu / elapsed, 1),
        "server_cpu_percent": round(100 * scpu / elapsed, 1),
    }
    if errors:
        res["first_error"] = errors[0][:300]
    log(f"    {res['rps']} req/s, p50 {res['p50_ms']} ms, p99 "
        f"{res['p99_ms']} ms, {len(errors)} errors")
    return res


# ------------------------------------------------------------ identity API


def issue_body(password: str) -> bytes:
    return json.dumps({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": ADMIN_USER, "domain": {"id": DOMAIN_ID},
            "password": password}}},
        "scope": {"project": {"name": ADMIN_PROJECT,
                              "domain": {"id": DOMAIN_ID}}},
    }}).encode()


def issue_token(base_url: str, password: str) -> str:
    req = urllib.request.Request(
        f"{base_url}/auth/tokens", data=issue_body(password), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 201:
            raise RuntimeError(f"token issue returned {r.status}")
        body = json.loads(r.read())
        token = r.headers["X-Subject-Token"]
    if not body.get("token", {}).get("project"):
        raise RuntimeError("issued token is not project-scoped")
    return token


def bench_identity(label: str, port: int, prefix: str, password: str,
                   server_pid: int, args) -> dict:
    host = "127.0.0.1"
    base_url = f"http://{host}:{port}{prefix}"
    # A pool of subject tokens, so validation is not of one token only.
    admin_token = issue_token(base_url, password)
    subjects = [issue_token(base_url, password) for _ in range(8)]
    validate_reqs = [
        build_request("GET", host, port, f"{prefix}/auth/tokens",
                      {"X-Auth-Token": admin_token, "X-Subject-Token": s})
        for s in subjects]
    issue_req = build_request("POST", host, port, f"{prefix}/auth/tokens",
                              body=issue_body(password))
    out = {}
    out["validate"] = measure(
        f"{label} validate", host, port,
        lambda i, n: validate_reqs[(i + n) % len(validate_reqs)], 200,
        args.concurrency, args.warmup, args.duration, server_pid)
    out["issue"] = measure(
        f"{label} issue", host, port, lambda i, n: issue_req, 201,
        args.concurrency, args.warmup, args.duration, server_pid)
    return out


# ---------------------------------------------------------------- keystone


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_system_packages() -> None:
    if shutil.which("memcached") or os.path.exists("/usr/bin/memcached"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("memcached is missing: install it (apt-get install "
                           "memcached)")
    log("installing memcached with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-q", "memcached"], check=True,
                   env=env, stdout=subprocess.DEVNULL, timeout=600)
    # Debian starts the packaged service; the benchmark runs its own.


def ensure_keystone_venv(python: str) -> None:
    marker = KEYSTONE_VENV / ".bench-installed"
    if marker.exists():
        return
    log(f"installing {KEYSTONE_REQUIREMENT} into {KEYSTONE_VENV} "
        "(once; a few minutes)")
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    if KEYSTONE_VENV.exists():
        shutil.rmtree(KEYSTONE_VENV)
    subprocess.run([python, "-m", "venv", str(KEYSTONE_VENV)], check=True)
    pip = [str(venv_python(KEYSTONE_VENV)), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True, timeout=600)
    subprocess.run(pip + [KEYSTONE_REQUIREMENT] + KEYSTONE_EXTRA_PACKAGES,
                   check=True, timeout=1800)
    marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))


def keystone_conf(memcached_port: int, logfile: Path) -> str:
    st = KEYSTONE_STATE
    return f"""[DEFAULT]
debug = false
log_file = {logfile}

[database]
connection = sqlite:///{st / 'keystone.db'}

[token]
provider = fernet

[fernet_tokens]
key_repository = {st / 'fernet-keys'}

[credential]
key_repository = {st / 'credential-keys'}

[cache]
enabled = true
backend = dogpile.cache.pymemcache
memcache_servers = 127.0.0.1:{memcached_port}
"""


def run_keystone(args, results: dict) -> None:
    ensure_system_packages()
    manage = KEYSTONE_VENV / "bin" / "keystone-manage"
    version = run([venv_python(KEYSTONE_VENV), "-c",
                   "import importlib.metadata as m; print(m.version('keystone'))"
                   ]).strip()
    KEYSTONE_STATE.mkdir(parents=True, exist_ok=True)
    rundir = Path(tempfile.mkdtemp(prefix="keystone-bench-"))
    port, mc_port = args.keystone_port or free_port(), free_port()
    conf = rundir / "keystone.conf"
    conf.write_text(keystone_conf(mc_port, rundir / "keystone.log"))
    cfg = ["--config-file", conf]
    user = run(["id", "-un"]).strip()
    group = run(["id", "-gn"]).strip()
    url = f"http://127.0.0.1:{port}/v3"
    memcached = gunicorn = None
    try:
        # keystone-manage talks to the cache too, so memcached comes first.
        memcached = Server("memcached", [
            shutil.which("memcached") or "/usr/bin/memcached",
            "-l", "127.0.0.1", "-p", mc_port, "-U", "0", "-m", "64",
            *(["-u", "root"] if os.geteuid() == 0 else [])],
            logfile=rundir / "memcached.log")
        wait_tcp(mc_port, 20)
        if not (KEYSTONE_STATE / ".bench-ready").exists():
            log(f"keystone {version}: fernet_setup, credential_setup, db_sync")
            run([manage, *cfg, "fernet_setup", "--keystone-user", user,
                 "--keystone-group", group])
            run([manage, *cfg, "credential_setup", "--keystone-user", user,
                 "--keystone-group", group])
            run([manage, *cfg, "db_sync"], timeout=900)
            (KEYSTONE_STATE / ".bench-ready").write_text("ok\n")
        log("keystone: bootstrap (admin user/project/role, RegionOne "
            "endpoints)")
        run([manage, *cfg, "bootstrap",
             "--bootstrap-password", args.admin_password,
             "--bootstrap-username", ADMIN_USER,
             "--bootstrap-project-name", ADMIN_PROJECT,
             "--bootstrap-role-name", "admin",
             "--bootstrap-service-name", "keystone",
             "--bootstrap-region-id", "RegionOne",
             "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
             "--bootstrap-public-url", url])
        cost = stored_bcrypt_cost(KEYSTONE_STATE / "keystone.db")
        env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=str(conf))
        (rundir / "bench_keystone_wsgi.py").write_text(KEYSTONE_WSGI_SHIM)
        gunicorn = Server("keystone", [
            KEYSTONE_VENV / "bin" / "gunicorn",
            "--workers", "2", "--worker-class", "sync",
            "--bind", f"127.0.0.1:{port}", "--timeout", "120",
            "--pythonpath", rundir, "bench_keystone_wsgi:application"],
            env=env, logfile=rundir / "gunicorn.log")
        log(f"keystone: gunicorn (2 sync workers) on 127.0.0.1:{port}, "
            f"memcached on 127.0.0.1:{mc_port}")
        startup = gunicorn.wait_http(url, timeout=180)
        ops = bench_identity("keystone", port, "/v3", args.admin_password,
                             gunicorn.proc.pid, args)
        mem = tree_memory(gunicorn.proc.pid)
        mc_mem = tree_memory(memcached.proc.pid)
        mc_stats = memcached_stats(mc_port)
        results["keystone"] = {
            "version": version,
            "serving": "gunicorn, 2 sync workers; SQLite; Fernet; "
                       "memcached cache (dogpile.cache.pymemcache)",
            "url": url,
            "bcrypt_cost_stored": cost,
            # gunicorn start to the first answer on /v3 (a worker loaded
            # the app); the database was migrated before.
            "startup_seconds": round(startup, 3),
            **ops,
            "memory": mem,
            "memcached_memory": mc_mem,
            # proof that Keystone's cache was in use during the run
            "memcached_stats": {k: mc_stats.get(k) for k in (
                "get_hits", "get_misses", "cmd_set", "curr_items")},
            "memory_with_memcached_rss_mb":
                round(mem["rss_mb"] + mc_mem["rss_mb"], 1),
        }
    except Exception as e:
        klog = rundir / "keystone.log"
        tail = klog.read_text()[-3000:] if klog.exists() else ""
        raise RuntimeError(f"{e}\n--- keystone.log tail ---\n{tail}") from e
    finally:
        for s in (gunicorn, memcached):
            if s is not None:
                s.stop()
        if args.keep_logs:
            log(f"keystone logs kept in {rundir}")
        else:
            shutil.rmtree(rundir, ignore_errors=True)


def memcached_stats(port: int) -> dict:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return {}
    out = {}
    for line in data.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            out[parts[1]] = int(parts[2])
    return out


def stored_bcrypt_cost(db: Path) -> int | None:
    """The cost of the first bcrypt hash found in a SQLite file, if any."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')]
            for c in cols:
                try:
                    row = con.execute(
                        f'SELECT "{c}" FROM "{t}" WHERE typeof("{c}")=\'text\''
                        f' AND "{c}" GLOB \'$2[abxy]$[0-9][0-9]$*\' LIMIT 1'
                    ).fetchone()
                except sqlite3.Error:
                    continue
                if row:
                    return int(row[0].split("$")[2])
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return None


# ------------------------------------------------------------------ mcloud


def mcloud_key(workers: int) -> str:
    return "mcloud" if workers == 1 else f"mcloud_{workers}w"


def run_mcloud(args, results: dict, workers: int = 1) -> None:
    mcloud = Path(args.mcloud_bin)
    if not mcloud.exists():
        raise RuntimeError(f"{mcloud} not found (build the repo's .venv, or "
                           "pass --mcloud-bin, or --only keystone)")
    datadir = Path(tempfile.mkdtemp(prefix="mcloud-bench-"))
    port = args.mcloud_port or free_port()
    cmd = [mcloud, "up", "--host", "127.0.0.1", "--port", port,
           "--data-dir", datadir, "--admin-password", args.admin_password]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    server = None
    try:
        log(f"mcloud: first start (migrates {datadir})")
        server = Server("mcloud", cmd, logfile=datadir / "bench-first.log",
                        ready_line="mCloud ready")
        first = server.wait_ready_line(300)
        server.stop()
        log(f"mcloud: first start {first:.2f}s; stopped; starting again")
        server = Server("mcloud", cmd, logfile=datadir / "bench-second.log",
                        ready_line="mCloud ready")
        startup = server.wait_ready_line(300)
        log(f"mcloud: ready in {startup:.2f}s on a migrated database")
        prefix = "/identity/v3"
        server.wait_http(f"http://127.0.0.1:{port}{prefix}", timeout=60)
        ops = bench_identity("mcloud", port, prefix, args.admin_password,
                             server.proc.pid, args)
        mem = tree_memory(server.proc.pid)
        cost = None
        for db in sorted(datadir.rglob("*")):
            if db.is_file() and db.suffix in (".db", ".sqlite", ".sqlite3"):
                cost = stored_bcrypt_cost(db)
                if cost:
                    break
        results[mcloud_key(workers)] = {
            "workers": workers,
            "command": " ".join(map(str, cmd)).replace(
                args.admin_password, "***"),
            "url": f"http://127.0.0.1:{port}{prefix}",
            "bcrypt_cost_stored": cost,
            "startup_first_seconds": round(first, 3),
            "startup_seconds": round(startup, 3),
            **ops,
            "memory": mem,
        }
    finally:
        if server is not None:
            server.stop()
        if args.keep_logs:
            log(f"mcloud data and logs kept in {datadir}")
        else:
            shutil.rmtree(datadir, ignore_errors=True)


# ------------------------------------------------------------------ bcrypt


BCRYPT_PROBE = r"""
import bcrypt, json, statistics, sys, time
cost, n = int(sys.argv[1]), int(sys.argv[2])
h = bcrypt.hashpw(b"bench-password", bcrypt.gensalt(cost))
times = []
for _ in range(n):
    t = time.perf_counter()
    assert bcrypt.checkpw(b"bench-password", h)
    times.append(time.perf_counter() - t)
print(json.dumps({"median": statistics.median(times), "min": min(times),
                  "bcrypt_version": bcrypt.__version__}))
"""


def measure_bcrypt(cost: int, pythons: list[tuple[str, Path]]) -> dict:
    cores = os.cpu_count() or 1
    out: dict = {"cost": cost, "cores": cores, "by_python": {}}
    for label, py in pythons:
        if not Path(py).exists():
            continue
        try:
            r = json.loads(run([py, "-c", BCRYPT_PROBE, cost, 7], timeout=120))
        except (RuntimeError, subprocess.TimeoutExpired, ValueError):
            continue
        out["by_python"][label] = {
            "bcrypt_version": r["bcrypt_version"],
            "hash_ms": round(r["median"] * 1000, 1),
            "hash_min_ms": round(r["min"] * 1000, 1)}
    if out["by_python"]:
        first = next(iter(out["by_python"].values()))
        out["hash_ms"] = first["hash_ms"]
        out["bound_rps"] = round(cores / (first["hash_ms"] / 1000), 1)
        log(f"bcrypt cost {cost}: {first['hash_ms']} ms per hash -> bound "
            f"{out['bound_rps']} token issues/s on {cores} cores")
    return out


# ------------------------------------------------------------------ report


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def ratios(k: dict, m: dict) -> dict:
    out = {}
    for op in ("issue", "validate"):
        for key in ("rps", "p50_ms", "p99_ms"):
            out[f"{op}_{key}"] = ratio(m[op][key], k[op][key])
    out["rss_mb"] = ratio(m["memory"]["rss_mb"], k["memory"]["rss_mb"])
    out["rss_mb_vs_keystone_with_memcached"] = ratio(
        m["memory"]["rss_mb"], k["memory_with_memcached_rss_mb"])
    out["pss_mb"] = ratio(m["memory"]["pss_mb"], k["memory"]["pss_mb"])
    return out


def fmt(v, suffix=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{suffix}" if abs(v) >= 10 else f"{v:.2f}{suffix}"
    return f"{v}{suffix}"


def print_table(res: dict) -> None:
    k = res.get("keystone")
    mclouds = [(key, res[key]) for key in sorted(res) if key.startswith("mcloud") and isinstance(res[key], dict)]
    m = mclouds[0][1] if mclouds else None
    label = {key: "mCloud" if d.get("workers", 1) == 1 else f"mCloud {d['workers']}w" for key, d in mclouds}
    cols = [("Keystone", k)] + [(label[key], d) for key, d in mclouds]
    cols = [(n, d) for n, d in cols if d]
    ratio_cols = [(label[key], res.get("ratios" if key == "mcloud" else f"ratios_{key}", {}))
                  for key, _ in mclouds] if k else []
    header = f"{'':28}" + "".join(f"{n:>14}" for n, _ in cols)
    header += "".join(f"{n + '/KS':>16}" for n, _ in ratio_cols)
    print()
    print(f"Identity benchmark, {res['date']}, concurrency "
          f"{res['config']['concurrency']}, {res['config']['duration_s']:g} s "
          "per measurement, loopback")
    print(header)
    print("-" * len(header))

    def row(label, get, rkey=None):
        line = f"{label:28}"
        for _, d in cols:
            try:
                line += f"{fmt(get(d)):>14}"
            except (KeyError, TypeError):
                line += f"{'-':>14}"
        for _, r in ratio_cols:
            line += f"{fmt(r.get(rkey)) if rkey else '':>16}"
        print(line)

    for op, name in (("issue", "token issue"), ("validate", "token validate")):
        row(f"{name} req/s", lambda d: d[op]["rps"], f"{op}_rps")
        row(f"{name} p50 ms", lambda d: d[op]["p50_ms"], f"{op}_p50_ms")
        row(f"{name} p99 ms", lambda d: d[op]["p99_ms"], f"{op}_p99_ms")
        row(f"{name} errors", lambda d: d[op]["errors"])
        row(f"{name} server CPU %", lambda d: d[op]["server_cpu_percent"])
        row(f"{name} client CPU %", lambda d: d[op]["client_cpu_percent"])
    row("RSS MB (server processes)", lambda d: d["memory"]["rss_mb"], "rss_mb")
    row("PSS MB (server processes)", lambda d: d["memory"]["pss_mb"], "pss_mb")
    if k:
        row("  + memcached RSS MB", lambda d: d["memcached_memory"]["rss_mb"])
    row("startup to ready s", lambda d: d["startup_seconds"])
    b = res.get("bcrypt", {})
    if b.get("hash_ms"):
        print(f"\nbcrypt cost {b['cost']}: {b['hash_ms']} ms per hash -> "
              f"physical bound for token issue = {b['cores']} cores / "
              f"{b['hash_ms'] / 1000:.4f} s = {b['bound_rps']} req/s")
        for who in ["keystone"] + [key for key, _ in mclouds]:
            if res.get(who):
                rps = res[who]["issue"]["rps"]
                print(f"  {who} token issue reaches {100 * rps / b['bound_rps']:.0f}"
                      f"% of the bound")
    for note in res.get("notes", []):
        print(f"note: {note}")
    print()


def main(argv=None) -> int:
    global _deadline
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["keystone", "mcloud"])
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--duration", type=float, default=10.0,
                   help="seconds measured per operation (default 10)")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds of load before each measurement (default 2)")
    p.add_argument("--max-seconds", type=float, default=900.0,
                   help="bound for the whole run, the one-time Keystone "
                        "install excepted (default 900)")
    p.add_argument("--output", help="JSON results path (default "
                   "bench/results/identity-<date>.json)")
    p.add_argument("--admin-password", default="bench-admin-Secret1")
    p.add_argument("--mcloud-bin", default=str(REPO_DIR / ".venv/bin/mcloud"))
    p.add_argument("--mcloud-port", type=int, default=0)
    p.add_argument("--mcloud-workers", default="1,2",
                   type=lambda v: [int(x) for x in v.split(",") if x.strip()],
                   help="run the mCloud side once per worker count (default 1,2; 1 is `mcloud up`'s default)")
    p.add_argument("--keystone-port", type=int, default=0)
    p.add_argument("--keystone-python", default=getattr(
        sys, "_base_executable", sys.executable),
        help="python that creates the Keystone virtualenv")
    p.add_argument("--bcrypt-cost", type=int,
                   default=KEYSTONE_DEFAULT_BCRYPT_COST)
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args(argv)

    do_k = args.only in (None, "keystone")
    do_m = args.only in (None, "mcloud")
    if do_k:
        ensure_keystone_venv(args.keystone_python)
    _deadline = time.monotonic() + args.max_seconds

    def on_alarm(signum, frame):
        raise TimeoutError("whole-run time limit reached (--max-seconds)")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.max_seconds) + 60)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    results: dict = {
        "benchmark": "identity",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "cpu": cpu,
                    "kernel": platform.release(),
                    "runner_python": platform.python_version()},
        "config": {"concurrency": args.concurrency,
                   "duration_s": args.duration, "warmup_s": args.warmup,
                   "validate_token_pool": 8,
                   "load_generator_loop": client_loop()},
        "notes": [
            f"server and load generator share the machine's "
            f"{os.cpu_count()} cores (loopback); the client CPU % column "
            "shows what the load generator itself took",
            "Keystone's sync gunicorn workers close the connection after "
            "each response, so its client reconnects per request (as any "
            "client of such a deployment does)",
        ],
    }
    failures = []
    try:
        if do_k:
            try:
                run_keystone(args, results)
            except Exception as e:  # noqa: BLE001 - report, go on
                log(f"keystone side failed: {e}")
                failures.append(f"keystone: {e}")
        if do_m:
            for workers in args.mcloud_workers:
                try:
                    run_mcloud(args, results, workers)
                except Exception as e:  # noqa: BLE001
                    log(f"mcloud side ({workers} workers) failed: {e}")
                    failures.append(f"mcloud {workers}w: {e}")
        cost = args.bcrypt_cost
        for who in ["keystone"] + [mcloud_key(w) for w in args.mcloud_workers]:
            stored = results.get(who, {}).get("bcrypt_cost_stored")
            if stored and stored != cost:
                results["notes"].append(
                    f"{who} stores bcrypt cost {stored}, the bound uses "
                    f"{cost}")
        results["bcrypt"] = measure_bcrypt(cost, [
            ("keystone-venv", venv_python(KEYSTONE_VENV)),
            ("repo-venv", REPO_DIR / ".venv/bin/python"),
            ("runner", Path(sys.executable))])
    finally:
        signal.alarm(0)
    for workers in args.mcloud_workers:
        key = mcloud_key(workers)
        if results.get("keystone") and results.get(key):
            results["ratios" if key == "mcloud" else f"ratios_{key}"] = ratios(results["keystone"], results[key])
    if failures:
        results["failures"] = [f[:2000] for f in failures]

    out = Path(args.output) if args.output else (
        BENCH_DIR / "results" / f"identity-{_dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"results written to {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
