"""Routers, floating IPs, security groups, QoS and trunks through the real `openstack` CLI against
a live `mcloud up`: create, list, set, unset, delete, as the admin and as the demo project."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Client, unique

pytestmark = pytest.mark.e2e
_nets = itertools.count(1)


@pytest.fixture(scope="module")
def public(cli: Client) -> Iterator[dict[str, Any]]:
    """An external network with a subnet, made by the admin."""
    name = unique("public")
    net = cli.json("network", "create", "--external", name)
    n = next(_nets)
    subnet = cli.json("subnet", "create", "--network", name, "--subnet-range", f"172.29.{n}.0/24", unique("pub"))
    yield {"network": net, "subnet": subnet}
    cli.run("subnet", "delete", subnet["id"], check=False)
    cli.run("network", "delete", net["id"], check=False)


def private(cli: Client, cloud: str = "mcloud-demo") -> tuple[dict[str, Any], dict[str, Any]]:
    n = next(_nets)
    net = cli.json("network", "create", unique("priv"), cloud=cloud)
    subnet = cli.json("subnet", "create", "--network", net["id"], "--subnet-range", f"10.77.{n}.0/24",
                      unique("priv-sub"), cloud=cloud)
    return net, subnet


def test_router_and_floating_ip_with_the_cli(cli: Client, public: dict[str, Any]) -> None:
    demo = "mcloud-demo"
    net, subnet = private(cli)
    name = unique("router")
    router = cli.json("router", "create", name, cloud=demo)
    assert router["status"] == "ACTIVE" and router["external_gateway_info"] is None
    cli.run("router", "set", "--external-gateway", public["network"]["id"], name, cloud=demo)
    gw = cli.json("router", "show", name, cloud=demo)["external_gateway_info"]
    assert gw["network_id"] == public["network"]["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["subnet_id"] == public["subnet"]["id"]
    cli.run("router", "add", "subnet", name, subnet["id"], cloud=demo)
    ports = cli.json("port", "list", "--router", name, cloud=demo)
    assert any(ip["ip_address"] == subnet["gateway_ip"] for p in ports for ip in p["Fixed IP Addresses"])
    assert name in {r["Name"] for r in cli.json("router", "list", cloud=demo)}
    busy = cli.run("router", "delete", name, cloud=demo, check=False)
    assert busy.returncode != 0 and "still has ports" in busy.stderr

    # a floating IP for a port behind the router
    port = cli.json("port", "create", "--network", net["id"], unique("vm-port"), cloud=demo)
    fip = cli.json("floating", "ip", "create", public["network"]["id"], cloud=demo)
    assert fip["status"] == "DOWN" and fip["port_id"] is None
    cli.run("floating", "ip", "set", "--port", port["id"], fip["id"], cloud=demo)
    shown = cli.json("floating", "ip", "show", fip["id"], cloud=demo)
    assert (shown["port_id"], shown["router_id"], shown["status"]) == (port["id"], router["id"], "ACTIVE")
    assert shown["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert fip["id"] in {f["ID"] for f in cli.json("floating", "ip", "list", "--port", port["id"], cloud=demo)}
    in_use = cli.run("router", "remove", "subnet", name, subnet["id"], cloud=demo, check=False)
    assert in_use.returncode != 0 and "required by one or more floating IPs" in in_use.stderr
    cli.run("floating", "ip", "unset", "--port", fip["id"], cloud=demo)
    assert cli.json("floating", "ip", "show", fip["id"], cloud=demo)["port_id"] is None
    cli.run("floating", "ip", "delete", fip["id"], cloud=demo)

    # the admin alone turns SNAT off
    denied = cli.run("router", "set", "--external-gateway", public["network"]["id"], "--disable-snat", name,
                     cloud=demo, check=False)
    assert denied.returncode != 0 and "403" in denied.stderr + denied.stdout
    cli.run("router", "set", "--external-gateway", public["network"]["id"], "--disable-snat", router["id"])
    assert cli.json("router", "show", router["id"])["external_gateway_info"]["enable_snat"] is False

    nexthop = subnet["cidr"].rsplit(".", 1)[0] + ".20"
    cli.run("router", "set", "--route", f"destination=192.168.50.0/24,gateway={nexthop}", name, cloud=demo)
    assert cli.json("router", "show", name, cloud=demo)["routes"] == [
        {"destination": "192.168.50.0/24", "nexthop": nexthop}]
    cli.run("router", "unset", "--route", f"destination=192.168.50.0/24,gateway={nexthop}", name, cloud=demo)
    cli.run("router", "remove", "subnet", name, subnet["id"], cloud=demo)
    cli.run("router", "unset", "--external-gateway", name, cloud=demo)
    assert cli.json("router", "show", name, cloud=demo)["external_gateway_info"] is None
    cli.run("router", "delete", name, cloud=demo)
    gone = cli.run("router", "show", name, cloud=demo, check=False)
    assert gone.returncode != 0
    cli.run("port", "delete", port["id"], cloud=demo)
    cli.run("subnet", "delete", subnet["id"], cloud=demo)
    cli.run("network", "delete", net["id"], cloud=demo)


def test_security_groups_with_the_cli(cli: Client) -> None:
    demo = "mcloud-demo"
    name = unique("web")
    group = cli.json("security", "group", "create", "--description", "web servers", name, cloud=demo)
    assert group["description"] == "web servers"
    assert "default" in {g["Name"] for g in cli.json("security", "group", "list", cloud=demo)}
    ssh = cli.json("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                   "--remote-ip", "10.0.0.0/8", name, cloud=demo)
    assert (ssh["port_range_min"], ssh["port_range_max"], ssh["remote_ip_prefix"]) == (22, 22, "10.0.0.0/8")
    ping = cli.json("security", "group", "rule", "create", "--protocol", "icmp", "--ethertype", "IPv4",
                    "--remote-group", name, name, cloud=demo)
    assert ping["protocol"] == "icmp" and ping["remote_group_id"] == group["id"]
    rules = cli.json("security", "group", "rule", "list", name, cloud=demo)
    assert {ssh["id"], ping["id"]} <= {r["ID"] for r in rules}
    dup = cli.run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                  "--remote-ip", "10.0.0.0/8", name, cloud=demo, check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    bad = cli.run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80:79", name,
                  cloud=demo, check=False)
    assert bad.returncode != 0
    cli.run("security", "group", "set", "--name", name + "-2", name, cloud=demo)
    # the admin's project does not see the demo project's group
    assert name + "-2" not in {g["Name"] for g in cli.json("security", "group", "list", "--project",
                                                             cli.json("project", "show", "admin")["id"])}
    cli.run("security", "group", "rule", "delete", ssh["id"], cloud=demo)
    cli.run("security", "group", "delete", name + "-2", cloud=demo)
    assert name + "-2" not in {g["Name"] for g in cli.json("security", "group", "list", cloud=demo)}


def test_qos_and_trunks_with_the_cli(cli: Client) -> None:
    name = unique("gold")
    policy = cli.json("network", "qos", "policy", "create", "--description", "gold", name)
    assert policy["name"] == name and policy["shared"] is False
    bw = cli.json("network", "qos", "rule", "create", "--type", "bandwidth-limit", "--max-kbps", "10000",
                  "--max-burst-kbits", "800", "--egress", name)
    assert (bw["max_kbps"], bw["max_burst_kbps"], bw["direction"]) == (10000, 800, "egress")
    dscp = cli.json("network", "qos", "rule", "create", "--type", "dscp-marking", "--dscp-mark", "26", name)
    assert dscp["dscp_mark"] == 26
    rules = cli.json("network", "qos", "rule", "list", name)
    assert {r["ID"] for r in rules} == {bw["id"], dscp["id"]}
    cli.run("network", "qos", "rule", "set", "--max-kbps", "20000", name, bw["id"])
    assert cli.json("network", "qos", "rule", "show", name, bw["id"])["max_kbps"] == 20000
    types = {t["Type"] for t in cli.json("network", "qos", "rule", "type", "list")}
    assert types == {"bandwidth_limit", "dscp_marking"}

    net, _subnet = private(cli, cloud="mcloud")
    port = cli.json("port", "create", "--network", net["id"], "--qos-policy", name, unique("qos-port"))
    assert port["qos_policy_id"] == policy["id"]
    busy = cli.run("network", "qos", "policy", "delete", name, check=False)
    assert busy.returncode != 0
    cli.run("port", "unset", "--qos-policy", port["id"])

    parent = cli.json("port", "create", "--network", net["id"], unique("parent"))
    sub = cli.json("port", "create", "--network", net["id"], unique("sub"))
    trunk_name = unique("trunk")
    trunk = cli.json("network", "trunk", "create", "--parent-port", parent["id"], trunk_name)
    assert trunk["port_id"] == parent["id"] and trunk["sub_ports"] == []
    cli.run("network", "trunk", "set", "--subport", f"port={sub['id']},segmentation-type=vlan,segmentation-id=100",
            trunk_name)
    subports = cli.json("network", "subport", "list", "--trunk", trunk_name)
    assert [(s["Port"], s["Segmentation ID"]) for s in subports] == [(sub["id"], 100)]
    assert cli.json("port", "show", sub["id"])["device_owner"] == "trunk:subport"
    in_use = cli.run("port", "delete", parent["id"], check=False)
    assert in_use.returncode != 0
    cli.run("network", "trunk", "unset", "--subport", sub["id"], trunk_name)
    assert cli.json("network", "subport", "list", "--trunk", trunk_name) == []
    cli.run("network", "trunk", "delete", trunk_name)
    assert trunk_name not in {t["Name"] for t in cli.json("network", "trunk", "list")}

    cli.run("network", "qos", "rule", "delete", name, dscp["id"])
    cli.run("network", "qos", "policy", "delete", name)
    cli.run("port", "delete", port["id"], parent["id"], sub["id"])
    cli.run("subnet", "delete", _subnet["id"])
    cli.run("network", "delete", net["id"])
