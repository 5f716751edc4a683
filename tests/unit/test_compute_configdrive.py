"""Config drive files as Nova writes them: the versions, meta_data.json's fields, the user data
decoded, and network_data.json made from Neutron-shaped ports."""

from __future__ import annotations

import base64
import json

from mcloud.compute import configdrive

MD = {"uuid": "u-1", "name": "web", "hostname": "web", "launch_index": 2, "availability_zone": "nova",
      "project_id": "p-1", "meta": {"role": "db"}, "key_name": "k", "key_data": "ssh-ed25519 AAAA x@y",
      "key_type": "ssh"}


def test_files_for_every_version():
    files = configdrive.files(MD, None, base64.b64encode(b"#!/bin/sh\necho hi\n").decode())
    assert files["openstack/latest/user_data"] == b"#!/bin/sh\necho hi\n"
    assert "openstack/2012-08-10/meta_data.json" in files
    assert "openstack/2012-08-10/network_data.json" not in files  # from 2015-10-15
    assert "openstack/2015-10-15/network_data.json" in files
    assert "openstack/2013-04-04/vendor_data.json" not in files
    assert "openstack/2013-10-17/vendor_data.json" in files
    assert "openstack/2016-10-06/vendor_data2.json" in files
    latest = json.loads(files["openstack/latest/meta_data.json"])
    assert latest["uuid"] == "u-1" and latest["name"] == "web" and latest["hostname"] == "web"
    assert latest["launch_index"] == 2 and latest["availability_zone"] == "nova"
    assert latest["project_id"] == "p-1" and latest["meta"] == {"role": "db"}
    assert latest["public_keys"] == {"k": "ssh-ed25519 AAAA x@y"}
    assert latest["keys"] == [{"name": "k", "type": "ssh", "data": "ssh-ed25519 AAAA x@y"}]
    assert len(base64.b64decode(latest["random_seed"])) == 512
    old = json.loads(files["openstack/2012-08-10/meta_data.json"])
    assert "project_id" not in old and "random_seed" not in old


def test_no_user_data_no_file_and_no_keys():
    files = configdrive.files({"uuid": "u"}, None, None)
    assert not any(p.endswith("user_data") for p in files)
    md = json.loads(files["openstack/latest/meta_data.json"])
    assert "public_keys" not in md and "meta" not in md


def test_network_data_from_ports():
    port_a = {"id": "aaaaaaaa-1111-2222-3333-444444444444", "mac_address": "fa:16:3e:00:00:01",
              "network_id": "net-1", "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.0.0.5"},
                                                   {"subnet_id": "s6", "ip_address": "fd00::5"}]}
    port_b = {"id": "bbbbbbbb-1111-2222-3333-444444444444", "mac_address": "fa:16:3e:00:00:02",
              "network_id": "net-2", "fixed_ips": [{"subnet_id": "static", "ip_address": "192.168.7.9"}]}
    subnets = {
        "s4": {"id": "s4", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1", "enable_dhcp": True,
               "dns_nameservers": ["10.0.0.2"], "host_routes": []},
        "s6": {"id": "s6", "cidr": "fd00::/64", "ip_version": 6, "gateway_ip": "fd00::1", "enable_dhcp": True,
               "ipv6_address_mode": "slaac", "dns_nameservers": [], "host_routes": []},
        "static": {"id": "static", "cidr": "192.168.7.0/24", "ip_version": 4, "gateway_ip": "192.168.7.1",
                   "enable_dhcp": False, "dns_nameservers": ["10.0.0.2", "1.1.1.1"],
                   "host_routes": [{"destination": "172.16.0.0/12", "nexthop": "192.168.7.254"}]},
    }
    networks = {"net-1": {"mtu": 1442}, "net-2": {"mtu": 1400}}
    doc = configdrive.network_data([port_a, port_b], subnets, networks)
    assert doc["links"] == [
        {"id": "tapaaaaaaaa-11", "vif_id": port_a["id"], "type": "ovs", "mtu": None,
         "ethernet_mac_address": "fa:16:3e:00:00:01"},
        {"id": "tapbbbbbbbb-11", "vif_id": port_b["id"], "type": "ovs", "mtu": 1400,
         "ethernet_mac_address": "fa:16:3e:00:00:02"}]
    n0, n1, n2 = doc["networks"]
    assert n0 == {"id": "network0", "type": "ipv4_dhcp", "link": "tapaaaaaaaa-11", "network_id": "net-1"}
    assert n1["type"] == "ipv6_slaac" and n1["ip_address"] == "fd00::5" and n1["netmask"] == "ffff:ffff:ffff:ffff::"
    assert n1["routes"] == [{"network": "::", "netmask": "::", "gateway": "fd00::1"}]
    assert n2["type"] == "ipv4" and n2["ip_address"] == "192.168.7.9" and n2["netmask"] == "255.255.255.0"
    assert n2["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.7.1"},
                            {"network": "172.16.0.0", "netmask": "255.240.0.0", "gateway": "192.168.7.254"}]
    assert n2["services"] == [{"type": "dns", "address": "10.0.0.2"}, {"type": "dns", "address": "1.1.1.1"}]
    assert doc["services"] == [{"type": "dns", "address": "10.0.0.2"}, {"type": "dns", "address": "1.1.1.1"}]


def test_a_port_without_addresses_has_no_link():
    doc = configdrive.network_data([{"id": "p" * 36, "mac_address": "m", "network_id": "n", "fixed_ips": []}], {}, {})
    assert doc == {"links": [], "networks": [], "services": []}
