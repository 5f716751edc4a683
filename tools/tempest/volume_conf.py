#!/usr/bin/env python3
"""Write the [volume] / [volume-feature-enabled] part of tempest.conf for a live mCloud.

Run with the Tempest venv's python. Called by tools/tempest.sh when cinder is among the services:

    volume_conf.py --clouds DIR/clouds.yaml [--cloud mcloud] --out volume.conf

It authenticates as the admin of clouds.yaml, reads the maximum microversion from the version
document and the backends from scheduler-stats (their names for the multi-backend tests, the
storage protocol and vendor the capabilities test compares), and writes the feature flags of what
mCloud's volume service implements (FEATURES below).
"""

import argparse
import configparser
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compute_conf import authenticate, call, die, endpoint  # noqa: E402

# What mCloud volume implements, as Tempest 47's [volume-feature-enabled] options. Edit HERE.
FEATURES = {
    "backup": "true",
    "snapshot": "true",
    "clone": "true",
    # manage/unmanage of existing backend objects and replication are not built
    "manage_snapshot": "false",
    "manage_volume": "false",
    "replication": "false",
    "api_extensions": "all",
    # growing a volume while a guest has it open needs Nova's volume-extended event: not built
    "extend_attached_volume": "false",
    "extend_attached_encrypted_volume": "false",
    "extend_volume_with_snapshot": "true",
    "enable_volume_image_dep_tests": "true",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clouds", required=True)
    ap.add_argument("--cloud", default="mcloud")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    clouds = yaml.safe_load(open(a.clouds))["clouds"]
    if a.cloud not in clouds:
        die("no cloud %r in %s" % (a.cloud, a.clouds))
    token, catalog = authenticate(clouds[a.cloud])
    volume_url = endpoint(catalog, "block-storage")
    _, doc = call("GET", volume_url.rsplit("/v3", 1)[0] + "/v3/", token)
    max_version = doc["versions"][0]["version"] if "versions" in doc else doc["version"]["version"]
    _, pools = call("GET", volume_url + "/scheduler-stats/get_pools?detail=true", token)
    pools = pools.get("pools", [])
    names = sorted({p.get("capabilities", {}).get("volume_backend_name") or p["name"].split("#")[-1]
                    for p in pools})
    caps = pools[0].get("capabilities", {}) if pools else {}

    conf = configparser.ConfigParser()
    conf["volume"] = {
        "build_timeout": "120", "build_interval": "1",
        "min_microversion": "3.0", "max_microversion": max_version,
        "volume_size": "1", "volume_size_extend": "1",
        "disk_format": "raw,qcow2",
        "backend_names": ",".join(names) or "file",
        "storage_protocol": caps.get("storage_protocol", "file"),
        "vendor_name": caps.get("vendor_name", "mCloud"),
    }
    features = dict(FEATURES)
    features["multi_backend"] = str(len(names) > 1).lower()
    conf["volume-feature-enabled"] = features
    with open(a.out, "w") as f:
        conf.write(f)
    print("volume_conf: wrote %s (max microversion %s, backends %s)" % (a.out, max_version, ",".join(names)))


if __name__ == "__main__":
    main()
