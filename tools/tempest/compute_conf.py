#!/usr/bin/env python3
"""Write the [compute] / [compute-feature-enabled] part of tempest.conf for a live mCloud.

Run with the Tempest venv's python (it needs PyYAML). Called by tools/tempest.sh when nova is
among the services; usable on its own:

    compute_conf.py --clouds DIR/clouds.yaml [--cloud mcloud] [--image-file FILE] --out compute.conf

It authenticates as the admin of clouds.yaml and
- makes two public images for Tempest's servers (``tempest-image`` and ``tempest-image-alt``,
  reused on later runs) from ``--image-file`` (a bootable qcow2, e.g. what ``mcloud image
  build-tiny`` makes, for the qemu driver), or from an empty qcow2 that qemu-img writes (enough for
  the fake driver);
- picks the two smallest flavors for flavor_ref and flavor_ref_alt;
- reads the maximum microversion from the version document, and writes the feature flags of what
  mCloud's compute implements (FEATURES below);
- with ``--validation``, turns Tempest's [validation] on for the tiny image (VALIDATION below):
  Tempest then logs in over SSH to the servers it validates, through a floating IP.
"""

import argparse
import configparser
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import yaml

# What mCloud compute implements, as Tempest 47's [compute-feature-enabled] options. Edit HERE.
FEATURES = {
    "resize": "true",
    "cold_migration": "true",
    "live_migration": "true",
    "block_migration_for_live_migration": "true",
    "pause": "true",
    "suspend": "true",
    "shelve": "true",
    "rescue": "true",
    "snapshot": "true",
    "console_output": "true",
    "interface_attach": "true",
    "config_drive": "true",
    "enable_instance_password": "true",
    "vnc_console": "true",
    "disk_config": "true",
    # the filters compute/scheduler.py implements (Tempest gates the same/different host hints on them)
    "scheduler_enabled_filters": "ComputeFilter,AvailabilityZoneFilter,ImagePropertiesFilter,"
                                 "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,"
                                 "DifferentHostFilter,AggregateInstanceExtraSpecsFilter",
    # not built: the metadata service (169.254.169.254; guests read the config drive), password
    # change (needs a guest agent), personality files (gone at 2.57), serial and SPICE consoles,
    # IDE disks, volumes (issue 6: encrypted, swap, multiattach, volume-backed live migration)
    "metadata_service": "false",
    "change_password": "false",
    "personality": "false",
    "serial_console": "false",
    "spice_console": "false",
    "ide_bus": "false",
    "attach_encrypted_volume": "false",
    "swap_volume": "false",
    "volume_multiattach": "false",
    "volume_backed_live_migration": "false",
    "stable_rescue": "false",
}


# [validation] with --validation: what the tiny image (mcloud image build-tiny) offers. Its dropbear
# lets root in with the key pair of the config drive; Tempest reaches it through a floating IP
# on the public network (so Tempest must run where that network is reachable).
VALIDATION = {
    "run_validation": "true",
    "connect_method": "floating",
    "auth_method": "keypair",
    "ip_version_for_ssh": "4",
    "image_ssh_user": "root",
    "image_alt_ssh_user": "root",
    "ssh_key_type": "rsa",
    "ssh_timeout": "120",
    "connect_timeout": "30",
    "ping_timeout": "120",
}


def die(msg):
    print("compute_conf: error: %s" % msg, file=sys.stderr)
    sys.exit(2)


def call(method, url, token=None, body=None, data=None, content_type="application/json", headers=None):
    hdrs = {"Content-Type": content_type, "Accept": "application/json"}
    hdrs.update(headers or {})
    if token:
        hdrs["X-Auth-Token"] = token
    if body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
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
    return headers["X-Subject-Token"], token["token"]["catalog"]


def endpoint(catalog, type_):
    for svc in catalog:
        if svc["type"] == type_:
            for ep in svc["endpoints"]:
                if ep["interface"] == "public":
                    return ep["url"].rstrip("/")
    die("no %s endpoint in the catalog" % type_)


def ensure_image(image_url, token, name, path):
    _, found = call("GET", image_url + "/v2/images?name=" + name, token)
    for img in found["images"]:
        if img["status"] == "active":
            return img["id"]
    _, img = call("POST", image_url + "/v2/images", token, body={
        "name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public"})
    with open(path, "rb") as f:
        call("PUT", image_url + "/v2/images/%s/file" % img["id"], token, data=f.read(),
             content_type="application/octet-stream")
    return img["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clouds", required=True)
    ap.add_argument("--cloud", default="mcloud")
    ap.add_argument("--image-file", help="a bootable qcow2 for the servers (default: an empty qcow2)")
    ap.add_argument("--validation", action="store_true", help="[validation] on (SSH into the servers)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    clouds = yaml.safe_load(open(a.clouds))["clouds"]
    if a.cloud not in clouds:
        die("no cloud %r in %s" % (a.cloud, a.clouds))
    token, catalog = authenticate(clouds[a.cloud])
    compute_url = endpoint(catalog, "compute")
    image_url = endpoint(catalog, "image")

    path = a.image_file
    tmp = None
    if not path:
        tmp = tempfile.NamedTemporaryFile(suffix=".qcow2", delete=False)
        tmp.close()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", tmp.name, "64M"], check=True)
        path = tmp.name
    try:
        image = ensure_image(image_url, token, "tempest-image", path)
        image_alt = ensure_image(image_url, token, "tempest-image-alt", path)
    finally:
        if tmp:
            os.unlink(tmp.name)

    _, flavors = call("GET", compute_url + "/flavors/detail", token)
    flavors = sorted(flavors["flavors"], key=lambda f: (f["ram"], f["vcpus"], f["disk"], f["id"]))
    if len(flavors) < 2:
        die("the cloud has fewer than two flavors")

    _, version = call("GET", compute_url + "/", token)
    max_version = version["version"]["version"]
    # multinode tests (migrations, host affinity) run when the cloud has that many compute hosts up
    _, services = call("GET", compute_url + "/os-services?binary=nova-compute", token)
    hosts = sum(1 for s in services["services"] if s["state"] == "up" and s["status"] == "enabled")

    conf = configparser.ConfigParser()
    conf["compute"] = {
        "image_ref": image, "image_ref_alt": image_alt,
        "flavor_ref": flavors[0]["id"], "flavor_ref_alt": flavors[1]["id"],
        "min_compute_nodes": str(max(1, hosts)), "max_microversion": max_version,
        "build_timeout": "120", "build_interval": "1",
    }
    conf["compute-feature-enabled"] = FEATURES
    conf["validation"] = VALIDATION if a.validation else {"run_validation": "false"}
    with open(a.out, "w") as f:
        conf.write(f)
    print("compute_conf: wrote %s (image %s, flavors %s/%s, max microversion %s, %d compute hosts)"
          % (a.out, image, flavors[0]["id"], flavors[1]["id"], max_version, hosts))


if __name__ == "__main__":
    main()
