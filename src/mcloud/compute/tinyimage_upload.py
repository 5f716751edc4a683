"""Putting the tiny image into a cloud's image service, as a user would: through the Glance API
of a cloud named in a ``clouds.yaml`` (the ``openstack`` CLI's file), with a password login to
its identity service. An image named ``tiny`` that was uploaded from the same build (property
``mcloud_tiny_key``) is reused rather than uploaded again.

As devstack uploads CirrOS's UEC tarball, the kernel and the initramfs go in too, as images of
their own (``tiny-kernel``, disk and container format ``aki``; ``tiny-ramdisk``, ``ari``), and
the disk image names them (``kernel_id``, ``ramdisk_id``, ``os_command_line``): a server of it
boots the kernel directly (Nova's direct kernel boot; under TCG the BIOS reading the kernel from
the disk through int 13h is a good part of a boot). The disk still boots alone (syslinux) when
uploaded without them.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from mcloud.compute import tinyimage, tinyimage_guest
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


@dataclasses.dataclass(frozen=True)
class BootFiles:
    """The tiny image's kernel and initramfs as files of their own, for direct kernel boot."""

    kernel: Path
    ramdisk: Path
    #: the kernel's command line (the disk's syslinux APPEND line)
    cmdline: str
    key: str  # the content key of the build they belong to (TinyImage.key)


def boot_files(cache_dir: Path | None = None, kernel: Path | None = None) -> BootFiles:
    """The kernel and the initramfs that ``tinyimage.build`` (same arguments) packs into its
    disk (the initramfs is deterministic), cached beside it by the same key. The initramfs is
    the uncompressed cpio: under TCG, unpacking gzip costs the guest a few tenths of a second
    of every boot, and the few MB more cost nothing once the host has cached it."""
    inputs = tinyimage._inputs(kernel)  # noqa: SLF001 - the builder's own inputs, not a copy of them
    key = inputs.key()
    cache = (cache_dir or tinyimage.default_cache_dir()) / "tiny"
    cache.mkdir(parents=True, exist_ok=True)
    files = BootFiles(kernel=cache / f"tiny-{key[:16]}.vmlinuz", ramdisk=cache / f"tiny-{key[:16]}.initrd.cpio",
                      cmdline=kernel_cmdline(), key=key)
    for dest, data in ((files.kernel, inputs.kernel.read_bytes),
                       (files.ramdisk, lambda: gzip.decompress(tinyimage.initramfs(inputs)))):
        if not dest.exists():
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data())
            os.replace(tmp, dest)
    return files


def kernel_cmdline() -> str:
    """The command line the disk's boot loader gives the kernel (syslinux.cfg's APPEND)."""
    found = re.search(r"^\s*APPEND\s+(.+?)\s*$", tinyimage_guest.SYSLINUX_CFG, re.MULTILINE)
    if found is None:
        raise UploadError("the tiny image's syslinux.cfg has no APPEND line")
    return found.group(1)


def upload(image: TinyImage, cloud: dict[str, Any], name: str = IMAGE_NAME, public: bool = True,
           boot: BootFiles | None = None) -> dict[str, Any]:
    """The image service's record of ``image`` in ``cloud`` (uploaded unless already there).
    ``boot``: its kernel and initramfs, uploaded first as ``<name>-kernel`` (aki) and
    ``<name>-ramdisk`` (ari) images that ``image`` then names (direct kernel boot)."""
    if boot is not None and boot.key != image.key:
        raise UploadError("the kernel and initramfs are not of this build of the tiny image")
    with httpx.Client(timeout=120) as client:
        token, endpoint = _login(client, cloud)
        glance = _Glance(client, endpoint if endpoint.endswith("/v2") else f"{endpoint}/v2", {"X-Auth-Token": token})
        props: dict[str, Any] = {"min_ram": MIN_RAM_MB, "mcloud_tiny_kernel": image.kernel_version, **IMAGE_PROPERTIES}
        if boot is not None:
            kernel = glance.put(f"{name}-kernel", "aki", boot.kernel, image.key, public, {})
            ramdisk = glance.put(f"{name}-ramdisk", "ari", boot.ramdisk, image.key, public, {})
            props.update(kernel_id=kernel["id"], ramdisk_id=ramdisk["id"], os_command_line=boot.cmdline)
        return glance.put(name, "qcow2", image.path, image.key, public, props)


class _Glance:
    def __init__(self, client: httpx.Client, base: str, headers: dict[str, str]):
        self.client, self.base, self.headers = client, base, headers

    def put(self, name: str, disk_format: str, path: Path, build_key: str, public: bool,
            props: dict[str, Any]) -> dict[str, Any]:
        """Image ``name`` of this build (and, for the disk, these kernel/ramdisk images): the one
        there, or a new one with ``path``'s data."""
        key = build_key[:16]
        r = self.client.get(f"{self.base}/images", params={"name": name}, headers=self.headers)
        if r.status_code != 200:
            raise UploadError(f"listing images failed: {r.status_code} {r.text[:200]}")
        boot_ids = {k: props.get(k) for k in ("kernel_id", "ramdisk_id")}
        for found in r.json().get("images", []):
            if found.get("mcloud_tiny_key") == key and found.get("status") == "active" and all(
                    found.get(k) == v for k, v in boot_ids.items()):
                return found
        container = disk_format if disk_format in ("aki", "ari") else "bare"
        body = {"name": name, "disk_format": disk_format, "container_format": container,
                "visibility": "public" if public else "private", "mcloud_tiny_key": key, **props}
        r = self.client.post(f"{self.base}/images", json=body, headers=self.headers)
        if r.status_code == 403 and public:  # not an admin: a private image then
            body["visibility"] = "private"
            r = self.client.post(f"{self.base}/images", json=body, headers=self.headers)
        if r.status_code != 201:
            raise UploadError(f"creating the image {name} failed: {r.status_code} {r.text[:200]}")
        record = r.json()
        with open(path, "rb") as f:
            r = self.client.put(f"{self.base}/images/{record['id']}/file", content=f,
                                headers={**self.headers, "Content-Type": "application/octet-stream"})
        if r.status_code != 204:
            self.client.delete(f"{self.base}/images/{record['id']}", headers=self.headers)
            raise UploadError(f"uploading the data of image {name} failed: {r.status_code} {r.text[:200]}")
        return self.client.get(f"{self.base}/images/{record['id']}", headers=self.headers).json()
