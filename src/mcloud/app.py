"""The composition root: builds the one ASGI app, mounts every service, wires identity's token
validator into core's auth, and registers each service's policy defaults."""

from __future__ import annotations

import functools
import html
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import mcloud
from mcloud.compute import api as compute_api
from mcloud.compute import policies as compute_policies
from mcloud.compute.config import ComputeConfig
from mcloud.compute.service import ComputeService
from mcloud.core.config import Config
from mcloud.core.db import Database
from mcloud.core.http import RequestMiddleware, json_response
from mcloud.core.policy import Enforcer
from mcloud.core.runtime import Runtime, ServiceSpec
from mcloud.identity import api as identity_api
from mcloud.identity import policies as identity_policies
from mcloud.identity.config import IdentityConfig
from mcloud.identity.service import IdentityService
from mcloud.image import api as image_api
from mcloud.image import policies as image_policies
from mcloud.image.config import ImageConfig
from mcloud.image.service import ImageService
from mcloud.network import api as network_api
from mcloud.network import policies as network_policies
from mcloud.network.config import NetworkConfig
from mcloud.network.service import NetworkService
from mcloud.placement import api as placement_api
from mcloud.placement import policies as placement_policies
from mcloud.placement.config import PlacementConfig
from mcloud.placement.service import PlacementService
from mcloud.volume import api as volume_api
from mcloud.volume import policies as volume_policies
from mcloud.volume.config import VolumeConfig
from mcloud.volume.service import VolumeService


class ServiceDispatcher:
    """The root ASGI app: ``/`` lists the services, ``/<mount>...`` goes to that service's app.

    A mount's bare path (``/identity``) is served as its root rather than redirected, because
    clients discover versions at the catalog URL exactly as written. The service app sees the
    mount in ``root_path``, as under a Starlette ``Mount``.
    """

    def __init__(self, root: ASGIApp, mounts: dict[str, ASGIApp]):
        self.root = root
        self.mounts = sorted(mounts.items(), key=lambda kv: -len(kv[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):  # websockets: the compute console proxy
            path = scope["path"]
            for prefix, app in self.mounts:
                if path == prefix or path.startswith(prefix + "/"):
                    child = dict(scope)
                    child["root_path"] = scope.get("root_path", "") + prefix
                    if path == prefix:
                        child["path"] = path + "/"
                        child["raw_path"] = child["path"].encode()
                    await app(child, receive, send)
                    return
        await self.root(scope, receive, send)


class Cloud:
    """Everything one mCloud process serves: the runtime, the services, the ASGI app."""

    def __init__(self, config: Config):
        self.config = config
        policy_file = config.environ("MCLOUD_POLICY_FILE")
        self.db = Database(config.database_url, pool_size=config.database.pool_size)
        self.runtime = Runtime(
            config=config,
            db=self.db,
            policy=Enforcer(Path(policy_file) if policy_file else config.data_dir / "policy.yaml"),
        )
        self.identity = IdentityService(self.db, config.section("identity", IdentityConfig), config.data_dir)
        self.runtime.token_validator = identity_api.token_validator(self.identity)
        self.runtime.policy.scoped("identity").register(identity_policies.RULES)
        self.image = ImageService(self.db, config.section("image", ImageConfig), config.data_dir, self.identity)
        self.runtime.policy.scoped("image").register(image_policies.RULES)
        self.placement = PlacementService(self.db, config.section("placement", PlacementConfig))
        self.runtime.policy.scoped("placement").register(placement_policies.RULES)
        self.network = NetworkService(self.db, config.section("network", NetworkConfig), config.data_dir,
                                      self.identity)
        self.runtime.policy.scoped("network").register(network_policies.RULES)
        self.volume = VolumeService(self.db, config.section("volume", VolumeConfig), config.data_dir,
                                    self.identity, self.image, self.placement)
        self.runtime.policy.scoped("volume").register(volume_policies.RULES)
        self.compute = ComputeService(self.db, config.section("compute", ComputeConfig), config.data_dir,
                                      self.identity, self.image, self.placement, self.network, self.volume)
        self.runtime.policy.scoped("compute").register(compute_policies.RULES)
        self.runtime.services = self.service_specs(self)

    @functools.cached_property
    def app(self) -> ASGIApp:
        """The ASGI app, built on first use: a cloud made only to bootstrap or migrate never
        builds the services' routes (a third of a second at start)."""
        return RequestMiddleware(self._root())

    @staticmethod
    def service_specs(cloud: Cloud | None = None) -> list[ServiceSpec]:
        """Every mounted service. Without a cloud, the specs can be listed but not built."""

        def identity(rt: Runtime) -> ASGIApp:
            assert cloud is not None
            return identity_api.build(rt, cloud.identity)

        def image(rt: Runtime) -> ASGIApp:
            assert cloud is not None
            return image_api.build(rt, cloud.image)

        def placement(rt: Runtime) -> ASGIApp:
            assert cloud is not None
            return placement_api.build(rt, cloud.placement)

        def network(rt: Runtime) -> ASGIApp:
            assert cloud is not None
            return network_api.build(rt, cloud.network)

        def volume(rt: Runtime) -> ASGIApp:
            assert cloud is not None
            return volume_api.build(rt, cloud.volume)

        def compute(rt: Runtime) -> ASGIApp:
            assert cloud is not None
            return compute_api.build(rt, cloud.compute)

        return [
            ServiceSpec(name="keystone", type="identity", path="/identity", build=identity,
                        description="Identity Service"),
            ServiceSpec(name="glance", type="image", path="/image", build=image, description="Image Service"),
            ServiceSpec(name="placement", type="placement", path="/placement", build=placement,
                        description="Placement Service"),
            ServiceSpec(name="neutron", type="network", path="/networking", build=network,
                        description="Networking Service"),
            ServiceSpec(name="cinder", type="block-storage", path="/volume", build=volume, endpoint_suffix="/v3",
                        aliases=("volumev3",), description="Block Storage Service"),
            ServiceSpec(name="nova", type="compute", path="/compute", build=compute, endpoint_suffix="/v2.1",
                        description="Compute Service"),
        ]

    def service_urls(self) -> list[tuple[str, str, str, str]]:
        """(type, name, description, catalog URL) for every mounted service and its aliases."""
        base = self.config.public_url
        out = []
        for spec in self.runtime.services:
            url = base + spec.path + spec.endpoint_suffix
            for type_ in (spec.type, *spec.aliases):
                out.append((type_, spec.name, spec.description, url))
        return out

    async def bootstrap(self, admin_password: str, demo_password: str | None = None,
                        reset_passwords: bool = False) -> None:
        await self.identity.bootstrap(
            admin_password=admin_password, demo_password=demo_password or admin_password,
            reset_passwords=reset_passwords, public_url=self.config.public_url,
            region=self.config.server.region, services=self.service_urls())
        async with self.db.write() as session:  # devstack's flavors, in a cloud that has none yet
            await self.compute.resources.make_default_flavors(session)

    def _root(self) -> ServiceDispatcher:
        services = self.runtime.services

        async def root(request: Request) -> Response:
            base = f"{request.url.scheme}://{request.url.netloc}"
            listed = [{"type": s.type, "name": s.name, "path": s.path, "url": base + s.path} for s in services]
            if "text/html" in request.headers.get("accept", "") and "json" not in request.headers.get("accept", ""):
                rows = "".join(f"<li><a href='{html.escape(x['url'])}'>{html.escape(x['type'])}</a> "
                               f"({html.escape(x['name'])})</li>" for x in listed)
                return HTMLResponse(f"<!doctype html><title>mCloud</title><h1>mCloud</h1><ul>{rows}</ul>")
            return json_response({"name": "mCloud", "version": mcloud.__version__, "services": listed})

        async def not_found(request: Request) -> Response:
            return json_response({"error": {"code": 404, "title": "Not Found",
                                            "message": "The resource could not be found."}}, status=404)

        index = Starlette(routes=[Route("/", root)], exception_handlers={404: not_found})
        return ServiceDispatcher(index, {s.path: s.build(self.runtime.for_service(s.type)) for s in services})

    async def resume(self) -> None:
        """Start now every service whose durable tasks a former process left unfinished (it was
        killed mid-task): their workers take the tasks again at once, not at the service's first
        request (a volume attach cut short resumes while a user only polls the volume)."""
        import inspect

        import sqlalchemy as sa

        from mcloud.core.tasks import PENDING, RUNNING, Task

        async with self.db.read() as session:
            kinds = set((await session.execute(
                sa.select(Task.kind).where(Task.status.in_((PENDING, RUNNING))).distinct())).scalars())
        for name in sorted({kind.split(".", 1)[0] for kind in kinds}):
            start = getattr(getattr(self, name, None), "start", None)
            if start is not None:
                started = start()
                if inspect.isawaitable(started):
                    await started

    async def close(self) -> None:
        await self.compute.close()
        await self.volume.close()
        await self.network.close()
        await self.image.close()
        await self.placement.close()
        await self.identity.close()
        await self.db.dispose()
