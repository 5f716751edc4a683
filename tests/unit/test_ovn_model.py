"""The ovn driver's translation of views into Northbound rows (no OVN needed): names and tags
as Neutron's OVN driver writes them, ACL matches, DHCP options, port security, router rows."""

from __future__ import annotations

import pytest

from mcloud.network.drivers.base import (
    AddressPair,
    ExtraDhcpOpt,
    FixedIP,
    FloatingIPView,
    HostRoute,
    NetworkView,
    PortForwardingView,
    PortView,
    QosRules,
    RouterView,
    SecurityGroupRuleView,
    SubnetView,
)
from mcloud.network.drivers.ovn_model import Model, UnknownSubnet, acl_match, server_mac
from mcloud.network.drivers.ovn_rows import KEY, OWNER, PARENTS

NET = NetworkView(id="n1", name="net", project_id="p", admin_state_up=True, mtu=1442, network_type="geneve",
                  physical_network=None, segmentation_id=None, external=False, port_security_enabled=True)
SUB = SubnetView(id="s1", network_id="n1", ip_version=4, cidr="10.0.0.0/24", gateway_ip="10.0.0.1", enable_dhcp=True,
                 dns_nameservers=("8.8.8.8", "1.1.1.1"), host_routes=(HostRoute("10.9.0.0/16", "10.0.0.254"),),
                 mtu=1442)
SG = "0b5d0a1e-1111-2222-3333-444455556666"


def port(**kw: object) -> PortView:
    fields: dict = dict(id="port1", network_id="n1", project_id="p", name="vm", mac_address="fa:16:3e:00:00:01",
                        admin_state_up=True, fixed_ips=(FixedIP("s1", "10.0.0.5"),), device_owner="compute:nova",
                        device_id="d", port_security_enabled=True, security_group_ids=(SG,))
    fields.update(kw)
    return PortView(**fields)


def by_key(specs):
    return {s.key: s for s in specs}


def rule(direction: str, protocol: str | None = None, **kw: object) -> SecurityGroupRuleView:
    return SecurityGroupRuleView(id="r", direction=direction, ethertype=str(kw.pop("ethertype", "IPv4")),
                                 protocol=protocol, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("r, match", [
    (rule("ingress"), "outport == @pg_0b5d0a1e_1111_2222_3333_444455556666 && ip4"),
    (rule("egress", ethertype="IPv6"), "inport == @pg_0b5d0a1e_1111_2222_3333_444455556666 && ip6"),
    (rule("ingress", "tcp", port_range_min=22, port_range_max=22), "... && ip4 && tcp && tcp.dst == 22"),
    (rule("ingress", "udp", port_range_min=1000, port_range_max=2000),
     "... && ip4 && udp && udp.dst >= 1000 && udp.dst <= 2000"),
    (rule("ingress", "icmp", port_range_min=8, port_range_max=0),
     "... && ip4 && icmp4 && icmp4.type == 8 && icmp4.code == 0"),
    (rule("ingress", "ipv6-icmp", ethertype="IPv6"), "... && ip6 && icmp6"),
    (rule("ingress", "6", remote_ip_prefix="10.1.0.0/16"), "... && ip4 && ip4.src == 10.1.0.0/16 && tcp"),
    (rule("egress", "tcp", remote_ip_prefix="0.0.0.0/0"),
     "inport == @pg_0b5d0a1e_1111_2222_3333_444455556666 && ip4 && tcp"),
    (rule("ingress", remote_group_id="aa-bb"), "... && ip4 && ip4.src == $pg_aa_bb_ip4"),
    (rule("ingress", "gre"), "... && ip4 && ip.proto == 47"),
])
def test_acl_matches(r: SecurityGroupRuleView, match: str) -> None:
    assert acl_match(SG, r) == match.replace("...", "outport == @pg_0b5d0a1e_1111_2222_3333_444455556666")


def test_network_and_provider_network() -> None:
    model = Model("chassis")
    [ls] = model.network_specs(NET)
    assert ls.columns["name"] == "neutron-n1" and ls.columns["external_ids"]["neutron:network_name"] == "net"
    vlan = NetworkView(**{**NET.__dict__, "id": "n2", "network_type": "vlan", "physical_network": "public",
                          "segmentation_id": 100})
    _, localnet = model.network_specs(vlan)
    assert localnet.columns["type"] == "localnet" and localnet.columns["addresses"] == ["unknown"]
    assert localnet.columns["options"]["network_name"] == "public" and localnet.columns["tag_request"] == [100]
    assert localnet.parents == (("ls:n2", "ports"),)


def test_dhcp_options_of_a_subnet() -> None:
    [dhcp] = Model("c").subnet_specs(SUB)
    opts = dhcp.columns["options"]
    assert dhcp.columns["cidr"] == "10.0.0.0/24"
    assert opts["router"] == opts["server_id"] == "10.0.0.1" and opts["server_mac"] == server_mac("s1")
    assert opts["dns_server"] == "{8.8.8.8, 1.1.1.1}" and opts["mtu"] == "1442" and opts["lease_time"] == "43200"
    assert opts["classless_static_route"] == "{10.9.0.0/16,10.0.0.254, 0.0.0.0/0,10.0.0.1}"
    assert Model("c").subnet_specs(SubnetView(**{**SUB.__dict__, "enable_dhcp": False})) == []
    slaac = SubnetView(id="s6", network_id="n1", ip_version=6, cidr="fd00::/64", gateway_ip="fd00::1",
                       enable_dhcp=True, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert Model("c").subnet_specs(slaac) == []  # addresses by RA, no DHCPv6
    stateless = SubnetView(**{**slaac.__dict__, "ipv6_address_mode": "dhcpv6-stateless"})
    [dhcp6] = Model("c").subnet_specs(stateless)
    assert dhcp6.columns["options"]["dhcpv6_stateless"] == "true"


def test_port_rows() -> None:
    model = Model("c")
    model.subnet_specs(SUB)
    p = port(allowed_address_pairs=(AddressPair("10.0.0.100", "fa:16:3e:00:00:99"), AddressPair("10.0.0.0/28", "")),
             qos=QosRules(egress_max_kbps=1000, ingress_max_kbps=2000, ingress_max_burst_kbps=800, dscp_mark=26))
    specs = by_key(model.port_specs(p))
    lsp = specs["lsp:port1"]
    assert lsp.columns["name"] == "port1" and lsp.columns["addresses"] == ["fa:16:3e:00:00:01 10.0.0.5"]
    assert lsp.columns["port_security"] == ["fa:16:3e:00:00:01 10.0.0.5", "fa:16:3e:00:00:99 10.0.0.100",
                                            "fa:16:3e:00:00:01 10.0.0.0/28"]
    assert set(lsp.parents) == {("ls:n1", "ports"), ("pg:drop", "ports"), (f"pg:{SG}", "ports")}
    assert lsp.refs == {"dhcpv4_options": "dhcp:s1", "dhcpv6_options": None}
    ids = lsp.tagged_external_ids()
    assert ids[KEY] == "lsp:port1" and ids[OWNER] == "port:port1" and "ls:n1|ports" in ids[PARENTS]
    assert ids["neutron:cidrs"] == "10.0.0.5/24" and ids["neutron:security_group_ids"] == SG
    assert specs[f"pg:{SG}"].create_only and specs["pg:drop"].create_only
    egress, ingress = specs["qos:port1:egress"], specs["qos:port1:ingress"]
    # as Neutron's OVN driver: a burst only when the rule has one, DSCP only on egress
    assert egress.columns["direction"] == "from-lport" and egress.columns["bandwidth"] == {"rate": 1000}
    assert egress.columns["action"] == {"dscp": 26} and ingress.columns["match"] == 'outport == "port1"'
    assert ingress.columns["bandwidth"] == {"rate": 2000, "burst": 800} and ingress.columns["action"] == {}
    dscp_only = by_key(model.port_specs(port(qos=QosRules(dscp_mark=10))))
    assert dscp_only["qos:port1:egress"].columns["bandwidth"] == {} and "qos:port1:ingress" not in dscp_only
    # no port security: no groups, "unknown" addresses
    open_port = by_key(model.port_specs(port(port_security_enabled=False, security_group_ids=())))["lsp:port1"]
    assert open_port.columns["port_security"] == [] and "unknown" in open_port.columns["addresses"]
    assert open_port.parents == (("ls:n1", "ports"),)
    # extra DHCP options: a row of the port's own
    extra = by_key(model.port_specs(port(extra_dhcp_opts=(ExtraDhcpOpt("domain-name", "example.org"),
                                                          ExtraDhcpOpt("mtu", "1300")))))
    own = extra["dhcp:s1:port1"]
    assert own.columns["options"]["domain_name"] == '"example.org"' and own.columns["options"]["mtu"] == "1300"
    assert extra["lsp:port1"].refs["dhcpv4_options"] == "dhcp:s1:port1"
    # a trunk subport
    sub = by_key(model.port_specs(port(parent_port_id="parent", vlan_tag=101)))["lsp:port1"]
    assert sub.columns["parent_name"] == ["parent"] and sub.columns["tag_request"] == [101]
    # a floating IP's port is no switch port; a router's is a router-type port
    assert model.port_specs(port(device_owner="network:floatingip")) == []
    rp = by_key(model.port_specs(port(device_owner="network:router_gateway",
                                      port_security_enabled=False)))["lsp:port1"]
    assert rp.columns["type"] == "router" and rp.columns["options"] == {"router-port": "lrp-port1",
                                                                       "nat-addresses": "router"}


def test_router_and_floating_ip_rows() -> None:
    model = Model("chassis-1")
    ext = SubnetView(id="e1", network_id="ext", ip_version=4, cidr="172.24.4.0/24", gateway_ip="172.24.4.1",
                     enable_dhcp=False)
    model.subnet_specs(SUB)
    model.subnet_specs(ext)
    gw = port(id="gw", network_id="ext", fixed_ips=(FixedIP("e1", "172.24.4.10"),),
              device_owner="network:router_gateway", port_security_enabled=False)
    iface = port(id="if1", fixed_ips=(FixedIP("s1", "10.0.0.1"),), device_owner="network:router_interface",
                 port_security_enabled=False)
    router = RouterView(id="r1", project_id="p", name="r", admin_state_up=True, gateway_port=gw, enable_snat=True,
                        interfaces=(iface,), routes=())
    specs = by_key(model.router_specs(router))
    assert specs["lrp:if1"].columns["networks"] == ["10.0.0.1/24"] and specs["lrp:gw"].columns["name"] == "lrp-gw"
    assert specs["gwc:r1"].columns["chassis_name"] == "chassis-1"
    assert specs["gwc:r1"].parents == (("lrp:gw", "gateway_chassis"),)
    assert specs["route:r1:0.0.0.0/0"].columns["nexthop"] == "172.24.4.1"
    snat = specs["snat:r1:10.0.0.0/24"]
    assert snat.columns == {"type": "snat", "logical_ip": "10.0.0.0/24", "external_ip": "172.24.4.10",
                            "external_ids": {"neutron:router_name": "neutron-r1"}}
    no_snat = by_key(model.router_specs(RouterView(**{**router.__dict__, "enable_snat": False})))
    assert not [k for k in no_snat if k.startswith("snat:")]
    fip = FloatingIPView(id="f1", project_id="p", floating_ip_address="172.24.4.50", floating_network_id="ext",
                         router_id="r1", port_id="port1", fixed_ip_address="10.0.0.5",
                         port_forwardings=(PortForwardingView("pf", "tcp", "10.0.0.5", 22, 2222, "port1"),))
    fspecs = by_key(model.floating_ip_specs(fip))
    assert fspecs["nat:f1"].columns["type"] == "dnat_and_snat" and fspecs["nat:f1"].parents == (("lr:r1", "nat"),)
    lb = fspecs["lb:f1:tcp"]
    assert lb.columns["vips"] == {"172.24.4.50:2222": "10.0.0.5:22"} and lb.parents == (("lr:r1", "load_balancer"),)
    assert model.floating_ip_specs(FloatingIPView(**{**fip.__dict__, "router_id": None, "port_id": None})) == []
    with pytest.raises(UnknownSubnet):
        Model("c").router_specs(router)  # a model that never saw the subnets cannot size the ports
