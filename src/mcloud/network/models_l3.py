"""Tables owned by the network service (prefix `network_`) for routers, floating IPs and port
forwardings, security groups and rules, QoS policies and rules, and trunks."""

from __future__ import annotations
