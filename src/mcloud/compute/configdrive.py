"""The config drive's files, as Nova writes them (nova/api/metadata/base.py and
nova/virt/netutils.py), so that cloud-init and mCloud's tiny guest read them unchanged.

For every OpenStack metadata version and ``latest``: ``openstack/<v>/meta_data.json``,
``user_data`` (when given), ``vendor_data.json`` (from 2013-10-17), ``network_data.json`` (from
2015-10-15) and ``vendor_data2.json`` (from 2016-10-06). ``meta_data.json`` carries ``uuid``,
``meta`` (when any), ``public_keys`` and ``keys`` (with a key pair), ``hostname``, ``name``,
``launch_index``, ``availability_zone``, ``random_seed`` (from 2013-04-04), ``project_id`` (from
2015-10-15), ``devices`` (from 2016-06-30) and ``dedicated_cpus`` (from 2020-10-14).

``network_data.json`` is made on the controller from the instance's ports (:func:`network_data`):
one ``link`` per port with a subnet (the tap's name, Neutron's port id, type ``ovs``, the MAC),
one ``network`` per port and IP version (``ipv4_dhcp``/``ipv6_dhcp`` where the subnet runs DHCP,
else the static address, netmask, default route and host routes), and the DNS ``services``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
            "2017-02-22", "2018-08-27", "2020-10-14")
GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, VICTORIA = (
    "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2020-10-14")


def _at_least(version: str, since: str) -> bool:
    return version == "latest" or version >= since


def meta_data(md: Mapping[str, Any], version: str = "latest") -> dict[str, Any]:
    """``meta_data.json`` of one version from the instance's facts (the spawn payload's
    ``metadata``: uuid, name, hostname, launch_index, availability_zone, project_id, meta,
    key_name, key_data, key_type)."""
    doc: dict[str, Any] = {"uuid": md["uuid"]}
    if md.get("meta"):
        doc["meta"] = dict(md["meta"])
    if md.get("key_name") and md.get("key_data"):
        doc["public_keys"] = {md["key_name"]: md["key_data"]}
        doc["keys"] = [{"name": md["key_name"], "type": md.get("key_type") or "ssh", "data": md["key_data"]}]
    doc["hostname"] = md.get("hostname") or ""
    doc["name"] = md.get("name") or ""
    doc["launch_index"] = int(md.get("launch_index") or 0)
    doc["availability_zone"] = md.get("availability_zone")
    if _at_least(version, GRIZZLY):
        doc["random_seed"] = base64.b64encode(os.urandom(512)).decode()
    if _at_least(version, LIBERTY):
        doc["project_id"] = md.get("project_id")
    if _at_least(version, NEWTON_ONE):
        doc["devices"] = list(md.get("devices") or [])
    if _at_least(version, VICTORIA):
        doc["dedicated_cpus"] = list(md.get("dedicated_cpus") or [])
    return doc


def user_data_bytes(user_data: str | None) -> bytes | None:
    """The user data as the guest reads it: Nova keeps it base64-encoded, the drive has it decoded."""
    if user_data is None:
        return None
    try:
        return base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        return user_data.encode()


def files(md: Mapping[str, Any], network: Mapping[str, Any] | None, user_data: str | None,
          vendor_data: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Every file of the drive: path inside it -> content."""
    out: dict[str, bytes] = {}
    ud = user_data_bytes(user_data)
    vendor = json.dumps(dict(vendor_data or {})).encode()
    net = json.dumps(dict(network or {"links": [], "networks": [], "services": []})).encode()
    for version in (*VERSIONS, "latest"):
        base = f"openstack/{version}"
        out[f"{base}/meta_data.json"] = json.dumps(meta_data(md, version)).encode()
        if ud is not None:
            out[f"{base}/user_data"] = ud
        if _at_least(version, HAVANA):
            out[f"{base}/vendor_data.json"] = vendor
        if _at_least(version, LIBERTY):
            out[f"{base}/network_data.json"] = net
        if _at_least(version, NEWTON_TWO):
            out[f"{base}/vendor_data2.json"] = b"{}"
    return out


def _netmask(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False).netmask)


def network_data(ports: Sequence[Mapping[str, Any]], subnets: Mapping[str, Mapping[str, Any]],
                 networks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``network_data.json`` from Neutron-shaped ports (``id``, ``mac_address``, ``network_id``,
    ``fixed_ips``), their subnets (by id: ``cidr``, ``ip_version``, ``gateway_ip``,
    ``enable_dhcp``, ``dns_nameservers``, ``host_routes``, ``ipv6_address_mode``) and networks
    (by id: ``mtu``)."""
    links: list[dict[str, Any]] = []
    nets: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    net_num = -1
    for port in ports:
        by_version: dict[int, tuple[Mapping[str, Any], str]] = {}
        for ip in port.get("fixed_ips") or []:
            subnet = subnets.get(ip.get("subnet_id"))
            if subnet is None:
                continue
            version = int(subnet.get("ip_version") or ipaddress.ip_address(ip["ip_address"]).version)
            by_version.setdefault(version, (subnet, ip["ip_address"]))  # the first subnet of each version
        if not by_version:
            continue
        link_id = f"tap{port['id'][:11]}"
        dhcp = any(s.get("enable_dhcp") for s, _ in by_version.values())
        network = networks.get(port["network_id"]) or {}
        links.append({"id": link_id, "vif_id": port["id"], "type": "ovs",
                      "mtu": None if dhcp else network.get("mtu"),
                      "ethernet_mac_address": port["mac_address"]})
        for version in (4, 6):
            if version not in by_version:
                continue
            subnet, address = by_version[version]
            net_num += 1
            dns = [{"type": "dns", "address": a} for a in subnet.get("dns_nameservers") or []]
            services += [d for d in dns if d not in services]
            mode = subnet.get("ipv6_address_mode") if version == 6 else None
            if mode is None and subnet.get("enable_dhcp"):
                nets.append({"id": f"network{net_num}", "type": f"ipv{version}_dhcp", "link": link_id,
                             "network_id": port["network_id"]})
                continue
            any_net = "0.0.0.0" if version == 4 else "::"
            routes = ([{"network": any_net, "netmask": any_net, "gateway": subnet["gateway_ip"]}]
                      if subnet.get("gateway_ip") else [])
            for route in subnet.get("host_routes") or []:
                dest = ipaddress.ip_network(route["destination"], strict=False)
                routes.append({"network": str(dest.network_address), "netmask": str(dest.netmask),
                               "gateway": route["nexthop"]})
            nets.append({"id": f"network{net_num}", "type": f"ipv{version}" + (f"_{mode}" if mode else ""),
                         "link": link_id, "ip_address": address, "netmask": _netmask(subnet["cidr"]),
                         "routes": routes, "network_id": port["network_id"], "services": dns})
    return {"links": links, "networks": nets, "services": services}
