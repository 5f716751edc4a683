"""The routes ``mcloud agent`` talks to (``/compute/agent/v1``; not part of Nova's API): a
compute host registers, long-polls its operations, reports their results, heartbeats and power
states. For the ``service`` role or admins only (``mcloud:compute-agent``). Each route calls the
same ``compute.hosts`` method the in-process host calls directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute.api import body_of, caller_of, compute_of, respond
from mcloud.compute.drivers.base import HostInfo
from mcloud.core.errors import BadRequest

RULE = "mcloud:compute-agent"
PREFIX = "/agent/v1"
#: the longest long poll a host may ask for, seconds
MAX_WAIT = 60.0

_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
REGISTER = {"type": "object", "required": ["info"], "additionalProperties": False, "properties": {
    "host_ip": {"type": ["string", "null"]},
    "info": {"type": "object", "required": ["vcpus", "memory_mb", "disk_gb", "hypervisor_type",
                                            "hypervisor_version", "hypervisor_hostname"],
             "additionalProperties": False, "properties": {
                 "vcpus": {"type": "integer", "minimum": 0}, "memory_mb": {"type": "integer", "minimum": 0},
                 "disk_gb": {"type": "integer", "minimum": 0}, "hypervisor_type": _NAME,
                 "hypervisor_version": {"type": "integer"}, "hypervisor_hostname": _NAME,
                 "cpu_info": {"type": "object"}, "traits": {"type": "array", "items": _NAME}}}}}
COMPLETE = {"type": "object", "required": ["host"], "additionalProperties": False, "properties": {
    "host": _NAME, "result": {"type": ["object", "null"]}, "error": {"type": ["string", "null"]}}}
POWER = {"type": "object", "required": ["power_states"], "additionalProperties": False, "properties": {
    "power_states": {"type": "object", "additionalProperties": {"type": "integer"}}}}


async def register(request: Request) -> Response:
    await caller_of(request, RULE, {})
    body = await body_of(request, REGISTER)
    info = body["info"]
    host_info = HostInfo(**{**info, "cpu_info": info.get("cpu_info") or {}, "traits": tuple(info.get("traits") or ())})
    node = await compute_of(request).hosts.register(request.path_params["host"], host_info, transport="http",
                                                    host_ip=body.get("host_ip"))
    return respond({"host": request.path_params["host"], "node": node.uuid}, status=201)


async def pull(request: Request) -> Response:
    await caller_of(request, RULE, {})
    try:
        wait = min(float(request.query_params.get("wait", "0")), MAX_WAIT)
    except ValueError:
        raise BadRequest("wait must be a number of seconds") from None
    gone = asyncio.Event()

    async def watch() -> None:  # an agent that hangs up (stopped, killed) ends its long poll
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.ensure_future(watch())
    try:
        ops = await compute_of(request).hosts.pull_wait(request.path_params["host"], max(wait, 0.0), gone=gone)
    finally:
        watcher.cancel()
    return respond({"ops": ops})


async def complete(request: Request) -> Response:
    await caller_of(request, RULE, {})
    body = await body_of(request, COMPLETE)
    await compute_of(request).hosts.complete(request.path_params["op_id"], body.get("result"), body.get("error"),
                                             host=body["host"])
    return Response(status_code=204)


async def heartbeat(request: Request) -> Response:
    await caller_of(request, RULE, {})
    known = await compute_of(request).hosts.heartbeat([request.path_params["host"]])
    return respond({"known": bool(known)})


async def power_states(request: Request) -> Response:
    await caller_of(request, RULE, {})
    body: dict[str, Any] = await body_of(request, POWER)
    await compute_of(request).hosts.report_power_states(request.path_params["host"], body["power_states"])
    return Response(status_code=204)


def add_routes(app: FastAPI) -> None:
    from mcloud.compute import consoleproxy

    runtime = getattr(app.state, "runtime", None)
    compute = getattr(app.state, "compute", None)
    if runtime is not None and compute is not None:
        compute.hosts.public_url = runtime.config.public_url
    consoleproxy.add_routes(app)
    app.add_api_route(PREFIX + "/hosts/{host}", register, methods=["POST"])
    app.add_api_route(PREFIX + "/hosts/{host}/ops", pull, methods=["GET"])
    app.add_api_route(PREFIX + "/hosts/{host}/heartbeat", heartbeat, methods=["POST"])
    app.add_api_route(PREFIX + "/hosts/{host}/power-states", power_states, methods=["POST"])
    app.add_api_route(PREFIX + "/ops/{op_id}", complete, methods=["POST"])
