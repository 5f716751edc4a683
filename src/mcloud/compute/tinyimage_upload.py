"""Putting the tiny image into a cloud's image service, as a user would: through the Glance API
of a cloud named in a ``clouds.yaml`` (the ``openstack`` CLI's file), with a password login to
its identity service. An image named ``tiny`` that was uploaded from the same build (property
``mcloud_tiny_key``) is reused rather than uploaded again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import yaml

from mcloud.compute.tinyimage import IMAGE_NAME, IMAGE_PROPERTIES, MIN_RAM_MB, TinyImage


class UploadError(RuntimeError):
    pass


def clouds_yaml_paths(data_dir: Path | None = None) -> list[Path]:
    """Where the cloud definitions are looked for, in openstacksdk's order, then mCloud's own."""
    paths = []
    if os.environ.get("OS_CLIENT_CONFIG_FILE"):
        paths.append(Path(os.environ["OS_CLIENT_CONFIG_FILE"]))
    paths += [Path.cwd() / "clouds.yaml", Path.home() / ".config/openstack/clouds.yaml",
              Path("/etc/openstack/clouds.yaml")]
    if data_dir is not None:
        paths.append(data_dir / "clouds.yaml")
    return paths


def load_cloud(name: str, paths: list[Path]) -> dict[str, Any]:
    for path in paths:
        if path.is_file():
            clouds = (yaml.safe_load(path.read_text()) or {}).get("clouds", {})
            if name in clouds:
                return clouds[name]
    raise UploadError(f"no cloud {name!r} in {', '.join(str(p) for p in paths)}")


def _login(client: httpx.Client, cloud: dict[str, Any]) -> tuple[str, str]:
    """A project-scoped token and the image service's public endpoint."""
    auth = cloud.get("auth", {})
    user: dict[str, Any] = {"name": auth["username"], "password": auth["password"],
                            "domain": _domain(auth, "user")}
    scope = {"project": {"name": auth["project_name"], "domain": _domain(auth, "project")}}
    url = auth["auth_url"].rstrip("/")
    if not url.endswith("/v3"):
        url += "/v3"
    r = client.post(f"{url}/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
        "user": user}}, "scope": scope}})
    if r.status_code != 201:
        raise UploadError(f"login to {url} failed: {r.status_code} {r.text[:200]}")
    interface = cloud.get("interface", "public")
    region = cloud.get("region_name")
    for service in r.json()["token"].get("catalog", []):
        if service["type"] == "image":
            for endpoint in service["endpoints"]:
                if endpoint["interface"] == interface and (not region or endpoint.get("region_id") == region):
                    return r.headers["x-subject-token"], endpoint["url"].rstrip("/")
    raise UploadError("the cloud's catalog has no image service")


def _domain(auth: dict[str, Any], who: str) -> dict[str, str]:
    if auth.get(f"{who}_domain_id"):
        return {"id": auth[f"{who}_domain_id"]}
    if auth.get(f"{who}_domain_name"):
        return {"name": auth[f"{who}_domain_name"]}
    return {"id": "default"}


def upload(image: TinyImage, cloud: dict[str, Any], name: str = IMAGE_NAME, public: bool = True) -> dict[str, Any]:
    """The image service's record of ``image`` in ``cloud`` (uploaded unless already there)."""
    key = image.key[:16]
    with httpx.Client(timeout=120) as client:
        token, endpoint = _login(client, cloud)
        headers = {"X-Auth-Token": token}
        base = endpoint if endpoint.endswith("/v2") else f"{endpoint}/v2"
        r = client.get(f"{base}/images", params={"name": name}, headers=headers)
        if r.status_code != 200:
            raise UploadError(f"listing images failed: {r.status_code} {r.text[:200]}")
        for found in r.json().get("images", []):
            if found.get("mcloud_tiny_key") == key and found.get("status") == "active":
                return found
        body = {"name": name, "disk_format": "qcow2", "container_format": "bare", "min_ram": MIN_RAM_MB,
                "visibility": "public" if public else "private", "mcloud_tiny_key": key,
                "mcloud_tiny_kernel": image.kernel_version, **IMAGE_PROPERTIES}
        r = client.post(f"{base}/images", json=body, headers=headers)
        if r.status_code == 403 and public:  # not an admin: a private image then
            body["visibility"] = "private"
            r = client.post(f"{base}/images", json=body, headers=headers)
        if r.status_code != 201:
            raise UploadError(f"creating the image failed: {r.status_code} {r.text[:200]}")
        record = r.json()
        with open(image.path, "rb") as f:
            r = client.put(f"{base}/images/{record['id']}/file", content=f,
                           headers={**headers, "Content-Type": "application/octet-stream"})
        if r.status_code != 204:
            client.delete(f"{base}/images/{record['id']}", headers=headers)
            raise UploadError(f"uploading the image data failed: {r.status_code} {r.text[:200]}")
        return client.get(f"{base}/images/{record['id']}", headers=headers).json()
