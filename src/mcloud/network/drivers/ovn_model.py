"""The translation of the network service's views into OVN Northbound rows (``Spec``s).

Pure functions of the views (and of the subnets the driver has seen, for prefixes and DHCP),
named and tagged as Neutron's OVN driver does, so that an operator reading ``ovn-nbctl show``
finds what they expect:

- network -> Logical_Switch ``neutron-<id>`` (+ a ``localnet`` port ``provnet-<id>`` for flat
  and vlan provider networks, bound through ``ovn-bridge-mappings``);
- subnet with DHCP -> DHCP_Options (OVN native DHCP: lease, router, DNS, MTU, host routes as
  classless static routes; DHCPv6 for the dhcpv6 address modes);
- port -> Logical_Switch_Port named by the port id (addresses, port security with allowed
  address pairs, per-port DHCP_Options for extra_dhcp_opts, parent/tag for trunk subports,
  QoS rows for bandwidth limits and DSCP marking, membership of its security groups' port
  groups and of ``neutron_pg_drop``; a router's port becomes a ``router`` type port);
- security group -> Port_Group ``pg_<id>`` with one ACL per rule (allow-related, or
  allow-stateless for a stateless group; a remote group matches the address set OVN keeps for
  that group's port group); ports with port security sit in ``neutron_pg_drop``, whose two ACLs
  drop what no rule allows;
- router -> Logical_Router ``neutron-<id>`` with ``lrp-<port id>`` ports, the gateway port
  bound to this chassis (Gateway_Chassis), a default route via the external subnet's gateway,
  SNAT of each interface subnet to the gateway address, and the extra routes;
- floating IP -> a ``dnat_and_snat`` NAT row on its router; port forwardings -> a load
  balancer ``pf-floatingip-<id>-<protocol>`` on the router.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping

from mcloud.network.drivers.base import (
    FloatingIPView,
    NetworkView,
    PortView,
    RouterView,
    SecurityGroupRuleView,
    SecurityGroupView,
    SubnetView,
)
from mcloud.network.drivers.ovn_rows import Spec

DROP_PG = "neutron_pg_drop"
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
ROUTER_GATEWAY_OWNER = "network:router_gateway"
#: ports that are no logical switch port in OVN: a floating IP's address lives in NAT rows
NO_LSP_OWNERS = ("network:floatingip",)
ACL_PRIORITY = 1002
DROP_PRIORITY = 1001
QOS_PRIORITY = 2002
LEASE_TIME = "43200"

PROTOCOLS = {"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6-encap": 41, "ipv6-route": 43,
             "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58,
             "ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89, "pgm": 113, "vrrp": 112, "sctp": 132, "udplite": 136,
             "dccp": 33}

#: Neutron's extra_dhcp_opts names (and option numbers) -> OVN's, with OVN's value type
DHCP4_OPTIONS: dict[str, tuple[str, str]] = {
    "netmask": ("netmask", "ipv4"), "1": ("netmask", "ipv4"),
    "router": ("router", "ipv4"), "3": ("router", "ipv4"),
    "dns-server": ("dns_server", "ipv4"), "6": ("dns_server", "ipv4"),
    "log-server": ("log_server", "ipv4"), "7": ("log_server", "ipv4"),
    "lpr-server": ("lpr_server", "ipv4"), "9": ("lpr_server", "ipv4"),
    "domain-name": ("domain_name", "str"), "15": ("domain_name", "str"),
    "swap-server": ("swap_server", "ipv4"), "16": ("swap_server", "ipv4"),
    "ip-forward-enable": ("ip_forward_enable", "bool"), "19": ("ip_forward_enable", "bool"),
    "default-ttl": ("default_ttl", "uint8"), "23": ("default_ttl", "uint8"),
    "mtu": ("mtu", "uint16"), "26": ("mtu", "uint16"),
    "router-discovery": ("router_discovery", "bool"), "31": ("router_discovery", "bool"),
    "router-solicitation": ("router_solicitation", "ipv4"), "32": ("router_solicitation", "ipv4"),
    "nis-server": ("nis_server", "ipv4"), "41": ("nis_server", "ipv4"),
    "ntp-server": ("ntp_server", "ipv4"), "42": ("ntp_server", "ipv4"),
    "lease-time": ("lease_time", "uint32"), "51": ("lease_time", "uint32"),
    "server-id": ("server_id", "ipv4"), "54": ("server_id", "ipv4"),
    "T1": ("T1", "uint32"), "58": ("T1", "uint32"), "T2": ("T2", "uint32"), "59": ("T2", "uint32"),
    "tftp-server": ("tftp_server", "str"), "66": ("tftp_server", "str"),
    "bootfile-name": ("bootfile_name", "str"), "67": ("bootfile_name", "str"),
    "classless-static-route": ("classless_static_route", "routes"), "121": ("classless_static_route", "routes"),
    "ms-classless-static-route": ("ms_classless_static_route", "routes"),
    "249": ("ms_classless_static_route", "routes"),
    "tftp-server-address": ("tftp_server_address", "ipv4"), "150": ("tftp_server_address", "ipv4"),
    "wpad": ("wpad", "str"), "252": ("wpad", "str"),
    "path-prefix": ("path_prefix", "str"), "210": ("path_prefix", "str"),
    "domain-search": ("domain_search_list", "str"), "119": ("domain_search_list", "str"),
}
DHCP6_OPTIONS: dict[str, tuple[str, str]] = {
    "dns-server": ("dns_server", "ipv6"), "23": ("dns_server", "ipv6"),
    "domain-search": ("domain_search", "str"), "24": ("domain_search", "str"),
    "bootfile-url": ("bootfile_name", "str"), "59": ("bootfile_name", "str"),
}


class UnknownSubnet(LookupError):
    """A view names a subnet the driver has not been given (a sync brings it)."""


# -- names ------------------------------------------------------------------------------------

def ls_name(network_id: str) -> str:
    return f"neutron-{network_id}"


def lr_name(router_id: str) -> str:
    return f"neutron-{router_id}"


def lrp_name(port_id: str) -> str:
    return f"lrp-{port_id}"


def pg_name(group_id: str) -> str:
    return "pg_" + group_id.replace("-", "_")


def server_mac(subnet_id: str) -> str:
    """The DHCP server's MAC of a subnet: stable, unicast, Neutron's fa:16:3e prefix."""
    digest = hashlib.sha256(subnet_id.encode()).digest()
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in digest[:3])


def requested_chassis(port: PortView) -> dict[str, str]:
    """The options that pin a bound port to its host's chassis, as Neutron's OVN driver writes
    them: ``requested-chassis`` = ``binding:host_id`` (OVN matches a chassis by its name or its
    hostname), so only that chassis claims the port (an unbound port: any chassis that has it
    plugged). During a live migration (``binding:profile`` ``migrating_to``) the destination is
    requested too, and is let through only once the guest announces itself there by RARP."""
    if not port.host_id:
        return {}
    options = {"requested-chassis": port.host_id}
    destination = port.profile.get("migrating_to") if isinstance(port.profile, dict) else None
    if isinstance(destination, str) and destination and destination != port.host_id:
        options["requested-chassis"] = f"{port.host_id},{destination}"
        options["activation-strategy"] = "rarp"
    return options


def _braces(values: Iterable[str]) -> str:
    values = list(values)
    return values[0] if len(values) == 1 else "{" + ", ".join(values) + "}"


def _format(kind: str, value: str) -> str:
    """An extra_dhcp_opt value in OVN's syntax."""
    value = value.strip()
    if kind in ("ipv4", "ipv6"):
        items = [v.strip() for v in value.strip("{}").split(",") if v.strip()]
        return _braces(items)
    if kind == "str":
        return value if value.startswith('"') else f'"{value}"'
    if kind == "bool":
        return "1" if value.lower() in ("1", "true", "yes") else "0"
    if kind == "routes":
        return value if value.startswith("{") else "{" + value + "}"
    return value


class Model:
    """Views -> Specs. Keeps the subnets it has seen (a port's prefixes and DHCP need them)."""

    def __init__(self, chassis: str):
        self.chassis = chassis
        self.subnets: dict[str, SubnetView] = {}
        self.networks: dict[str, NetworkView] = {}

    def subnet(self, subnet_id: str) -> SubnetView:
        try:
            return self.subnets[subnet_id]
        except KeyError:
            raise UnknownSubnet(subnet_id) from None

    def _prefix(self, subnet_id: str, address: str) -> str:
        return f"{address}/{ipaddress.ip_network(self.subnet(subnet_id).cidr).prefixlen}"

    # -- global -------------------------------------------------------------------------------

    def global_specs(self, create_only: bool = False) -> list[Spec]:
        pg = Spec("Port_Group", "pg:drop", "global", {"name": DROP_PG, "external_ids": {}}, create_only=create_only)
        acls = [Spec("ACL", f"acl:drop:{direction}", "global", {
            "priority": DROP_PRIORITY, "direction": direction, "action": "drop", "log": False,
            "match": f"{port} == @{DROP_PG} && ip", "external_ids": {}},
            parents=(("pg:drop", "acls"),), create_only=create_only)
            for direction, port in (("from-lport", "inport"), ("to-lport", "outport"))]
        return [pg, *acls]

    # -- networks and subnets -----------------------------------------------------------------

    def network_specs(self, network: NetworkView) -> list[Spec]:
        self.networks[network.id] = network
        owner = f"network:{network.id}"
        specs = [Spec("Logical_Switch", f"ls:{network.id}", owner, {
            "name": ls_name(network.id),
            "other_config": {"mcast_snoop": "false", "mcast_flood_unregistered": "false"},
            "external_ids": {"neutron:network_name": network.name, "neutron:mtu": str(network.mtu),
                             "neutron:availability_zone_hints": ""}})]
        if network.network_type in ("flat", "vlan") and network.physical_network:
            tag = [network.segmentation_id] if network.network_type == "vlan" and network.segmentation_id else []
            specs.append(Spec("Logical_Switch_Port", f"localnet:{network.id}", owner, {
                "name": f"provnet-{network.id}", "type": "localnet", "addresses": ["unknown"],
                "options": {"network_name": network.physical_network, "mcast_flood": "false",
                            "mcast_flood_reports": "true"},
                "tag_request": tag, "external_ids": {}},
                parents=((f"ls:{network.id}", "ports"),)))
        return specs

    def subnet_specs(self, subnet: SubnetView) -> list[Spec]:
        self.subnets[subnet.id] = subnet
        options = self.dhcp_options(subnet)
        if options is None:
            return []
        return [Spec("DHCP_Options", f"dhcp:{subnet.id}", f"subnet:{subnet.id}", {
            "cidr": str(ipaddress.ip_network(subnet.cidr, strict=False)), "options": options,
            "external_ids": {"subnet_id": subnet.id, "neutron:network_id": subnet.network_id}})]

    def dhcp_options(self, subnet: SubnetView, extra: Mapping[str, str] | None = None) -> dict[str, str] | None:
        """OVN's DHCP options of a subnet (None: no DHCP on it), with a port's extras over them."""
        if not subnet.enable_dhcp:
            return None
        net = ipaddress.ip_network(subnet.cidr, strict=False)
        if subnet.ip_version == 4:
            server = subnet.gateway_ip or str(next(net.hosts()))
            options = {"lease_time": LEASE_TIME, "server_id": server, "server_mac": server_mac(subnet.id),
                       "mtu": str(subnet.mtu)}
            if subnet.gateway_ip:
                options["router"] = subnet.gateway_ip
            dns = [d for d in subnet.dns_nameservers if ipaddress.ip_address(d).version == 4]
            if dns:
                options["dns_server"] = "{" + ", ".join(dns) + "}"
            routes = [f"{r.destination},{r.nexthop}" for r in subnet.host_routes
                      if ipaddress.ip_network(r.destination, strict=False).version == 4]
            if routes:
                if subnet.gateway_ip:  # a client that takes classless routes ignores the router option
                    routes.append(f"0.0.0.0/0,{subnet.gateway_ip}")
                options["classless_static_route"] = "{" + ", ".join(routes) + "}"
            table = DHCP4_OPTIONS
        else:
            if subnet.ipv6_address_mode not in ("dhcpv6-stateful", "dhcpv6-stateless"):
                return None
            options = {"server_id": server_mac(subnet.id)}
            if subnet.ipv6_address_mode == "dhcpv6-stateless":
                options["dhcpv6_stateless"] = "true"
            dns = [d for d in subnet.dns_nameservers if ipaddress.ip_address(d).version == 6]
            if dns:
                options["dns_server"] = "{" + ", ".join(dns) + "}"
            table = DHCP6_OPTIONS
        for name, value in (extra or {}).items():
            if name in table:
                ovn_name, kind = table[name]
                options[ovn_name] = _format(kind, value)
        return options

    # -- ports --------------------------------------------------------------------------------

    def port_specs(self, port: PortView) -> list[Spec]:
        owner = f"port:{port.id}"
        if port.device_owner in NO_LSP_OWNERS:
            return []
        ls_key = f"ls:{port.network_id}"
        router_port = port.device_owner in ROUTER_INTERFACE_OWNERS or port.device_owner == ROUTER_GATEWAY_OWNER
        ips = [ip.ip_address for ip in port.fixed_ips]
        own = " ".join([port.mac_address, *ips])
        external_ids = {
            "neutron:port_name": port.name, "neutron:device_id": port.device_id,
            "neutron:device_owner": port.device_owner, "neutron:project_id": port.project_id,
            "neutron:network_name": ls_name(port.network_id),
            "neutron:security_group_ids": " ".join(port.security_group_ids),
            "neutron:host_id": port.host_id,
        }
        cidrs = [self._prefix(ip.subnet_id, ip.ip_address) for ip in port.fixed_ips if ip.subnet_id in self.subnets]
        external_ids["neutron:cidrs"] = " ".join(cidrs)
        specs: list[Spec] = []
        parents: list[tuple[str, str]] = [(ls_key, "ports")]
        refs: dict[str, str | None] = {}
        if router_port:
            options = {"router-port": lrp_name(port.id)}
            if port.device_owner == ROUTER_GATEWAY_OWNER:
                options["nat-addresses"] = "router"
            columns = {"type": "router", "addresses": ["router"], "port_security": [], "options": options}
        else:
            addresses = [own]
            port_security: list[str] = []
            if port.port_security_enabled:
                port_security = [own]
                by_mac: dict[str, list[str]] = {}
                for pair in port.allowed_address_pairs:
                    by_mac.setdefault(pair.mac_address or port.mac_address, []).append(pair.ip_address)
                port_security += [" ".join([mac, *addrs]) for mac, addrs in by_mac.items()]
                specs += self.global_specs(create_only=True)
                parents.append(("pg:drop", "ports"))
                for group_id in port.security_group_ids:
                    specs.append(Spec("Port_Group", f"pg:{group_id}", f"sg:{group_id}",
                                      {"name": pg_name(group_id), "external_ids": {
                                          "neutron:security_group_id": group_id}}, create_only=True))
                    parents.append((f"pg:{group_id}", "ports"))
            else:
                addresses.append("unknown")
            columns = {"type": "", "addresses": addresses, "port_security": port_security,
                       "options": {"mcast_flood_reports": "true", **requested_chassis(port)}}
            refs = self._port_dhcp(port, specs)
        columns.update({
            "name": port.id, "enabled": [port.admin_state_up], "external_ids": external_ids,
            "parent_name": [port.parent_port_id] if port.parent_port_id else [],
            "tag_request": [port.vlan_tag] if port.parent_port_id and port.vlan_tag is not None else [],
        })
        lsp = Spec("Logical_Switch_Port", f"lsp:{port.id}", owner, columns, parents=tuple(parents), refs=refs)
        placeholders = [s for s in specs if s.table != "DHCP_Options"]
        dhcp = [s for s in specs if s.table == "DHCP_Options"]
        return [*placeholders, lsp, *dhcp, *self._qos(port, ls_key)]

    def _port_dhcp(self, port: PortView, specs: list[Spec]) -> dict[str, str | None]:
        """The port's DHCPv4/v6 references; a port with extra_dhcp_opts gets rows of its own."""
        refs: dict[str, str | None] = {"dhcpv4_options": None, "dhcpv6_options": None}
        for version, column in ((4, "dhcpv4_options"), (6, "dhcpv6_options")):
            fixed = next((ip for ip in port.fixed_ips if ipaddress.ip_address(ip.ip_address).version == version), None)
            if fixed is None:
                continue
            extra = {o.opt_name: o.opt_value for o in port.extra_dhcp_opts if o.ip_version == version}
            if not extra:
                refs[column] = f"dhcp:{fixed.subnet_id}"
                continue
            if any(o.opt_name in ("dhcp_disabled", "dhcp-disabled") and o.opt_value.lower() == "true"
                   for o in port.extra_dhcp_opts if o.ip_version == version):
                continue
            subnet = self.subnet(fixed.subnet_id)
            options = self.dhcp_options(subnet, extra)
            if options is None:
                continue
            key = f"dhcp:{subnet.id}:{port.id}"
            specs.append(Spec("DHCP_Options", key, f"port:{port.id}", {
                "cidr": str(ipaddress.ip_network(subnet.cidr, strict=False)), "options": options,
                "external_ids": {"subnet_id": subnet.id, "port_id": port.id}}))
            refs[column] = key
        return refs

    def _qos(self, port: PortView, ls_key: str) -> list[Spec]:
        """QoS rows of a port, as Neutron's OVN driver writes them: one per direction from the
        guest's point of view (egress = ``from-lport`` matching ``inport``, ingress = ``to-lport``
        matching ``outport``), a bandwidth limit (kbps; a burst only when the rule has one) and
        DSCP marking (egress only). ovn-northd turns them into ``set_meter`` and ``ip.dscp``
        actions; ovn-controller into OpenFlow meters, which the userspace datapath also runs."""
        qos = port.qos
        if qos is None or port.device_owner in ROUTER_INTERFACE_OWNERS or port.device_owner == ROUTER_GATEWAY_OWNER:
            return []
        specs = []
        owner = f"port:{port.id}"
        ids = {"neutron:port_id": port.id}
        for direction, rate, burst, dscp in (
                ("egress", qos.egress_max_kbps, qos.egress_max_burst_kbps, qos.dscp_mark),
                ("ingress", qos.ingress_max_kbps, qos.ingress_max_burst_kbps, None)):
            bandwidth = {"rate": rate, **({"burst": burst} if burst else {})} if rate else {}
            if not bandwidth and dscp is None:
                continue
            egress = direction == "egress"
            specs.append(Spec("QoS", f"qos:{port.id}:{direction}", owner, {
                "priority": QOS_PRIORITY, "direction": "from-lport" if egress else "to-lport",
                "match": f'{"inport" if egress else "outport"} == "{port.id}"', "bandwidth": bandwidth,
                "action": {"dscp": dscp} if dscp is not None else {}, "external_ids": ids},
                parents=((ls_key, "qos_rules"),)))
        return specs

    # -- security groups ----------------------------------------------------------------------

    def security_group_specs(self, group: SecurityGroupView) -> list[Spec]:
        owner = f"sg:{group.id}"
        key = f"pg:{group.id}"
        specs = [Spec("Port_Group", key, owner, {"name": pg_name(group.id), "external_ids": {
            "neutron:security_group_id": group.id}})]
        action = "allow-related" if group.stateful else "allow-stateless"
        for rule in group.rules:
            specs.append(Spec("ACL", f"acl:{rule.id}", owner, {
                "priority": ACL_PRIORITY, "direction": "to-lport" if rule.direction == "ingress" else "from-lport",
                "match": acl_match(group.id, rule), "action": action, "log": False,
                "external_ids": {"neutron:security_group_rule_id": rule.id}}, parents=((key, "acls"),)))
        return specs

    # -- routers and floating IPs -------------------------------------------------------------

    def router_specs(self, router: RouterView) -> list[Spec]:
        owner = f"router:{router.id}"
        lr_key = f"lr:{router.id}"
        gw = router.gateway_port
        specs = [Spec("Logical_Router", lr_key, owner, {
            "name": lr_name(router.id), "enabled": [router.admin_state_up],
            "options": {"always_learn_from_arp_request": "false", "dynamic_neigh_routers": "true"},
            "external_ids": {"neutron:router_name": router.name, "neutron:gw_port_id": gw.id if gw else "",
                             "neutron:project_id": router.project_id}})]
        for port in router.interfaces:
            specs.append(self._lrp(router, port, lr_key))
        if gw is not None:
            lrp = self._lrp(router, gw, lr_key)
            specs.append(lrp)
            specs.append(Spec("Gateway_Chassis", f"gwc:{router.id}", owner, {
                "name": f"{lrp_name(gw.id)}_{self.chassis}", "chassis_name": self.chassis, "priority": 1,
                "external_ids": {}}, parents=((lrp.key, "gateway_chassis"),)))
            gateway_ips = {}
            for fixed in gw.fixed_ips:
                subnet = self.subnet(fixed.subnet_id)
                gateway_ips.setdefault(subnet.ip_version, fixed.ip_address)
                if subnet.gateway_ip:
                    default = "0.0.0.0/0" if subnet.ip_version == 4 else "::/0"
                    specs.append(Spec("Logical_Router_Static_Route", f"route:{router.id}:{default}", owner, {
                        "ip_prefix": default, "nexthop": subnet.gateway_ip,
                        "external_ids": {"neutron:is_ext_gw": "true", "neutron:subnet_id": subnet.id}},
                        parents=((lr_key, "static_routes"),)))
            if router.enable_snat and 4 in gateway_ips:
                for port in router.interfaces:
                    for fixed in port.fixed_ips:
                        subnet = self.subnet(fixed.subnet_id)
                        if subnet.ip_version != 4:
                            continue
                        cidr = str(ipaddress.ip_network(subnet.cidr, strict=False))
                        specs.append(Spec("NAT", f"snat:{router.id}:{cidr}", owner, {
                            "type": "snat", "logical_ip": cidr, "external_ip": gateway_ips[4],
                            "external_ids": {"neutron:router_name": lr_name(router.id)}},
                            parents=((lr_key, "nat"),)))
        for route in router.routes:
            specs.append(Spec("Logical_Router_Static_Route", f"route:{router.id}:{route.destination}:{route.nexthop}",
                              owner, {"ip_prefix": route.destination, "nexthop": route.nexthop,
                                      "external_ids": {"neutron:is_static_route": "true"}},
                              parents=((lr_key, "static_routes"),)))
        # one NAT per external address and cidr: the dict keeps the last (a duplicate interface)
        return list({s.key: s for s in specs}.values())

    def _lrp(self, router: RouterView, port: PortView, lr_key: str) -> Spec:
        networks = [self._prefix(ip.subnet_id, ip.ip_address) for ip in port.fixed_ips]
        ra: dict[str, str] = {}
        for ip in port.fixed_ips:
            subnet = self.subnet(ip.subnet_id)
            if subnet.ip_version == 6 and subnet.ipv6_ra_mode and port.device_owner != ROUTER_GATEWAY_OWNER:
                ra = {"address_mode": subnet.ipv6_ra_mode.replace("-", "_"), "send_periodic": "true",
                      "mtu": str(subnet.mtu)}
        return Spec("Logical_Router_Port", f"lrp:{port.id}", f"router:{router.id}", {
            "name": lrp_name(port.id), "mac": port.mac_address, "networks": networks, "enabled": [True],
            "ipv6_ra_configs": ra,
            "external_ids": {"neutron:router_name": router.id, "neutron:network_name": ls_name(port.network_id),
                             "neutron:subnet_ids": " ".join(ip.subnet_id for ip in port.fixed_ips),
                             "neutron:is_ext_gw": "true" if port.device_owner == ROUTER_GATEWAY_OWNER else "false"}},
            parents=((lr_key, "ports"),))

    def floating_ip_specs(self, fip: FloatingIPView) -> list[Spec]:
        if fip.router_id is None:
            return []
        owner = f"fip:{fip.id}"
        lr_key = f"lr:{fip.router_id}"
        specs = []
        if fip.port_id and fip.fixed_ip_address:
            specs.append(Spec("NAT", f"nat:{fip.id}", owner, {
                "type": "dnat_and_snat", "external_ip": fip.floating_ip_address, "logical_ip": fip.fixed_ip_address,
                "external_ids": {"neutron:fip_id": fip.id, "neutron:fip_port_id": fip.port_id,
                                 "neutron:router_name": lr_name(fip.router_id),
                                 "neutron:fip_network_id": fip.floating_network_id}},
                parents=((lr_key, "nat"),)))
        by_protocol: dict[str, dict[str, str]] = {}
        for pf in fip.port_forwardings:
            vip = f"{fip.floating_ip_address}:{pf.external_port}" if ":" not in fip.floating_ip_address \
                else f"[{fip.floating_ip_address}]:{pf.external_port}"
            by_protocol.setdefault(pf.protocol, {})[vip] = f"{pf.internal_ip_address}:{pf.internal_port}"
        for protocol, vips in sorted(by_protocol.items()):
            specs.append(Spec("Load_Balancer", f"lb:{fip.id}:{protocol}", owner, {
                "name": f"pf-floatingip-{fip.id}-{protocol}", "protocol": [protocol], "vips": vips,
                "external_ids": {"neutron:device_owner": "port_forwarding_plugin", "neutron:fip_id": fip.id,
                                 "neutron:router_name": lr_name(fip.router_id)}},
                parents=((lr_key, "load_balancer"),)))
        return specs


def acl_match(group_id: str, rule: SecurityGroupRuleView) -> str:
    """The OVN match of a security group rule (as Neutron's OVN driver writes it)."""
    ingress = rule.direction == "ingress"
    ip = "ip4" if rule.ethertype == "IPv4" else "ip6"
    parts = [f"{'outport' if ingress else 'inport'} == @{pg_name(group_id)}", ip]
    if rule.remote_ip_prefix and ipaddress.ip_network(rule.remote_ip_prefix, strict=False).prefixlen != 0:
        prefix = str(ipaddress.ip_network(rule.remote_ip_prefix, strict=False))
        parts.append(f"{ip}.{'src' if ingress else 'dst'} == {prefix}")
    elif rule.remote_group_id:
        parts.append(f"{ip}.{'src' if ingress else 'dst'} == ${pg_name(rule.remote_group_id)}_{ip}")
    protocol = (rule.protocol or "").lower()
    if protocol in ("", "any"):
        return " && ".join(parts)
    number = int(protocol) if protocol.isdigit() else PROTOCOLS.get(protocol)
    name = {6: "tcp", 17: "udp", 132: "sctp"}.get(number or -1)
    if name is not None:
        parts.append(name)
        low, high = rule.port_range_min, rule.port_range_max
        if low is not None and high is not None and low == high:
            parts.append(f"{name}.dst == {low}")
        else:
            if low is not None:
                parts.append(f"{name}.dst >= {low}")
            if high is not None:
                parts.append(f"{name}.dst <= {high}")
    elif number in (1, 58):
        icmp = "icmp4" if ip == "ip4" else "icmp6"
        parts.append(icmp)
        if rule.port_range_min is not None:
            parts.append(f"{icmp}.type == {rule.port_range_min}")
            if rule.port_range_max is not None:
                parts.append(f"{icmp}.code == {rule.port_range_max}")
    elif number is not None:
        parts.append(f"ip.proto == {number}")
    else:
        raise ValueError(f"unknown IP protocol {rule.protocol!r}")
    return " && ".join(parts)
