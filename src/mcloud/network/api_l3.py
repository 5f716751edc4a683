"""Neutron v2.0 routes for routers, floating IPs, security groups, QoS and trunks."""

from __future__ import annotations

from fastapi import FastAPI


def add_routes(app: FastAPI) -> None:
    """Add the L3 routes to CORE's app (its fault handlers render ours as NeutronError)."""
