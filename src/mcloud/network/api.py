"""Neutron v2.0 routes (scaffold: the network service fills this in)."""

from __future__ import annotations

from fastapi import FastAPI

from mcloud.core.http import service_app
from mcloud.core.runtime import Runtime
from mcloud.network.service import NetworkService


def build(runtime: Runtime, network: NetworkService) -> FastAPI:
    return service_app("mCloud Networking v2.0", runtime=runtime, network=network)
