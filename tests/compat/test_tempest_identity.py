"""Compatibility: OpenStack's own Tempest against a live `mcloud up`.

One run of `tempest.api.identity` (tools/tempest.sh starts the cloud and installs Tempest in
its own virtualenv). It must pass every identity test of the interop guideline
(../shared/compat/interop-powered-compute.txt) and at least 90% of the identity tests that are
not skipped for a feature the cloud does not advertise.
"""

from __future__ import annotations

import pytest

from tests.compat.test_tempest_image import INTEROP, tempest

pytestmark = pytest.mark.tempest


def test_tempest_identity(tmp_path):
    if not INTEROP.exists():
        pytest.fail(f"{INTEROP} is missing: the interop test list ships in shared/compat")
    interop = [line.strip() for line in INTEROP.read_text().splitlines()
               if line.strip().startswith("tempest.api.identity")]
    assert len(interop) == 7
    summary, results = tempest(tmp_path, "tempest.api.identity")
    failed_interop = [t for t in interop if results.get(t) != "success"]
    assert not failed_interop, f"interop identity tests not passing: {failed_interop}"
    ran = [s for s in results.values() if s != "skip"]
    passed = sum(1 for s in ran if s == "success")
    print(f"{summary} -> {passed}/{len(ran)} of the non-skipped identity tests pass")
    assert passed >= 0.9 * len(ran), summary
