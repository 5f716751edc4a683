"""Neutron's secure-RBAC default rules for routers, floating IPs, security groups, QoS and
trunks, by Neutron's names (merged into ``policies.RULES`` by the network service)."""

from __future__ import annotations

L3_RULES: dict[str, str] = {}
