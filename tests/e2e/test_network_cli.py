"""The network service (CORE: networks, subnets, ports, subnet pools, RBAC) through the real
`openstack` CLI and openstacksdk against a live `mcloud up`: create, list, show, set, unset,
delete, as an admin and as the demo project, with Neutron's errors where a user gets them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Client, unique

pytestmark = pytest.mark.e2e


def test_network_subnet_port_lifecycle_with_the_cli(cli: Client) -> None:
    name = unique("cli-net")
    net = cli.json("network", "create", "--description", "e2e", "--tag", "e2e", name)
    assert net["status"] == "ACTIVE" and net["description"] == "e2e" and net["mtu"] == 1442
    assert name in {n["Name"] for n in cli.json("network", "list")}
    subnet = cli.json("subnet", "create", "--network", name, "--subnet-range", "10.123.0.0/24",
                      "--allocation-pool", "start=10.123.0.10,end=10.123.0.50", "--dns-nameserver", "10.123.0.2",
                      "--host-route", "destination=10.124.0.0/24,gateway=10.123.0.1", unique("cli-sub"))
    assert subnet["cidr"] == "10.123.0.0/24" and subnet["gateway_ip"] == "10.123.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.123.0.10", "end": "10.123.0.50"}]
    port = cli.json("port", "create", "--network", name, "--mac-address", "fa:16:3e:12:34:56",
                    "--fixed-ip", f"subnet={subnet['id']},ip-address=10.123.0.20", unique("cli-port"))
    assert port["mac_address"] == "fa:16:3e:12:34:56" and port["status"] == "DOWN"
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.123.0.20"}]
    auto = cli.json("port", "create", "--network", name, unique("cli-port"))
    assert auto["fixed_ips"][0]["ip_address"] == "10.123.0.10"
    listed = cli.json("port", "list", "--network", name)
    assert {p["ID"] for p in listed} == {port["id"], auto["id"]}
    assert [p["ID"] for p in cli.json("port", "list", "--fixed-ip", "ip-address=10.123.0.20")] == [port["id"]]

    cli.run("network", "set", "--name", name + "-x", "--mtu", "1400", name)
    shown = cli.json("network", "show", name + "-x")
    assert shown["mtu"] == 1400 and shown["revision_number"] > net["revision_number"]
    cli.run("subnet", "set", "--no-dhcp", "--gateway", "10.123.0.254", subnet["id"])
    assert cli.json("subnet", "show", subnet["id"])["enable_dhcp"] is False
    cli.run("port", "set", "--name", "renamed", "--disable", "--allowed-address", "ip-address=10.123.0.99",
            port["id"])
    shown = cli.json("port", "show", port["id"])
    assert shown["name"] == "renamed" and shown["admin_state_up"] is False
    assert shown["allowed_address_pairs"] == [{"ip_address": "10.123.0.99", "mac_address": "fa:16:3e:12:34:56"}]
    # the admin binds the port to a host: the fake data plane brings it up
    cli.run("port", "set", "--enable", "--host", "compute-e2e", port["id"])
    shown = cli.json("port", "show", port["id"])
    assert shown["binding_host_id"] == "compute-e2e" and shown["binding_vif_type"] == "ovs"

    # bad input answers like Neutron
    dup = cli.run("port", "create", "--network", name + "-x", "--mac-address", "fa:16:3e:12:34:56", "dup",
                  check=False)
    assert dup.returncode != 0 and "in use" in dup.stderr
    overlap = cli.run("subnet", "create", "--network", name + "-x", "--subnet-range", "10.123.0.128/25", "o",
                      check=False)
    assert overlap.returncode != 0 and "overlaps with another subnet" in overlap.stderr
    busy = cli.run("network", "delete", name + "-x", check=False)
    assert busy.returncode != 0 and "still in use" in busy.stderr

    cli.run("port", "delete", port["id"], auto["id"])
    cli.run("subnet", "delete", subnet["id"])
    cli.run("network", "delete", name + "-x")
    gone = cli.run("network", "show", name + "-x", check=False)
    assert gone.returncode != 0
    assert name + "-x" not in {n["Name"] for n in cli.json("network", "list")}


def test_sharing_a_network_with_the_demo_project(cli: Client) -> None:
    name = unique("cli-shared")
    net = cli.json("network", "create", name)
    cli.json("subnet", "create", "--network", name, "--subnet-range", "10.125.0.0/24", unique("s"))
    assert name not in {n["Name"] for n in cli.json("network", "list", cloud="mcloud-demo")}
    demo = cli.json("project", "show", "demo")["id"]
    rbac = cli.json("network", "rbac", "create", "--type", "network", "--action", "access_as_shared",
                    "--target-project", demo, net["id"])
    assert name in {n["Name"] for n in cli.json("network", "list", cloud="mcloud-demo")}
    port = cli.json("port", "create", "--network", net["id"], unique("demo-port"), cloud="mcloud-demo")
    assert port["fixed_ips"][0]["ip_address"].startswith("10.125.0.")
    # the demo project may use it but not change it
    denied = cli.run("network", "set", "--name", "stolen", net["id"], cloud="mcloud-demo", check=False)
    assert denied.returncode != 0
    busy = cli.run("network", "rbac", "delete", rbac["id"], check=False)
    assert busy.returncode != 0
    cli.run("port", "delete", port["id"], cloud="mcloud-demo")
    cli.run("network", "rbac", "delete", rbac["id"])
    assert name not in {n["Name"] for n in cli.json("network", "list", cloud="mcloud-demo")}
    cli.run("network", "delete", net["id"])


def test_subnet_pools_and_quotas_with_the_cli(cli: Client) -> None:
    pool = cli.json("subnet", "pool", "create", "--pool-prefix", "10.130.0.0/16", "--default-prefix-length", "26",
                    unique("pool"))
    net = cli.json("network", "create", unique("pooled"))
    sub = cli.json("subnet", "create", "--network", net["id"], "--subnet-pool", pool["id"], unique("s"))
    assert sub["cidr"] == "10.130.0.0/26" and sub["subnetpool_id"] == pool["id"]
    cli.run("subnet", "pool", "set", "--name", "renamed-pool", pool["id"])
    assert cli.json("subnet", "pool", "show", pool["id"])["name"] == "renamed-pool"
    cli.run("subnet", "delete", sub["id"])
    cli.run("subnet", "pool", "delete", pool["id"])
    cli.run("network", "delete", net["id"])
    cli.run("quota", "set", "--networks", "42", "--ports", "7", "demo")
    quota = {q["Resource"]: q["Limit"] for q in cli.json("quota", "show", "demo")}
    assert quota["networks"] == 42 and quota["ports"] == 7 and quota["subnets"] == 100
    cli.run("quota", "delete", "--network", "demo")
    quota = {q["Resource"]: q["Limit"] for q in cli.json("quota", "show", "demo")}
    assert quota["networks"] == 100 and quota["ports"] == 500


def test_the_sdk_pages_through_ports(sdk) -> None:
    net = sdk.network.create_network(name=unique("sdk-net"))
    sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.126.0.0/24")
    made = {sdk.network.create_port(network_id=net.id).id for _ in range(7)}
    seen = [p.id for p in sdk.network.ports(network_id=net.id, limit=3)]
    assert sorted(seen) == sorted(made)
    for port_id in made:
        sdk.network.delete_port(port_id)
    sdk.network.delete_network(net.id)
