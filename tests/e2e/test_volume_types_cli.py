"""Volume types, QoS specs, services, quotas and limits through the real `openstack` CLI against a
live `mcloud up`."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Client, unique

pytestmark = pytest.mark.e2e


def test_volume_types_and_qos(cli: Client) -> None:
    assert "__DEFAULT__" in [t["Name"] for t in cli.json("volume", "type", "list")]
    name = unique("vt")
    made = cli.json("volume", "type", "create", "--description", "e2e", "--property", "volume_backend_name=file",
                    "--property", "multiattach=<is> True", name)
    assert made["name"] == name and made["description"] == "e2e"
    shown = cli.json("volume", "type", "show", name)
    assert shown["properties"] == {"volume_backend_name": "file", "multiattach": "<is> True"}
    cli.run("volume", "type", "set", "--property", "RESKEY:availability_zones=nova", name)
    cli.run("volume", "type", "unset", "--property", "multiattach", name)
    assert cli.json("volume", "type", "show", name)["properties"] == {
        "volume_backend_name": "file", "RESKEY:availability_zones": "nova"}
    private = unique("priv")
    cli.json("volume", "type", "create", "--private", "--project", "demo", private)
    assert private in [t["Name"] for t in cli.json("volume", "type", "list", cloud="mcloud-demo")]
    qos = unique("qos")
    made = cli.json("volume", "qos", "create", "--consumer", "front-end", "--property", "read_iops_sec=100", qos)
    assert made["consumer"] == "front-end"
    cli.run("volume", "qos", "associate", qos, name)
    shown = cli.json("volume", "qos", "show", qos)
    assert name in str(shown["associations"]) and "read_iops_sec" in str(shown["properties"])
    cli.run("volume", "qos", "set", "--property", "write_iops_sec=50", qos)
    cli.run("volume", "qos", "disassociate", "--volume-type", name, qos)
    assert qos in [q["Name"] for q in cli.json("volume", "qos", "list")]
    cli.run("volume", "qos", "delete", qos)
    bad = cli.run("volume", "type", "delete", "__DEFAULT__", check=False)
    assert bad.returncode != 0
    cli.run("volume", "type", "delete", name, private)
    assert name not in [t["Name"] for t in cli.json("volume", "type", "list")]


def test_services_quotas_limits(cli: Client) -> None:
    services = cli.json("volume", "service", "list")
    assert {"cinder-scheduler", "cinder-volume", "cinder-backup"} <= {s["Binary"] for s in services}
    assert all(s["State"] == "up" for s in services if s["Binary"] == "cinder-volume")
    volume_host = next(s["Host"] for s in services if s["Binary"] == "cinder-volume")
    cli.run("volume", "service", "set", "--disable", "--disable-reason", "e2e", volume_host, "cinder-volume")
    listed = cli.json("volume", "service", "list", "--long", "--service", "cinder-volume")
    assert any(s["Status"] == "disabled" and s["Disabled Reason"] == "e2e" for s in listed)
    cli.run("volume", "service", "set", "--enable", volume_host, "cinder-volume")
    cli.run("quota", "set", "--volumes", "7", "--gigabytes", "70", "demo")
    shown = cli.json("quota", "show", "--volume", "demo")
    if isinstance(shown, list):  # newer clients: one row per resource
        shown = {row["Resource"]: row["Limit"] for row in shown}
    assert shown["volumes"] == 7 and shown["gigabytes"] == 70
    limits = {row["Name"]: row["Value"] for row in cli.json("limits", "show", "--absolute", cloud="mcloud-demo")}
    # the SDK names Cinder's maxTotalVolumes and maxTotalVolumeGigabytes so
    assert limits["max_total_volumes"] == 7 and limits["max_total_volume_gigabytes"] == 70
    cli.run("quota", "set", "--volumes", "10", "--gigabytes", "1000", "demo")
