"""Views for driving the ovn driver directly in the data-plane tests (what the network service
would hand it), with unique ids and MACs."""

from __future__ import annotations

import random
import uuid

from mcloud.network.drivers.base import (  # noqa: F401 - re-exported for the tests
    ExtraDhcpOpt,
    FixedIP,
    HostRoute,
    QosRules,
    NetworkView,
    PortView,
    SecurityGroupRuleView,
    SecurityGroupView,
    SubnetView,
)

PROJECT = "c0ffee00c0ffee00c0ffee00c0ffee00"


def new_id() -> str:
    return str(uuid.uuid4())


def mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def network(name: str = "net", **kw: object) -> NetworkView:
    fields: dict = dict(id=new_id(), name=name, project_id=PROJECT, admin_state_up=True, mtu=1442,
                        network_type="geneve", physical_network=None, segmentation_id=None, external=False,
                        port_security_enabled=True)
    fields.update(kw)
    return NetworkView(**fields)


def subnet(net: NetworkView, cidr: str, gateway: str | None, **kw: object) -> SubnetView:
    fields: dict = dict(id=new_id(), network_id=net.id, ip_version=4, cidr=cidr, gateway_ip=gateway,
                        enable_dhcp=True, mtu=net.mtu)
    fields.update(kw)
    return SubnetView(**fields)


def port(net: NetworkView, sub: SubnetView | None, ip: str | None, groups: tuple[str, ...] = (), **kw: object) -> PortView:
    fields: dict = dict(id=new_id(), network_id=net.id, project_id=PROJECT, name="", mac_address=mac(),
                        admin_state_up=True, fixed_ips=(FixedIP(sub.id, ip),) if sub and ip else (),
                        device_owner="compute:nova", device_id=new_id(), port_security_enabled=True,
                        security_group_ids=groups)
    fields.update(kw)
    return PortView(**fields)


def router_port(net: NetworkView, sub: SubnetView, ip: str, router_id: str,
                owner: str = "network:router_interface") -> PortView:
    """A router's interface (or, with owner network:router_gateway, gateway) port."""
    return port(net, sub, ip, device_owner=owner, device_id=router_id, port_security_enabled=False)


def rule(direction: str, protocol: str | None = None, **kw: object) -> SecurityGroupRuleView:
    return SecurityGroupRuleView(id=new_id(), direction=direction, ethertype=str(kw.pop("ethertype", "IPv4")),
                                 protocol=protocol, **kw)  # type: ignore[arg-type]


def group(*rules: SecurityGroupRuleView, stateful: bool = True, group_id: str | None = None) -> SecurityGroupView:
    return SecurityGroupView(id=group_id or new_id(), project_id=PROJECT, name="sg", stateful=stateful,
                             rules=tuple(rules))


def open_group(**kw: object) -> SecurityGroupView:
    """Egress anything, ingress ICMP: a guest can be pinged and can ping."""
    return group(rule("egress"), rule("ingress", "icmp"), **kw)  # type: ignore[arg-type]
