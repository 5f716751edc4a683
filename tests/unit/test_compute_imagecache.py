"""The host's image cache: one download per image however many instances want it at once, the
data checked against the image service's checksum, Ceph images never downloaded."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from mcloud.compute.imagecache import ImageCache, ImageCacheError

DATA = b"x" * 300_000 + b"tail"


def source(data: bytes = DATA, calls: list[str] | None = None):
    async def chunks(image_id: str) -> AsyncIterator[bytes]:
        if calls is not None:
            calls.append(image_id)
        for i in range(0, len(data), 65536):
            await asyncio.sleep(0)
            yield data[i:i + 65536]
    return chunks


def image(**kw):
    return {"id": "img-1", "disk_format": "qcow2", "size": len(DATA), "os_hash_algo": "sha512",
            "os_hash_value": hashlib.sha512(DATA).hexdigest(), "checksum": hashlib.md5(DATA).hexdigest(),
            "properties": {"hw_vif_model": "e1000"}, **kw}


async def test_downloaded_once_and_shared(tmp_path):
    calls: list[str] = []
    cache = ImageCache(tmp_path / "cache", source(calls=calls))
    specs = await asyncio.gather(*(cache.fetch(image()) for _ in range(5)))
    assert calls == ["img-1"] and cache.downloads == 1
    assert all(s.path == tmp_path / "cache" / "img-1" for s in specs)
    assert specs[0].path.read_bytes() == DATA
    assert specs[0].properties == {"hw_vif_model": "e1000"} and specs[0].disk_format == "qcow2"
    await cache.fetch(image())
    assert calls == ["img-1"]
    assert cache.remove_unused({"img-1"}) == []
    assert cache.remove_unused(set()) == ["img-1"]


async def test_checksum_mismatch_keeps_nothing(tmp_path):
    cache = ImageCache(tmp_path, source(DATA[:-1] + b"!"))
    with pytest.raises(ImageCacheError, match="failed verification"):
        await cache.fetch(image())
    assert list(tmp_path.iterdir()) == []
    md5_only = ImageCache(tmp_path, source(DATA[:-1] + b"!"))
    with pytest.raises(ImageCacheError, match="md5"):
        await md5_only.fetch(image(os_hash_algo=None, os_hash_value=None))


async def test_a_failed_download_is_a_clear_error(tmp_path):
    async def broken(image_id: str) -> AsyncIterator[bytes]:
        yield b"abc"
        raise ConnectionError("the image service went away")

    cache = ImageCache(tmp_path, broken)
    with pytest.raises(ImageCacheError, match="could not be downloaded: the image service went away"):
        await cache.fetch(image())
    assert list(tmp_path.iterdir()) == []


async def test_rbd_images_are_not_downloaded(tmp_path):
    calls: list[str] = []
    cache = ImageCache(tmp_path, source(calls=calls), ceph_conf="/etc/ceph/ceph.conf")
    spec = await cache.fetch(image(rbd="images/img-1@snap"))
    assert spec.rbd == "images/img-1@snap" and spec.ceph_conf == "/etc/ceph/ceph.conf" and spec.path is None
    assert calls == []


def test_the_local_host_takes_the_image_services_rbd_conf():
    from mcloud.compute.hosts import image_ceph_conf
    from mcloud.image.config import ImageConfig

    assert image_ceph_conf(ImageConfig()) is None  # no RBD store: the driver's own default
    assert image_ceph_conf(ImageConfig(stores=["file", "rbd"], rbd={"conf": "/srv/ceph/a.conf"})) == "/srv/ceph/a.conf"
    assert image_ceph_conf(ImageConfig(stores=["rbd"])) == "/etc/ceph/ceph.conf"  # the store's default
    named = ImageConfig(stores=["file", "ceph"], backends={"ceph": {"driver": "rbd", "conf": "/srv/b.conf"}})
    assert image_ceph_conf(named) == "/srv/b.conf"
    assert image_ceph_conf(ImageConfig(stores=["file"], rbd={"conf": "/srv/unused.conf"})) is None


async def test_an_agent_hands_its_ceph_conf_to_rbd_images(tmp_path):
    from mcloud.compute import agent as agent_mod
    from mcloud.compute.config import ComputeConfig
    from mcloud.compute.drivers import fake

    class Transport:
        image_chunks = staticmethod(source())

    a = agent_mod.Agent("h", fake.create({}, tmp_path), Transport(), ComputeConfig(), cache_dir=tmp_path / "c",
                        ceph_conf="/srv/ceph/agent.conf")
    spec = await a.images.fetch(image(rbd="images/img-1@snap"))
    assert (spec.rbd, spec.ceph_conf) == ("images/img-1@snap", "/srv/ceph/agent.conf")


def test_mcloud_agent_ceph_conf_option(tmp_path, monkeypatch):
    from mcloud import cli
    from mcloud.compute import agent as agent_mod

    seen: dict[str, object] = {}

    async def run_agent(*args, **kw):
        seen.update(kw)

    monkeypatch.setattr(agent_mod, "run_agent", run_agent)
    monkeypatch.setattr(cli, "_logging", lambda level: None)
    args = cli.parser().parse_args(["agent", "--controller", "http://127.0.0.1:1", "--data-dir", str(tmp_path / "d"),
                                    "--password", "pw", "--ceph-conf", "/srv/ceph/agent.conf"])
    assert args.func(args) == 0
    assert seen["ceph_conf"] == "/srv/ceph/agent.conf"


async def test_a_kernel_and_ramdisk_come_with_the_image_and_a_missing_one_is_the_cached_copy_or_none(tmp_path):
    calls: list[str] = []
    cache = ImageCache(tmp_path, source(calls=calls))
    with_boot = image(kernel=image(id="k-1", disk_format="aki"), ramdisk=image(id="r-1", disk_format="ari"))
    spec = await cache.fetch(with_boot)
    assert sorted(calls) == ["img-1", "k-1", "r-1"]
    assert (spec.kernel_id, spec.kernel, spec.ramdisk_id, spec.ramdisk) == ("k-1", tmp_path / "k-1", "r-1", tmp_path / "r-1")
    assert spec.kernel.read_bytes() == DATA
    # gone from the image service: the copy this host has, else none (the driver decides)
    spec = await cache.fetch(image(kernel={"id": "k-1", "missing": True}, ramdisk={"id": "r-2", "missing": True}))
    assert (spec.kernel_id, spec.kernel, spec.ramdisk_id, spec.ramdisk) == ("k-1", tmp_path / "k-1", "r-2", None)
    # a kernel is downloaded even when the image itself lives in Ceph
    spec = await cache.fetch(image(id="img-2", rbd="images/img-2@snap", kernel=image(id="k-2")))
    assert spec.path is None and spec.kernel == tmp_path / "k-2" and calls.count("k-2") == 1
