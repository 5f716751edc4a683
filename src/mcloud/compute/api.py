"""Stand-in (SERVERS replaces it): Nova v2.1's routes."""

from __future__ import annotations

from fastapi import FastAPI

from mcloud.compute.service import ComputeService
from mcloud.core.http import service_app
from mcloud.core.runtime import Runtime


def build(runtime: Runtime, compute: ComputeService) -> FastAPI:
    return service_app("mCloud Compute v2.1", runtime=runtime, compute=compute)
