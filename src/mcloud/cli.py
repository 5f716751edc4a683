"""The `mcloud` command: up, bootstrap, db upgrade, identity rotate-keys, status."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from mcloud.core.config import Config, ConfigError

log = logging.getLogger("mcloud")


def _write_private(path: Path, text: str) -> None:
    """Write a file that holds a secret: created 0600, replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _password(config: Config, name: str, given: str | None) -> tuple[str, bool]:
    """The password for account ``name``: given explicitly, or generated once and kept.

    Returns (password, explicit). The kept file lets later runs write the same clouds.yaml.
    """
    path = config.data_dir / f"{name}-password"
    if given:
        _write_private(path, given + "\n")
        return given, True
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(18)
    _write_private(path, password + "\n")
    return password, False


def _config(args: argparse.Namespace) -> Config:
    overrides: dict[str, dict[str, Any]] = {"server": {}, "database": {}}
    for key in ("host", "port"):
        if getattr(args, key, None) is not None:
            overrides["server"][key] = getattr(args, key)
    if getattr(args, "database", None):
        overrides["database"]["url"] = args.database
    config = Config(data_dir=args.data_dir, file=args.config, overrides=overrides)
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return config


def write_clouds_yaml(config: Config, admin_password: str, demo_password: str) -> Path:
    auth_url = config.public_url + "/identity"

    def cloud(user: str, password: str, project: str) -> dict[str, Any]:
        return {
            "auth": {"auth_url": auth_url, "username": user, "password": password, "project_name": project,
                     "user_domain_id": "default", "project_domain_id": "default"},
            "region_name": config.server.region,
            "interface": "public",
            "identity_api_version": 3,
        }

    doc = {"clouds": {"mcloud": cloud("admin", admin_password, "admin"),
                      "mcloud-demo": cloud("demo", demo_password, "demo")}}
    path = config.data_dir / "clouds.yaml"
    _write_private(path, yaml.safe_dump(doc, sort_keys=False))
    return path


def _logging(level: str) -> None:
    # The format names no thread, process or source line, so records need not collect them
    # (the logging HOWTO's "Optimization"): an access-log line is written for every request.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # noqa: SLF001 - the documented switch for skipping the caller lookup
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("httpx", "httpcore", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from mcloud import migrations

    config = _config(args)
    migrations.upgrade(config.database_url)
    print(f"database at revision {migrations.current(config.database_url)}")
    return 0


async def _bootstrap(config: Config, admin_password: str, demo_password: str, reset: bool) -> None:
    from mcloud.app import Cloud

    cloud = Cloud(config)
    try:
        await cloud.bootstrap(admin_password, demo_password, reset_passwords=reset)
    finally:
        await cloud.close()


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from mcloud import migrations

    config = _config(args)
    migrations.upgrade(config.database_url)
    admin, explicit = _password(config, "admin", args.admin_password or os.environ.get("MCLOUD_ADMIN_PASSWORD"))
    demo, _ = _password(config, "demo", None)
    asyncio.run(_bootstrap(config, admin, demo, explicit))
    print(f"bootstrapped; clouds.yaml at {write_clouds_yaml(config, admin, demo)}")
    return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    from mcloud.identity.config import IdentityConfig
    from mcloud.identity.tokens import KeyRepository

    config = _config(args)
    identity = config.section("identity", IdentityConfig)
    repo = KeyRepository(config.data_dir / "fernet-keys", identity.max_active_keys)
    if repo.setup():
        print("created a new key repository")
    primary = repo.rotate()
    print(f"rotated fernet keys: primary key is now {primary}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    config = _config(args)
    try:
        doc = httpx.get(config.public_url + "/", timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"mCloud at {config.public_url} is not answering: {exc}")
        return 1
    for service in doc.get("services", []):
        print(f"{service['type']:16} {service['url']}")
    return 0


def cmd_image_build_tiny(args: argparse.Namespace) -> int:
    from mcloud.compute import tinyimage, tinyimage_upload

    try:
        image = tinyimage.build(output=Path(args.output) if args.output else None,
                                cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                                kernel=Path(args.kernel) if args.kernel else None, force=args.force)
        print(f"{image.path} ({image.size // 1024} KiB, kernel {image.kernel_version})")
        if args.upload:
            data_dir = Config(data_dir=args.data_dir, file=args.config).data_dir
            cloud = tinyimage_upload.load_cloud(args.os_cloud, tinyimage_upload.clouds_yaml_paths(data_dir))
            boot = None if args.disk_boot else tinyimage_upload.boot_files(
                cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                kernel=Path(args.kernel) if args.kernel else None)
            record = tinyimage_upload.upload(image, cloud, name=args.name, boot=boot)
            print(f"image {record['name']} {record['id']} {record['status']}")
    except (tinyimage.TinyImageError, tinyimage_upload.UploadError) as exc:
        print(f"mcloud: {exc}", file=sys.stderr)
        return 1
    return 0


async def _bootstrap_for_up(config: Config, admin_password: str, demo_password: str, reset: bool) -> None:
    from mcloud.app import Cloud

    cloud = Cloud(config)
    try:
        await cloud.bootstrap(admin_password, demo_password, reset_passwords=reset)
    finally:
        await cloud.close()
    write_clouds_yaml(config, admin_password, demo_password)


async def _wait_answering(config: Config) -> None:
    """Return once every mounted service answers on the listener."""
    import httpx

    from mcloud.app import Cloud

    host = config.server.host if config.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    local = f"http://{host if ':' not in host else f'[{host}]'}:{config.server.port}"
    paths = [spec.path for spec in Cloud.service_specs()]
    async with httpx.AsyncClient(timeout=5) as client:
        for path in paths:
            response = await client.get(local + path)
            if response.status_code >= 500:
                raise RuntimeError(f"{path} answered {response.status_code}")


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but SIGINT/SIGTERM end serve() normally instead of being re-raised
        after the shutdown, so that mCloud's own cleanup runs and the exit status is 0."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    return Server


async def _worker(config: Config, sock: socket.socket | None, ready: Callable[[], Awaitable[None]] | None) -> None:
    """Serve the cloud in this process until SIGINT/SIGTERM."""
    import uvicorn

    from mcloud.app import Cloud

    cloud = Cloud(config)
    server = _server_class()(uvicorn.Config(
        cloud.app, host=config.server.host, port=config.server.port, http="httptools", loop="none",
        lifespan="off", log_config=None, access_log=False, server_header=False, timeout_keep_alive=75))
    serving = asyncio.create_task(server.serve(sockets=[sock] if sock else None))
    try:
        while not server.started:
            if serving.done():
                await serving  # surfaces a bind error
                raise SystemExit(1)
            await asyncio.sleep(0.01)
        await cloud.resume()  # the tasks a killed process left, at once
        if ready is not None:
            await ready()
        await serving
    finally:
        await cloud.close()


def _run(coro: Awaitable[None]) -> None:
    import uvloop

    uvloop.run(coro)  # type: ignore[arg-type]


def _reuseport_socket(config: Config) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.server.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.server.host, config.server.port))
    return sock


def cmd_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    from mcloud import migrations

    config = _config(args)
    _logging(config.server.log_level)
    workers = args.workers or config.server.workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    migrations.upgrade(config.database_url)
    admin, explicit = _password(config, "admin", args.admin_password or os.environ.get("MCLOUD_ADMIN_PASSWORD"))
    demo, _ = _password(config, "demo", None)
    from mcloud.network.dataplane import start_for_up

    dataplane = start_for_up(config)  # the OVN/OVS daemons (ovn driver), once, before any worker
    if dataplane is not None:
        atexit.register(dataplane.stop)  # workers leave by os._exit: only this process stops them

    def announce() -> None:
        print(f"mCloud ready at {config.public_url} in {time.monotonic() - started:.2f}s "
              f"(clouds.yaml: {config.data_dir / 'clouds.yaml'})", flush=True)

    if workers == 1:
        async def single() -> None:
            await _bootstrap_for_up(config, admin, demo, explicit)

            async def ready() -> None:
                await _wait_answering(config)
                announce()

            await _worker(config, None, ready)

        try:
            _run(single())
        except KeyboardInterrupt:
            pass
        return 0

    # Several workers: bootstrap here, then fork workers. Each listens on its own SO_REUSEPORT
    # socket, so the kernel spreads connections over them; with one shared socket, the worker
    # that wakes first accepts every waiting keep-alive connection and the others idle.
    asyncio.run(_bootstrap_for_up(config, admin, demo, explicit))
    probe = _reuseport_socket(config)  # the port is free (or an error now, not in every worker)
    read_end, write_end = os.pipe()
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            probe.close()

            async def ready() -> None:
                os.write(write_end, b"r")

            code = 0
            try:
                sock = _reuseport_socket(config)
                sock.listen(2048)
                _run(_worker(config, sock, ready))
            except KeyboardInterrupt:
                pass
            except BaseException:  # noqa: BLE001 - a worker reports and exits
                log.exception("worker failed")
                code = 1
            os._exit(code)
        children.append(pid)
    os.close(write_end)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    got = b""
    while len(got) < workers:
        chunk = os.read(read_end, workers)
        if not chunk:
            forward(signal.SIGTERM, None)
            break
        got += chunk
    probe.close()
    if len(got) == workers:
        asyncio.run(_wait_answering(config))
        announce()
    code = 0
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        code = code or os.waitstatus_to_exitcode(status)
    return 0 if code == 0 else 1


def cmd_agent(args: argparse.Namespace) -> int:
    """Run a compute host (the fake or qemu driver) against a controller until SIGINT/SIGTERM."""
    from mcloud.compute.agent import run_agent
    from mcloud.compute.config import ComputeConfig
    from mcloud.compute.hosts import default_host_name

    config = _config(args)
    _logging(config.server.log_level)
    password = args.password or os.environ.get("MCLOUD_AGENT_PASSWORD") or ""
    if args.password_file:
        password = Path(args.password_file).read_text().strip()
    if not password:
        raise ConfigError("mcloud agent needs --password, --password-file or MCLOUD_AGENT_PASSWORD")
    host = args.compute_host or default_host_name(config.section("compute", ComputeConfig).host)
    chassis = _agent_chassis(args, config, host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(config, args.controller, host, args.username, password, args.project, stop, chassis,
                        ceph_conf=args.ceph_conf)

    _run(main())
    return 0


def _agent_chassis(args: argparse.Namespace, config: Config, host: str) -> Any:
    """``mcloud agent --chassis``: the options of the host's own OVN chassis, or None."""
    if not (args.chassis or args.beside):
        return None
    from mcloud.network.chassis import ChassisOptions
    from mcloud.network.config import NetworkConfig
    from mcloud.network.dataplane import OvnOptions

    if not args.tunnel_cidr:
        raise ConfigError("mcloud agent --chassis needs --tunnel-cidr (this host's tunnel endpoint, as 10.255.0.2/24)")
    options: dict[str, Any] = {"name": host, "tunnel_cidr": args.tunnel_cidr}
    if args.chassis_namespace:
        options["namespace"] = args.chassis_namespace
    if args.uplink:
        options["uplink"] = args.uplink
    try:
        if args.beside:  # the controller's data plane is on this machine: its Southbound socket and a veth
            controller = Config(data_dir=args.beside)
            ovn = OvnOptions.parse(controller.section("network", NetworkConfig).ovn, controller.data_dir)
            if not ovn.tunnel_cidr:
                raise ConfigError(f"the controller's [network.ovn] tunnel_cidr is not set ({controller.data_dir}): "
                                  "other chassis cannot reach its chassis")
            return ChassisOptions.beside(ovn, config.data_dir, **options)
        if not args.sb_connection:
            raise ConfigError("mcloud agent --chassis needs --sb-connection (the controller's Southbound, tcp:IP:6642)")
        return ChassisOptions.parse({**options, "sb_connection": args.sb_connection}, config.data_dir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mcloud", description="An OpenStack-compatible cloud in one command.")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", help="where mCloud keeps its state (default ~/.local/share/mcloud)")
        sp.add_argument("--config", help="configuration file (default DATA_DIR/mcloud.toml)")
        sp.add_argument("--database", help="database URL: sqlite:///PATH (default) or postgresql://...")

    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the all-in-one cloud in the foreground")
    common(up)
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="port to listen on (default 8080)")
    up.add_argument("--admin-password", help="the admin password (or MCLOUD_ADMIN_PASSWORD; else generated once)")
    up.add_argument("--workers", type=int, help="processes serving the listener (default 1)")
    up.set_defaults(func=cmd_up)

    boot = sub.add_parser("bootstrap", help="create the default domain, admin and demo accounts and the catalog")
    common(boot)
    boot.add_argument("--host", help="address the catalog names (default 127.0.0.1)")
    boot.add_argument("--port", type=int, help="port the catalog names (default 8080)")
    boot.add_argument("--admin-password", help="the admin password (or MCLOUD_ADMIN_PASSWORD)")
    boot.set_defaults(func=cmd_bootstrap)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply every migration")
    common(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)

    identity = sub.add_parser("identity", help="identity maintenance")
    id_sub = identity.add_subparsers(dest="identity_command", required=True)
    rotate = id_sub.add_parser("rotate-keys", help="rotate the Fernet token keys")
    common(rotate)
    rotate.set_defaults(func=cmd_rotate_keys)

    image = sub.add_parser("image", help="guest images")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    tiny = image_sub.add_parser("build-tiny", help="build mCloud's tiny guest image (cached by content)")
    common(tiny)
    tiny.add_argument("--output", help="also write the qcow2 here")
    tiny.add_argument("--cache-dir", help="build cache (default ~/.cache/mcloud)")
    tiny.add_argument("--kernel", help="the Debian kernel to use (default the newest /boot/vmlinuz-*)")
    tiny.add_argument("--force", action="store_true", help="build even when the cache has it")
    tiny.add_argument("--upload", action="store_true", help="put it into the image service (clouds.yaml)")
    tiny.add_argument("--os-cloud", default=os.environ.get("OS_CLOUD", "mcloud"), help="cloud of clouds.yaml")
    tiny.add_argument("--name", default="tiny", help="the image's name (default tiny)")
    tiny.add_argument("--disk-boot", action="store_true",
                      help="upload the disk alone (booted by its boot loader), without the NAME-kernel (aki) and "
                           "NAME-ramdisk (ari) images it otherwise names for direct kernel boot")
    tiny.set_defaults(func=cmd_image_build_tiny)

    agent = sub.add_parser("agent", help="run a compute host against a controller")
    common(agent)
    agent.add_argument("--controller", required=True, help="the controller's URL (http://HOST:PORT)")
    agent.add_argument("--compute-host", help="this host's name (default [compute] host, else the host name)")
    agent.add_argument("--username", default="admin", help="the agent's account (service or admin role)")
    agent.add_argument("--project", default="admin", help="the account's project")
    agent.add_argument("--password", help="its password (or --password-file, or MCLOUD_AGENT_PASSWORD)")
    agent.add_argument("--password-file", help="a file holding the password")
    agent.add_argument("--chassis", action="store_true",
                       help="run this host's own OVN chassis (in a namespace of its own) for its guests' NICs")
    agent.add_argument("--tunnel-cidr", help="the chassis's tunnel endpoint, address/prefix (as 100.64.255.2/24)")
    agent.add_argument("--sb-connection", help="the controller's OVN Southbound database (tcp:IP:6642)")
    agent.add_argument("--uplink", help="an interface in the chassis's namespace to carry its tunnels")
    agent.add_argument("--chassis-namespace", help="the chassis's network namespace (default: one of its own)")
    agent.add_argument("--beside", metavar="CONTROLLER_DATA_DIR",
                       help="(implies --chassis) the controller runs on this machine with this data dir: join its "
                            "Southbound socket and its data plane's namespace by a veth")
    agent.add_argument("--ceph-conf", help="the Ceph configuration file for images in the image service's RBD "
                       "store (default [compute.qemu] ceph_conf)")
    agent.set_defaults(func=cmd_agent)

    status = sub.add_parser("status", help="list the services a running cloud serves")
    common(status)
    status.add_argument("--host")
    status.add_argument("--port", type=int)
    status.set_defaults(func=cmd_status)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except ConfigError as exc:
        print(f"mcloud: {exc}", file=sys.stderr)
        sys.exit(2)
