"""A compute host's agent: it pulls the operations the controller sends its host, runs them
through the host's hypervisor driver, and reports results, power states and heartbeats.

The same :class:`Agent` runs the in-process host of ``mcloud up`` (:class:`LocalTransport`: calls
``compute.hosts`` directly and is woken the moment an operation commits) and an ``mcloud agent``
process on another machine or namespace (``agent_http.HttpTransport``: long-polls the
controller's ``/compute/agent/v1`` routes, which call the same ``compute.hosts`` methods).

Operations of one instance run one after another, in the order they were sent; operations of
different instances run side by side (spawns at most ``max_concurrent_builds`` at a time).

The payload of an operation that needs the instance (spawn, power_on, resume, rebuild, resize,
revert_resize, rescue, unrescue, prepare_incoming) is the instance as
``hosts.instance_payload`` makes it, plus the operation's own keys:

    uuid, name (instance-0000000a), hostname, display_name,
    flavor {vcpus, memory_mb, root_gb, ephemeral_gb, swap, extra_specs},
    image {id, disk_format, properties, min_disk, size, checksum, os_hash_algo, os_hash_value, rbd} | None,
    vifs [{port_id, mac, network_id, mtu}],
    metadata {uuid, name, hostname, launch_index, availability_zone, project_id, meta, key_name,
              key_data, key_type},
    user_data (base64, as given) | None, network_data (network_data.json),
    volumes [{volume_id, connection_info (Cinder's), boot_index (0: the root disk), device_name}]

Operation keys: reboot {hard}, power_off {timeout}, snapshot {image_id}, rescue {rescue_image:
an image dict as above}, console_output {length}, console {protocol}, attach_interface {vif},
detach_interface {port_id}, attach_volume {volume: one of volumes above}, detach_volume
{volume_id}, live_migrate {target: {uri, disks}}.
Results: ``power_state`` after the operation, and console_output {output}, console {protocol,
host, port, password}, diagnostics {Nova's 2.48 fields}, snapshot {disk_format, size}, prepare_incoming
{uri, disks}, live_migrate {the
driver's figures: downtime_ms, total_time_ms, memory_/disk_ total, processed, remaining}.

Every instance gets a config drive: mCloud has no metadata service, so the drive is how a guest
learns who it is (as Nova's ``force_config_drive``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from mcloud.compute import configdrive, states
from mcloud.compute.config import ComputeConfig
from mcloud.compute.drivers.base import (
    DriverError,
    FlavorSpec,
    HostInfo,
    HypervisorDriver,
    InstanceNotFound,
    InstanceSpec,
    MigrationTarget,
    VifSpec,
    VolumeSpec,
)
from mcloud.compute.imagecache import ImageCache

log = logging.getLogger("mcloud.compute.agent")

#: operations whose payload is the instance (an InstanceSpec is built for them)
NEEDS_SPEC = {"spawn", "power_on", "resume", "rebuild", "resize", "revert_resize", "rescue", "unrescue",
              "prepare_incoming"}
#: operations that leave no instance behind (no power state to report)
GONE_AFTER = {"destroy", "live_migrate", "abort_incoming"}
#: operations that only read (no power state either)
READS = {"console_output", "console", "diagnostics"}


class Transport(Protocol):
    """How an agent talks to its controller."""

    async def register(self, host: str, info: HostInfo) -> None: ...

    async def pull(self, host: str, wait: float) -> list[dict[str, Any]]: ...

    async def complete(self, host: str, op_id: str, result: dict[str, Any] | None, error: str | None) -> None: ...

    async def heartbeat(self, host: str) -> bool:
        """False: the controller does not know this host (deleted): register again."""

    async def report_power_states(self, host: str, power_states: dict[str, int]) -> None: ...

    def image_chunks(self, image_id: str) -> AsyncIterator[bytes]: ...

    async def upload_snapshot(self, image_id: str, path: Path, disk_format: str) -> None: ...

    async def close(self) -> None: ...


class LocalTransport:
    """The in-process host's transport: ``compute.hosts`` and the image service, called directly."""

    def __init__(self, hosts: Any):
        self.hosts = hosts

    async def register(self, host: str, info: HostInfo) -> None:
        await self.hosts.register(host, info, transport="local")

    async def pull(self, host: str, wait: float) -> list[dict[str, Any]]:
        return await self.hosts.pull_wait(host, wait)

    async def complete(self, host: str, op_id: str, result: dict[str, Any] | None, error: str | None) -> None:
        await self.hosts.complete(op_id, result, error, host=host)

    async def heartbeat(self, host: str) -> bool:
        return bool(await self.hosts.heartbeat([host]))

    async def report_power_states(self, host: str, power_states: dict[str, int]) -> None:
        await self.hosts.report_power_states(host, power_states)

    async def image_chunks(self, image_id: str) -> AsyncIterator[bytes]:
        from mcloud.image.service import Caller

        image_service = self.hosts.compute.image
        caller = Caller(None, is_admin=True)
        async with image_service.db.read() as session:
            image = await image_service.get_image(session, caller, image_id)
            if image.status != "active":
                raise DriverError(f"Image {image_id} is {image.status}, not active")
            location = await image_service.data_location(session, image)
        if location is None:
            raise DriverError(f"Image {image_id} has no data in a store this cloud reads")
        async for chunk in image_service.read(location):
            yield chunk

    async def upload_snapshot(self, image_id: str, path: Path, disk_format: str) -> None:
        from mcloud.image.service import Caller

        image_service = self.hosts.compute.image
        caller = Caller(None, is_admin=True)
        async with image_service.db.write() as session:
            image = await image_service.get_image(session, caller, image_id, for_update=True)
            if image.disk_format != disk_format and image.status == "queued":
                await image_service.update_image(session, caller, image, [
                    {"op": "replace", "path": ["disk_format"], "value": disk_format}])

        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as f:
                while block := await asyncio.to_thread(f.read, 1 << 20):
                    yield block

        await image_service.upload(caller, image_id, chunks(), size_hint=path.stat().st_size)

    async def close(self) -> None:
        pass


def host_driver(config: ComputeConfig, instances: Path, network_host: Any, host: str) -> HypervisorDriver:
    """The driver of compute host ``host``: the configured one, whose hypervisor hostname (the
    node and its Placement provider) is the host's name unless its options name another, so
    that several hosts on one machine are distinct nodes."""
    import dataclasses

    from mcloud.compute.drivers import fake, load_driver, settle

    if settle(config) == "fake":
        return fake.create(config.fake, instances, network_host, hostname=host)
    if config.driver == "qemu" and not config.qemu.get("hostname"):
        config = dataclasses.replace(config, qemu={**config.qemu, "hostname": host})
    return load_driver(config, instances, network_host)


def spec_from_payload(payload: Mapping[str, Any], image: Any = None) -> InstanceSpec:
    """The driver's InstanceSpec from an operation's payload (``image``: the ImageSpec the cache
    gave for ``payload["image"]``)."""
    flavor = payload.get("flavor") or {}
    swap = flavor.get("swap") or 0
    vifs = tuple(VifSpec(port_id=v["port_id"], mac=v["mac"], network_id=v["network_id"], mtu=v.get("mtu"),
                         model=(payload.get("image") or {}).get("properties", {}).get("hw_vif_model", "virtio")
                         if payload.get("image") else "virtio")
                 for v in payload.get("vifs") or [])
    md = payload.get("metadata")
    drive = (configdrive.files(md, payload.get("network_data"), payload.get("user_data"))
             if md is not None else None)
    return InstanceSpec(
        uuid=payload["uuid"], name=payload.get("name") or payload["uuid"],
        hostname=payload.get("hostname") or "",
        flavor=FlavorSpec(vcpus=int(flavor.get("vcpus", 1)), memory_mb=int(flavor.get("memory_mb", 64)),
                          root_gb=int(flavor.get("root_gb", 0)), ephemeral_gb=int(flavor.get("ephemeral_gb", 0)),
                          swap_mb=int(swap or 0), extra_specs=dict(flavor.get("extra_specs") or {})),
        image=image, vifs=vifs, config_drive=drive,
        volumes=tuple(VolumeSpec.of(v) for v in payload.get("volumes") or []))


class Agent:
    """One compute host: its name, its driver, and its transport to the controller."""

    def __init__(self, host: str, driver: HypervisorDriver, transport: Transport, config: ComputeConfig, *,
                 images: ImageCache | None = None, cache_dir: Path | None = None, heartbeat: bool = True,
                 poll_wait: float = 30.0, ceph_conf: str | None = None):
        self.host = host
        self.driver = driver
        self.transport = transport
        self.config = config
        self.images = images or ImageCache(cache_dir or Path(tempfile.gettempdir()) / "mcloud-image-cache",
                                           transport.image_chunks, ceph_conf=ceph_conf)
        self.send_heartbeats = heartbeat
        self.poll_wait = poll_wait
        self._locks: dict[str, asyncio.Lock] = {}
        self._builds = asyncio.Semaphore(max(1, config.max_concurrent_builds))
        self._jobs: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._reported: dict[str, int] | None = None
        self._sync_count = 0
        self.started = time.time()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.driver.start()
        await self.transport.register(self.host, self.driver.host_info())
        try:  # every guest reported at once: the controller syncs their states and has the host
            await self.sync_power_states()  # destroy those evacuated or deleted while it was down
        except Exception:  # noqa: BLE001 - the heartbeat's sync tries again
            log.warning("host %s: the first power-state report failed", self.host, exc_info=True)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._pull_loop(), name=f"agent-{self.host}"))
        if self.send_heartbeats:
            self._tasks.append(loop.create_task(self._heartbeat_loop(), name=f"agent-heartbeat-{self.host}"))
        log.info("compute host %s started (%s driver)", self.host, self.driver.name)

    async def close(self) -> None:
        for task in [*self._tasks, *self._jobs]:
            task.cancel()
        for task in [*self._tasks, *self._jobs]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.driver.close()
        await self.transport.close()

    async def _pull_loop(self) -> None:
        while True:
            try:
                ops = await self.transport.pull(self.host, self.poll_wait)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the controller may be briefly unreachable
                log.warning("host %s: could not pull operations", self.host, exc_info=True)
                await asyncio.sleep(1)
                continue
            for op in ops:
                job = asyncio.get_running_loop().create_task(self._run(op))
                self._jobs.add(job)
                job.add_done_callback(self._jobs.discard)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.report_interval)
            try:
                if not await self.transport.heartbeat(self.host):
                    log.warning("host %s: the controller does not know this host; registering again", self.host)
                    await self.transport.register(self.host, self.driver.host_info())
                await self.sync_power_states()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.warning("host %s: heartbeat failed", self.host, exc_info=True)

    async def sync_power_states(self) -> None:
        """Report instances whose power state changed since the last report (all of them the
        first time and every 60th time, as Nova's periodic sync)."""
        current = await self.driver.list_instances()
        self._sync_count += 1
        if self._reported is None or self._sync_count % 60 == 0:
            changed = dict(current)
        else:
            changed = {u: p for u, p in current.items() if self._reported.get(u) != p}
        self._reported = current
        if changed:
            await self.transport.report_power_states(self.host, changed)

    # ------------------------------------------------------------------ running operations

    async def _run(self, op: dict[str, Any]) -> None:
        uuid = op.get("instance_uuid")
        lock = self._locks.setdefault(uuid or op["id"], asyncio.Lock())
        result: dict[str, Any] | None = None
        error: str | None = None
        async with lock:
            try:
                if op["op"] == "spawn":
                    async with self._builds:
                        result = await self.execute(op["op"], uuid, op.get("payload") or {})
                else:
                    result = await self.execute(op["op"], uuid, op.get("payload") or {})
            except asyncio.CancelledError:
                raise
            except DriverError as exc:
                error = str(exc) or exc.__class__.__name__
                log.info("host %s: %s of %s failed: %s", self.host, op["op"], uuid, error)
            except Exception as exc:  # noqa: BLE001 - reported as the op's failure
                log.exception("host %s: %s of %s failed", self.host, op["op"], uuid)
                error = f"{exc.__class__.__name__}: {exc}"
        if uuid and not lock.locked() and self._locks.get(uuid) is lock:
            del self._locks[uuid]
        for attempt in range(10):
            try:
                await self.transport.complete(self.host, op["id"], result, error)
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.warning("host %s: could not report %s (attempt %d)", self.host, op["id"], attempt + 1,
                            exc_info=True)
                await asyncio.sleep(min(2 ** attempt, 30))

    async def spec(self, payload: Mapping[str, Any]) -> InstanceSpec:
        image = await self.images.fetch(payload["image"]) if payload.get("image") else None
        return spec_from_payload(payload, image)

    async def execute(self, op: str, uuid: str | None, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation through the driver; returns its result."""
        d = self.driver
        result: dict[str, Any] = {}
        if uuid is None:
            raise DriverError(f"Operation {op} names no instance")
        spec = await self.spec({**payload, "uuid": uuid}) if op in NEEDS_SPEC else None
        match op:
            case "spawn":
                await d.spawn(spec)  # type: ignore[arg-type]
            case "destroy":
                await d.destroy(uuid)
            case "power_off":
                await d.power_off(uuid, float(payload.get("timeout", 0) or 0))
            case "power_on":
                await d.power_on(spec)  # type: ignore[arg-type]
            case "reboot":
                await d.reboot(uuid, bool(payload.get("hard", True)))
            case "pause":
                await d.pause(uuid)
            case "unpause":
                await d.unpause(uuid)
            case "suspend":
                await d.suspend(uuid)
            case "resume":
                await d.resume(spec)  # type: ignore[arg-type]
            case "rebuild":
                await d.rebuild(spec)  # type: ignore[arg-type]
            case "snapshot":
                result.update(await self._snapshot(uuid, payload["image_id"]))
            case "resize":
                await d.resize(spec)  # type: ignore[arg-type]
            case "confirm_resize":
                await d.confirm_resize(uuid)
            case "revert_resize":
                await d.revert_resize(spec)  # type: ignore[arg-type]
            case "rescue":
                rescue = payload.get("rescue_image") or payload.get("image")
                if not rescue:
                    raise DriverError("Rescue needs an image")
                await d.rescue(spec, await self.images.fetch(rescue))  # type: ignore[arg-type]
            case "unrescue":
                await d.unrescue(spec)  # type: ignore[arg-type]
            case "console_output":
                length = payload.get("length")
                result["output"] = await d.console_output(uuid, None if length is None else int(length))
            case "console":
                console = await d.console(uuid, payload.get("protocol") or "vnc")
                result.update(protocol=console.protocol, host=console.host, port=console.port,
                              password=console.password)
            case "diagnostics":
                result.update(await self._diagnostics(uuid))
            case "attach_interface":
                v = payload["vif"]
                await d.attach_interface(uuid, VifSpec(port_id=v["port_id"], mac=v["mac"],
                                                       network_id=v["network_id"], mtu=v.get("mtu")))
            case "detach_interface":
                await d.detach_interface(uuid, payload["port_id"])
            case "attach_volume":
                await d.attach_volume(uuid, VolumeSpec.of(payload["volume"]))
            case "detach_volume":
                try:
                    await d.detach_volume(uuid, payload["volume_id"])
                except InstanceNotFound:  # no guest holds it (Nova: "instance disappeared"): detached
                    log.warning("detaching volume %s: instance %s is not on this host", payload["volume_id"], uuid)
            case "prepare_incoming":
                target = await d.prepare_incoming(spec)  # type: ignore[arg-type]
                result.update(uri=target.uri, disks=dict(target.disks))
            case "live_migrate":
                t = payload["target"]
                figures = await d.live_migrate(uuid, MigrationTarget(uri=t["uri"], disks=dict(t.get("disks") or {})))
                result.update({k: int(v) for k, v in (figures or {}).items() if v is not None})
            case "finish_incoming":
                await d.finish_incoming(uuid)
            case "abort_incoming":
                await d.abort_incoming(uuid)
            case _:
                raise DriverError(f"Unknown host operation {op!r}")
        if op not in GONE_AFTER and op not in READS:
            try:
                result["power_state"] = await d.power_state(uuid)
            except InstanceNotFound:
                result["power_state"] = states.NOSTATE
        elif op in GONE_AFTER:
            result["power_state"] = states.NOSTATE
        return result

    async def _diagnostics(self, uuid: str) -> dict[str, Any]:
        """Nova's 2.48 diagnostics of the guest: the driver's ``diagnostics(uuid)`` (hypervisor,
        hypervisor_os, uptime, config_drive, cpu/nic/disk details, memory_details {maximum, used}
        in MiB) with the state (Nova's power state name), the driver (``libvirt``: what Nova's
        schema allows, and what mCloud's qemu host is like) and the counts added. A driver without
        it raises NotImplementedError (the API's 501)."""
        diagnostics = getattr(self.driver, "diagnostics", None)
        if diagnostics is None:
            raise DriverError(f"NotImplementedError: the {self.driver.name} driver gives no diagnostics")
        raw = dict(await diagnostics(uuid))
        power_state = await self.driver.power_state(uuid)
        raw.setdefault("state", states.POWER_STATE_NAMES.get(power_state, "pending"))
        raw.setdefault("driver", "libvirt")
        for count, key in (("num_cpus", "cpu_details"), ("num_nics", "nic_details"), ("num_disks", "disk_details")):
            raw.setdefault(count, len(raw.get(key) or []))
        return raw

    async def _snapshot(self, uuid: str, image_id: str) -> dict[str, Any]:
        directory = self.images.directory / "snapshots"
        directory.mkdir(parents=True, exist_ok=True)
        dest = directory / f"{uuid}-{image_id}"
        try:
            disk_format = await self.driver.snapshot(uuid, dest)
            size = dest.stat().st_size
            await self.transport.upload_snapshot(image_id, dest, disk_format)
            return {"disk_format": disk_format, "size": size}
        finally:
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()


class HttpTransport:
    """An ``mcloud agent``'s transport: the controller's ``/compute/agent/v1`` routes and image
    API over HTTP, with a project-scoped token of the agent's service account (taken again when
    it expires)."""

    def __init__(self, controller: str, username: str, password: str, project: str, domain: str = "default",
                 timeout: float = 30.0):
        import httpx

        self.controller = controller.rstrip("/")
        self.auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": username, "domain": {"id": domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": domain}}}}
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, read=timeout + 90.0))
        self._token: str | None = None

    async def _authenticate(self) -> str:
        r = await self.client.post(f"{self.controller}/identity/v3/auth/tokens?nocatalog",
                                   json={"auth": self.auth})
        if r.status_code != 201:
            raise RuntimeError(f"identity refused the agent's credentials ({r.status_code}): {r.text[:200]}")
        self._token = r.headers["x-subject-token"]
        return self._token

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in (1, 2):
            token = self._token or await self._authenticate()
            headers = {"X-Auth-Token": token, **kw.pop("headers", {})}
            r = await self.client.request(method, self.controller + path, headers=headers, **kw)
            if r.status_code == 401 and attempt == 1:
                self._token = None
                continue
            if r.status_code >= 400:
                raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
            return r
        raise AssertionError("unreachable")

    async def register(self, host: str, info: HostInfo) -> None:
        import dataclasses as dc

        body = dc.asdict(info)
        body["traits"] = list(info.traits)
        body["cpu_info"] = dict(info.cpu_info)
        await self.request("POST", f"/compute/agent/v1/hosts/{host}", json={"info": body})

    async def pull(self, host: str, wait: float) -> list[dict[str, Any]]:
        r = await self.request("GET", f"/compute/agent/v1/hosts/{host}/ops", params={"wait": wait})
        return list(r.json()["ops"])

    async def complete(self, host: str, op_id: str, result: dict[str, Any] | None, error: str | None) -> None:
        await self.request("POST", f"/compute/agent/v1/ops/{op_id}",
                           json={"host": host, "result": result, "error": error})

    async def heartbeat(self, host: str) -> bool:
        r = await self.request("POST", f"/compute/agent/v1/hosts/{host}/heartbeat")
        return bool(r.json()["known"])

    async def report_power_states(self, host: str, power_states: dict[str, int]) -> None:
        await self.request("POST", f"/compute/agent/v1/hosts/{host}/power-states",
                           json={"power_states": power_states})

    async def image_chunks(self, image_id: str) -> AsyncIterator[bytes]:
        token = self._token or await self._authenticate()
        async with self.client.stream("GET", f"{self.controller}/image/v2/images/{image_id}/file",
                                      headers={"X-Auth-Token": token}) as r:
            if r.status_code != 200:
                raise DriverError(f"Image {image_id} could not be downloaded: {r.status_code}")
            async for chunk in r.aiter_bytes(1 << 20):
                yield chunk

    async def upload_snapshot(self, image_id: str, path: Path, disk_format: str) -> None:
        r = await self.request("GET", f"/image/v2/images/{image_id}")
        image = r.json()
        if image.get("disk_format") != disk_format and image.get("status") == "queued":
            await self.request("PATCH", f"/image/v2/images/{image_id}",
                               json=[{"op": "replace", "path": "/disk_format", "value": disk_format}],
                               headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})

        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as f:
                while block := await asyncio.to_thread(f.read, 1 << 20):
                    yield block

        await self.request("PUT", f"/image/v2/images/{image_id}/file", content=chunks(),
                           headers={"Content-Type": "application/octet-stream"})

    async def close(self) -> None:
        await self.client.aclose()


async def run_agent(config: Any, controller: str, host: str, username: str, password: str, project: str,
                    stop: asyncio.Event, chassis: Any = None, ceph_conf: str | None = None) -> None:
    """``mcloud agent``: run this machine's compute host against ``controller`` until ``stop``.
    ``config`` is the process's ``Config`` (its ``[compute]`` section picks the driver).
    ``chassis`` (``mcloud.network.chassis.ChassisOptions``, its ``name`` = ``host``): this host's
    own OVN chassis, started first (guests' NICs plug into it) and stopped at exit. ``ceph_conf``:
    the Ceph configuration file for images in the image service's RBD store (None: the driver's
    own default, ``[compute.qemu] ceph_conf``)."""
    from mcloud.compute.drivers import settle

    compute = config.section("compute", ComputeConfig)
    settle(compute)
    instances = Path(compute.instances_path or config.data_dir / "instances")
    network_host = None
    running_chassis = None
    if chassis is not None:
        from mcloud.network.chassis import Chassis

        if chassis.name != host:
            raise ValueError(f"the chassis must be named after the compute host ({host}), not {chassis.name}")
        running_chassis = Chassis(chassis)
        seconds = await asyncio.to_thread(running_chassis.start)
        network_host = running_chassis.host
        log.info("compute host %s: OVN chassis up in %.1fs (tunnel endpoint %s)", host, seconds,
                 chassis.tunnel_cidr)
    agent = None
    try:
        driver = host_driver(compute, instances, network_host, host)
        transport = HttpTransport(controller, username, password, project)
        agent = Agent(host, driver, transport, compute, cache_dir=config.data_dir / "image-cache",
                      heartbeat=True, ceph_conf=ceph_conf)
        await agent.start()
        await stop.wait()
    finally:
        if agent is not None:
            await agent.close()
        if running_chassis is not None:
            await asyncio.to_thread(running_chassis.stop)
