#!/usr/bin/env python3
"""Write the [network] / [network-feature-enabled] part of tempest.conf for a live mCloud.

Run with the Tempest venv's python (it needs PyYAML). Called by tools/tempest.sh when neutron
is among the services; usable on its own:

    network_conf.py --clouds DIR/clouds.yaml [--cloud mcloud] --out network.conf

It authenticates as the admin of clouds.yaml, reads the network endpoint from the catalog and
writes:
- api_extensions: exactly what GET /v2.0/extensions lists (Tempest decides what to run from it);
- public_network_id: a router:external network named "public" with a subnet, which it creates
  as the admin when the cloud has none (reused on later runs);
- the project CIDRs Tempest carves its subnets from, and the feature flags that follow from the
  extensions (port_security, floating_ips, ...).
"""

import argparse
import configparser
import json
import sys
import urllib.error
import urllib.request

import yaml

PUBLIC_NAME = "public"
PUBLIC_CIDR = "172.24.4.0/24"


def die(msg):
    print("network_conf: error: %s" % msg, file=sys.stderr)
    sys.exit(2)


def call(method, url, token=None, body=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        die("%s %s -> %s %s" % (method, url, e.code, e.read()[:300]))
    except (urllib.error.URLError, OSError) as e:
        die("%s %s failed: %s" % (method, url, e))


def authenticate(cloud):
    auth = cloud["auth"]
    user = {"password": auth["password"], "name": auth["username"],
            "domain": {"id": auth.get("user_domain_id", "default")}}
    scope = {"project": {"name": auth["project_name"], "domain": {"id": auth.get("project_domain_id", "default")}}}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}
    url = auth["auth_url"].rstrip("/")
    url = url if url.endswith("/v3") else url + "/v3"
    headers, token = call("POST", url + "/auth/tokens", body=body)
    return headers["X-Subject-Token"], token["token"]


def network_url(token_body, interface):
    for service in token_body.get("catalog", []):
        if service.get("type") == "network":
            for ep in service["endpoints"]:
                if ep["interface"] == interface:
                    return ep["url"].rstrip("/")
    die("no network endpoint in the catalog")


def public_network(base, token):
    _, found = call("GET", base + "/v2.0/networks?router:external=True&name=" + PUBLIC_NAME, token)
    if found["networks"]:
        return found["networks"][0]["id"]
    _, made = call("POST", base + "/v2.0/networks", token,
                   {"network": {"name": PUBLIC_NAME, "router:external": True}})
    net_id = made["network"]["id"]
    call("POST", base + "/v2.0/subnets", token,
         {"subnet": {"network_id": net_id, "name": PUBLIC_NAME + "-subnet", "ip_version": 4, "cidr": PUBLIC_CIDR,
                     "enable_dhcp": False}})
    return net_id


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clouds", required=True)
    ap.add_argument("--cloud", default="mcloud")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.clouds) as f:
        cloud = (yaml.safe_load(f).get("clouds") or {}).get(a.cloud) or die("no cloud %s" % a.cloud)
    token, body = authenticate(cloud)
    base = network_url(body, cloud.get("interface", "public"))
    _, ext = call("GET", base + "/v2.0/extensions", token)
    aliases = sorted(e["alias"] for e in ext["extensions"])
    public = public_network(base, token) if "external-net" in aliases else ""
    c = configparser.ConfigParser(interpolation=None)
    c.optionxform = str
    c["network"] = {
        "catalog_type": "network",
        "project_network_cidr": "10.100.0.0/16",
        "project_network_mask_bits": "28",
        "project_network_v6_cidr": "2001:db8::/48",
        "project_network_v6_mask_bits": "64",
        "project_networks_reachable": "false",
        "public_network_id": public,
        "floating_network_name": PUBLIC_NAME if public else "",
        "shared_physical_network": "false",
        "build_timeout": "60",
        "build_interval": "1",
    }
    c["network-feature-enabled"] = {
        "api_extensions": ",".join(aliases) or "None",
        "ipv6": "true",
        "ipv6_subnet_attributes": "true",
        "port_admin_state_change": "true",
        "port_security": str("port-security" in aliases).lower(),
        "floating_ips": str("router" in aliases and bool(public)).lower(),
    }
    with open(a.out, "w") as f:
        c.write(f)
    print("network_conf: wrote %s (%d extensions, public network %s)" % (a.out, len(aliases), public or "-"),
          file=sys.stderr)


if __name__ == "__main__":
    main()
