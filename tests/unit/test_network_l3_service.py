"""The L3 part of the network service called from Python on SQLite with the fake data plane:
routers with real gateway and interface ports, floating IPs NATed through the router that
reaches them, the per-project default security group and Neutron's rule checks, QoS reaching
ports through their network, trunks tagging subports — and what the driver is handed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mcloud import migrations
from mcloud.core.db import Database
from mcloud.network.config import NetworkConfig
from mcloud.network.errors_core import NeutronError
from mcloud.network.service import Caller, NetworkService

ADMIN = Caller("admin-project", True, None)


@pytest.fixture(scope="module")
async def svc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NetworkService]:
    data = Path(tmp_path_factory.mktemp("l3"))
    url = f"sqlite:///{data / 'mcloud.db'}"
    migrations.upgrade(url)
    db = Database(url)
    service = NetworkService(db, NetworkConfig(driver="fake"), data, None)  # type: ignore[arg-type]
    await service.start()
    yield service
    await service.close()
    await service.db.dispose()


class World:
    """A project with a network, subnet and port, and an external network with a subnet."""

    def __init__(self, svc: NetworkService, project: str):
        self.svc = svc
        self.me = Caller(project, False, None)
        self.project = project

    async def setup(self, cidr: str = "10.0.0.0/24") -> World:
        svc = self.svc
        self.ext = (await svc.create_networks(ADMIN, [{"name": "public", "router:external": True}]))[0]
        self.ext_subnet = (await svc.create_subnets(ADMIN, [{"network_id": self.ext["id"], "ip_version": 4,
                                                             "cidr": "172.24.4.0/24"}]))[0]
        self.net = (await svc.create_networks(self.me, [{"name": "private"}]))[0]
        self.subnet = (await svc.create_subnets(self.me, [{"network_id": self.net["id"], "ip_version": 4,
                                                           "cidr": cidr}]))[0]
        self.port = (await svc.create_ports(self.me, [{"network_id": self.net["id"]}]))[0]
        return self

    async def call(self, method: str, *args: Any, caller: Caller | None = None) -> Any:
        async with self.svc.write() as session:
            return await getattr(self.svc.l3, method)(session, caller or self.me, *args)


async def raises(status: int, type_: str, coro: Any) -> NeutronError:
    with pytest.raises(NeutronError) as info:
        await coro
    assert (info.value.status, info.value.type) == (status, type_), info.value.message
    return info.value


async def test_default_security_group_is_made_once_with_neutrons_rules(svc):
    w = await World(svc, "p-default").setup()
    groups = (await svc.l3.list_security_groups(w.me, {})).items
    assert [g["name"] for g in groups] == ["default"]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in groups[0]["security_group_rules"]}
    gid = groups[0]["id"]
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None), ("ingress", "IPv4", gid),
                     ("ingress", "IPv6", gid)}
    assert w.port["security_groups"] == [gid]
    assert svc.driver.ports[w.port["id"]].security_group_ids == (gid,)
    assert svc.driver.security_groups[gid].rules
    await raises(409, "SecurityGroupDefaultAlreadyExists",
                 w.call("create_security_group", {"project_id": w.project, "name": "Default"}))
    await raises(409, "SecurityGroupInUse", w.call("delete_security_group", gid))
    lonely = Caller("p-lonely", False, None)
    [alone] = (await svc.l3.list_security_groups(lonely, {})).items
    await raises(409, "SecurityGroupCannotRemoveDefault", w.call("delete_security_group", alone["id"], caller=lonely))


async def test_rules_are_normalised_and_duplicates_refused(svc):
    w = await World(svc, "p-rules").setup()
    gid = await w.call("create_security_group", {"project_id": w.project, "name": "web"})

    def rule(**kw: Any) -> dict[str, Any]:
        return {"project_id": w.project, "security_group_id": gid, "direction": "ingress", "ethertype": "IPv4",
                "protocol": None, "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
                "remote_group_id": None, **kw}

    [rid] = await w.call("create_security_group_rules", [rule(protocol="tcp", port_range_min=1, port_range_max=65535,
                                                              remote_ip_prefix="10.1.2.3/32")])
    async with svc.db.read() as session:
        made = await svc.l3.get_security_group_rule(session, w.me, rid)
    assert (made["port_range_min"], made["port_range_max"], made["normalized_cidr"]) == (None, None, "10.1.2.3/32")
    # tcp by number is the same rule as tcp by name
    await raises(409, "SecurityGroupRuleExists",
                 w.call("create_security_group_rules", [rule(protocol="6", remote_ip_prefix="10.1.2.3/32")]))
    [v6] = await w.call("create_security_group_rules", [rule(ethertype="IPv6", protocol="icmp")])
    async with svc.db.read() as session:
        assert (await svc.l3.get_security_group_rule(session, w.me, v6))["protocol"] == "ipv6-icmp"
    await raises(400, "SecurityGroupInvalidPortRange",
                 w.call("create_security_group_rules", [rule(protocol="tcp", port_range_min=80, port_range_max=79)]))
    await raises(400, "SecurityGroupMissingIcmpType",
                 w.call("create_security_group_rules", [rule(protocol="icmp", port_range_max=6)]))
    await raises(400, "SecurityGroupRuleParameterConflict",
                 w.call("create_security_group_rules", [rule(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8")]))
    await raises(404, "SecurityGroupNotFound",
                 w.call("create_security_group_rules", [rule(remote_group_id="bad_group_id")]))
    view = svc.driver.security_groups[gid]
    assert {r.id for r in view.rules} >= {rid, v6}


async def test_router_gateway_interfaces_and_their_conflicts(svc):
    w = await World(svc, "p-router").setup()
    rid = await w.call("create_router", {"project_id": w.project, "name": "r",
                                         "external_gateway_info": {"network_id": w.ext["id"]}})
    async with svc.db.read() as session:
        router = await svc.l3.get_router(session, w.me, rid)
    gw = router["external_gateway_info"]
    assert gw["network_id"] == w.ext["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["subnet_id"] == w.ext_subnet["id"]
    iface = await w.call("add_router_interface", rid, {"subnet_id": w.subnet["id"]})
    assert iface["subnet_id"] == w.subnet["id"] and iface["subnet_ids"] == [w.subnet["id"]]
    port = await svc.show_port(w.me, iface["port_id"])
    assert (port["device_owner"], port["device_id"]) == ("network:router_interface", rid)
    assert port["fixed_ips"][0]["ip_address"] == w.subnet["gateway_ip"] and port["security_groups"] == []
    view = svc.driver.routers[rid]
    assert view.gateway_port is not None and view.enable_snat
    assert [p.id for p in view.interfaces] == [iface["port_id"]]
    # the same subnet twice, or one that overlaps: 400; deleting the router or its port: 409
    await raises(400, "BadRequest", w.call("add_router_interface", rid, {"subnet_id": w.subnet["id"]}))
    other = (await svc.create_networks(w.me, [{"name": "other"}]))[0]
    overlapping = (await svc.create_subnets(w.me, [{"network_id": other["id"], "ip_version": 4,
                                                    "cidr": "10.0.0.0/25"}]))[0]
    await raises(400, "BadRequest", w.call("add_router_interface", rid, {"subnet_id": overlapping["id"]}))
    await raises(409, "RouterInUse", w.call("delete_router", rid))
    await raises(409, "L3PortInUse", svc.delete_port(w.me, iface["port_id"]))
    await raises(409, "SubnetInUse", svc.delete_subnet(w.me, w.subnet["id"]))
    # routes must go through a connected nexthop
    await raises(400, "InvalidRoutes", w.call("update_router", rid, {"routes": [
        {"destination": "192.168.9.0/24", "nexthop": "10.9.9.9"}]}))
    await w.call("update_router", rid, {"routes": [{"destination": "192.168.9.0/24", "nexthop": "10.0.0.9"}]})
    assert [(r.destination, r.nexthop) for r in svc.driver.routers[rid].routes] == [("192.168.9.0/24", "10.0.0.9")]
    await raises(409, "RouterInterfaceInUse", w.call("remove_router_interface", rid, {"subnet_id": w.subnet["id"]}))
    await w.call("update_router", rid, {"routes": []})
    gone = await w.call("remove_router_interface", rid, {"subnet_id": w.subnet["id"]})
    assert gone["port_id"] == iface["port_id"]
    await raises(404, "PortNotFound", svc.show_port(w.me, iface["port_id"]))
    await w.call("delete_router", rid)
    assert rid not in svc.driver.routers


async def test_floating_ip_needs_a_router_and_follows_its_port(svc):
    w = await World(svc, "p-fip").setup()
    await raises(400, "BadRequest", w.call("create_floatingip", {"project_id": w.project,
                                                                 "floating_network_id": w.net["id"]}))
    # no router connects the port's subnet to the external network yet
    await raises(404, "ExternalGatewayForFloatingIPNotFound", w.call("create_floatingip", {
        "project_id": w.project, "floating_network_id": w.ext["id"], "port_id": w.port["id"]}))
    rid = await w.call("create_router", {"project_id": w.project, "external_gateway_info": {"network_id": w.ext["id"]}})
    await w.call("add_router_interface", rid, {"subnet_id": w.subnet["id"]})
    fid = await w.call("create_floatingip", {"project_id": w.project, "floating_network_id": w.ext["id"],
                                             "port_id": w.port["id"]})
    async with svc.db.read() as session:
        fip = await svc.l3.get_floatingip(session, w.me, fid)
    assert (fip["router_id"], fip["status"], fip["fixed_ip_address"]) == (rid, "ACTIVE", w.port["fixed_ips"][0]["ip_address"])
    assert fip["port_details"]["mac_address"] == w.port["mac_address"]
    nat = svc.driver.floating_ips[fid]
    assert (nat.router_id, nat.port_id, nat.port_mac) == (rid, w.port["id"], w.port["mac_address"])
    # the gateway is needed by the floating IP; the interface too
    await raises(409, "RouterExternalGatewayInUseByFloatingIp",
                 w.call("update_router", rid, {"external_gateway_info": {}}))
    await raises(409, "RouterInterfaceInUseByFloatingIP",
                 w.call("remove_router_interface", rid, {"subnet_id": w.subnet["id"]}))
    # deleting the port disassociates the floating IP
    await svc.delete_port(w.me, w.port["id"])
    async with svc.db.read() as session:
        fip = await svc.l3.get_floatingip(session, w.me, fid)
    assert (fip["port_id"], fip["router_id"], fip["status"]) == (None, None, "DOWN")
    assert svc.driver.floating_ips[fid].port_id is None
    await w.call("delete_floatingip", fid)
    assert fid not in svc.driver.floating_ips


async def test_qos_reaches_ports_through_their_network(svc):
    w = await World(svc, "p-qos").setup()
    pid = await w.call("create_qos_policy", {"project_id": w.project, "name": "gold"})
    await svc.update_network(w.me, w.net["id"], {"qos_policy_id": pid})
    await w.call("create_qos_rule", pid, "bandwidth_limit", {"max_kbps": 1000, "max_burst_kbps": 100})
    await w.call("create_qos_rule", pid, "dscp_marking", {"dscp_mark": 26})
    qos = svc.driver.ports[w.port["id"]].qos
    assert qos is not None and (qos.egress_max_kbps, qos.egress_max_burst_kbps, qos.dscp_mark) == (1000, 100, 26)
    port = await svc.show_port(w.me, w.port["id"])
    assert (port["qos_policy_id"], port["qos_network_policy_id"]) == (None, pid)
    await raises(409, "QoSRulesConflict", w.call("create_qos_rule", pid, "bandwidth_limit", {"max_kbps": 5}))
    await raises(409, "QosPolicyInUse", w.call("delete_qos_policy", pid))
    await svc.update_network(w.me, w.net["id"], {"qos_policy_id": None})
    assert svc.driver.ports[w.port["id"]].qos is None
    await w.call("delete_qos_policy", pid)


async def test_trunk_tags_subports_and_keeps_its_ports(svc):
    w = await World(svc, "p-trunk").setup()
    sub = (await svc.create_ports(w.me, [{"network_id": w.net["id"]}]))[0]
    tid = await w.call("create_trunk", {"project_id": w.project, "port_id": w.port["id"],
                                        "sub_ports": [{"port_id": sub["id"], "segmentation_type": "vlan",
                                                       "segmentation_id": 101}]})
    view = svc.driver.ports[sub["id"]]
    assert (view.parent_port_id, view.vlan_tag, view.device_owner) == (w.port["id"], 101, "trunk:subport")
    parent = await svc.show_port(w.me, w.port["id"])
    assert parent["trunk_details"]["trunk_id"] == tid
    await raises(409, "PortInUseAsTrunkParent", svc.delete_port(w.me, w.port["id"]))
    await raises(409, "PortInUseAsSubPort", svc.delete_port(w.me, sub["id"]))
    other = (await svc.create_ports(w.me, [{"network_id": w.net["id"]}]))[0]
    await raises(409, "DuplicateSubPort", w.call("change_subports", tid, {"sub_ports": [
        {"port_id": other["id"], "segmentation_type": "vlan", "segmentation_id": 101}]}, True))
    await w.call("change_subports", tid, {"sub_ports": [{"port_id": sub["id"]}]}, False)
    assert svc.driver.ports[sub["id"]].parent_port_id is None
    await w.call("delete_trunk", tid)
    await svc.delete_port(w.me, w.port["id"])


async def test_another_project_sees_none_of_it(svc):
    w = await World(svc, "p-owner").setup()
    rid = await w.call("create_router", {"project_id": w.project})
    gid = await w.call("create_security_group", {"project_id": w.project, "name": "mine"})
    eve = Caller("p-eve", False, None)
    await raises(404, "RouterNotFound", w.call("update_router", rid, {"name": "x"}, caller=eve))
    await raises(404, "SecurityGroupNotFound", w.call("delete_security_group", gid, caller=eve))
    assert gid not in {g["id"] for g in (await svc.l3.list_security_groups(eve, {})).items}
    # nor can it put its port in the owner's group
    eve_net = (await svc.create_networks(eve, [{"name": "eve"}]))[0]
    await raises(404, "SecurityGroupNotFound", svc.create_ports(eve, [{"network_id": eve_net["id"],
                                                                       "security_groups": [gid]}]))
