"""Tables owned by the network service (prefix `network_`): networks, subnets, subnet pools,
address scopes, ports and their IP allocations, segments, RBAC, quotas, tags.

Routers, floating IPs, security groups, QoS and trunks live in ``models_l3.py``."""

from __future__ import annotations
