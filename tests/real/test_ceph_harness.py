"""The private Ceph cluster the tests start (tests/ceph.py): healthy, private, one copy per pool."""

from __future__ import annotations

import pytest

from tests.ceph import CephCluster

pytestmark = pytest.mark.real


def test_cluster_is_healthy_with_capacity(ceph: CephCluster) -> None:
    ceph.wait_for(lambda: ceph.health() == "HEALTH_OK", 30, "HEALTH_OK")
    stats = ceph.ceph_json("df")["stats"]  # type: ignore[index]
    assert stats["total_bytes"] >= 10 << 30  # the manager reports the OSD's capacity
    assert stats["total_avail_bytes"] > 0


def test_pools_keep_one_copy(ceph: CephCluster) -> None:
    extra = ceph.create_pool("harness-extra", pg_num=4)
    pools = {p["pool_name"]: p for p in ceph.ceph_json("osd", "pool", "ls", "detail")}  # type: ignore[union-attr]
    assert {"images", extra} <= set(pools)
    assert extra in ceph.pools
    for name in ("images", extra):
        assert pools[name]["size"] == 1
        assert pools[name]["min_size"] == 1
        assert "rbd" in pools[name]["application_metadata"]
    ceph.delete_pool(extra)
    assert extra not in {p["pool_name"] for p in ceph.ceph_json("osd", "pool", "ls", "detail")}  # type: ignore[union-attr]


def test_cluster_is_private(ceph: CephCluster) -> None:
    """Its own fsid and conf, daemons on loopback only, no authentication, files in its temp dir."""
    assert ceph.ceph_json("fsid")["fsid"] == ceph.fsid  # type: ignore[index]
    mons = ceph.ceph_json("mon", "dump")["mons"]  # type: ignore[index]
    assert [m["public_addrs"]["addrvec"][0]["addr"] for m in mons] == [f"127.0.0.1:{ceph.port}"]
    osds = ceph.ceph_json("osd", "dump")["osds"]  # type: ignore[index]
    assert len(osds) == 1 and osds[0]["up"] == 1
    assert all(a["addr"].startswith("127.0.0.1:") for a in osds[0]["public_addrs"]["addrvec"])
    assert "auth client required = none" in ceph.conf.read_text()
    assert ceph.conf.parent == ceph.root and (ceph.root / "osd.0.block").stat().st_blocks * 512 < (
        ceph.root / "osd.0.block").stat().st_size  # sparse
    for proc in ceph.procs.values():
        assert proc.poll() is None
