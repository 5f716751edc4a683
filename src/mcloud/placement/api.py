"""Placement routes (scaffold: the placement service fills this in)."""

from __future__ import annotations

from fastapi import FastAPI

from mcloud.core.http import service_app
from mcloud.core.runtime import Runtime
from mcloud.placement.service import PlacementService


def build(runtime: Runtime, placement: PlacementService) -> FastAPI:
    return service_app("mCloud Placement", runtime=runtime, placement=placement)
