"""Flavors, keypairs, server groups, aggregates, quotas and limits through the real `openstack`
CLI against a live `mcloud up`."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Client, unique

pytestmark = pytest.mark.e2e


def test_flavors(cli: Client) -> None:
    listed = {f["Name"]: f for f in cli.json("flavor", "list")}
    assert {"m1.nano", "m1.tiny", "m1.small", "m1.xlarge"} <= set(listed)
    assert listed["m1.nano"]["ID"] == "42" and listed["m1.nano"]["RAM"] == 192
    name = unique("fl")
    made = cli.json("flavor", "create", "--ram", "128", "--vcpus", "2", "--disk", "1", "--description", "e2e",
                    "--property", "hw:cpu_policy=shared", name)
    assert (made["ram"], made["vcpus"], made["disk"], made["description"]) == (128, 2, 1, "e2e")
    cli.run("flavor", "set", "--property", "hw_rng:allowed=True", "--property", "quota:cpu_shares=10", name)
    shown = cli.json("flavor", "show", name)
    assert shown["properties"] == {"hw:cpu_policy": "shared", "hw_rng:allowed": "True", "quota:cpu_shares": "10"}
    # Nova checks known extra specs from 2.86 (the CLI's default microversion is older)
    bad = cli.run("--os-compute-api-version", "2.86", "flavor", "set", "--property", "hw:cpu_policy=sideways", name,
                  check=False)
    assert bad.returncode != 0 and "sideways" in bad.stderr
    assert cli.json("flavor", "show", name)["properties"]["hw:cpu_policy"] == "shared"
    cli.run("flavor", "unset", "--property", "quota:cpu_shares", name)
    assert "quota:cpu_shares" not in cli.json("flavor", "show", name)["properties"]
    private = unique("priv")
    cli.json("flavor", "create", "--ram", "64", "--vcpus", "1", "--disk", "0", "--private", "--project", "demo",
             private)
    assert private in [f["Name"] for f in cli.json("flavor", "list", "--private")]
    assert private in [f["Name"] for f in cli.json("flavor", "list", cloud="mcloud-demo")]
    cli.run("flavor", "delete", name, private)
    assert name not in [f["Name"] for f in cli.json("flavor", "list")]


def test_keypairs(cli: Client, tmp_path) -> None:
    name = unique("kp")
    private = cli.run("keypair", "create", name).stdout
    assert private.startswith("-----BEGIN") and "PRIVATE KEY" in private
    listed = {k["Name"]: k for k in cli.json("keypair", "list")}
    assert name in listed and listed[name]["Type"] == "ssh"
    (tmp_path / "id.pub").write_text(cli.run("keypair", "show", "--public-key", name).stdout)
    imported = cli.json("keypair", "create", "--public-key", str(tmp_path / "id.pub"), name + "-imp")
    assert imported["fingerprint"] == listed[name]["Fingerprint"]
    assert name not in [k["Name"] for k in cli.json("keypair", "list", cloud="mcloud-demo")]
    cli.run("keypair", "delete", name, name + "-imp")
    assert name not in [k["Name"] for k in cli.json("keypair", "list")]


def test_server_groups(cli: Client) -> None:
    name = unique("sg")
    group = cli.json("server", "group", "create", "--policy", "anti-affinity", "--rule", "max_server_per_host=2",
                     name)
    assert group["policy"] == "anti-affinity" and group["rules"] == {"max_server_per_host": 2}
    assert name in [g["Name"] for g in cli.json("server", "group", "list")]
    assert name not in [g["Name"] for g in cli.json("server", "group", "list", cloud="mcloud-demo")]
    cli.run("server", "group", "delete", name)


def test_aggregates_and_zones(cli: Client) -> None:
    hosts = [s["Host"] for s in cli.json("compute", "service", "list", "--service", "nova-compute")]
    assert hosts, "mcloud up runs a compute host"
    name, zone = unique("agg"), unique("az")
    agg = cli.json("aggregate", "create", "--zone", zone, name)
    assert agg["availability_zone"] == zone
    cli.run("aggregate", "add", "host", name, hosts[0])
    cli.run("aggregate", "set", "--property", "ssd=true", name)
    shown = cli.json("aggregate", "show", name)
    assert shown["hosts"] == [hosts[0]] and shown["properties"] == {"ssd": "true"}
    zones = {z["Zone Name"] for z in cli.json("availability", "zone", "list", "--compute")}
    assert zone in zones
    cli.run("aggregate", "remove", "host", name, hosts[0])
    cli.run("aggregate", "delete", name)
    assert name not in [a["Name"] for a in cli.json("aggregate", "list")]


def test_quotas_and_limits(cli: Client) -> None:
    shown = cli.json("quota", "show", "--compute", "demo")
    by_name = {row["Resource"]: row["Limit"] for row in shown} if isinstance(shown, list) else shown
    assert by_name["cores"] == 20 and by_name["instances"] == 10
    cli.run("quota", "set", "--cores", "30", "--instances", "12", "demo")
    shown = cli.json("quota", "show", "--compute", "demo")
    by_name = {row["Resource"]: row["Limit"] for row in shown} if isinstance(shown, list) else shown
    assert (by_name["cores"], by_name["instances"]) == (30, 12)
    absolute = {row["Name"]: row["Value"] for row in cli.json("limits", "show", "--absolute", cloud="mcloud-demo")}
    # openstacksdk's names for maxTotalCores, maxTotalInstances, totalInstancesUsed
    assert absolute["total_cores"] == 30 and absolute["instances"] == 12
    assert absolute["instances_used"] == 0
    cli.run("quota", "delete", "--compute", "demo")
    absolute = {row["Name"]: row["Value"] for row in cli.json("limits", "show", "--absolute", cloud="mcloud-demo")}
    assert absolute["total_cores"] == 20
