"""Compatibility: OpenStack's own Tempest `tempest.api.image` against a live `mcloud up`.

tools/tempest.sh starts the cloud (and a loopback HTTP server for the web-download tests),
writes [image] / [image-feature-enabled] for what mCloud's image service implements, and runs
Tempest in its own virtualenv. The run must pass every image test of the interop guideline
(../shared/compat/interop-powered-compute.txt) and at least 90% of the image tests that are not
skipped for a feature the cloud does not advertise.
"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import REPO, free_port

pytestmark = pytest.mark.tempest

INTEROP = REPO.parent / "shared" / "compat" / "interop-powered-compute.txt"


def workspace(tmp_path) -> Path:
    """The Tempest workspace of a test's runs: MCLOUD_TEMPEST_WORK, else one of its own
    (tools/tempest.sh shares only its venv), so that the suite's workers may run two side by side."""
    return Path(os.environ.get("MCLOUD_TEMPEST_WORK") or tmp_path / "tempest-work")


def tempest(tmp_path, *args: str, cloud_dir: Path | None = None) -> tuple[str, dict[str, str]]:
    """Run tools/tempest.sh with a cloud of its own, or against the running cloud whose data dir
    is ``cloud_dir``: (its summary line, test -> status)."""
    where = ["--cloud-dir", str(cloud_dir)] if cloud_dir else [
        "--start", "--port", str(free_port()), "--cloud-dir", str(tmp_path / "cloud")]
    cmd = [str(REPO / "tools" / "tempest.sh"), *where, *args]
    work = workspace(tmp_path)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "MCLOUD_TEMPEST_WORK": str(work)})
    lines = [line for line in run.stdout.splitlines() if line.startswith("tempest:")]
    assert lines, f"tempest.sh printed no summary:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    with open(work / "results.csv") as f:
        statuses = {row["test"].split("[")[0]: row["status"] for row in csv.DictReader(f)}
    return lines[-1], statuses


def test_tempest_image(tmp_path):
    if not INTEROP.exists():
        pytest.fail(f"{INTEROP} is missing: the interop test list ships in shared/compat")
    interop = [t for t in map(str.strip, INTEROP.read_text().splitlines()) if t.startswith("tempest.api.image")]
    assert len(interop) == 20
    summary, statuses = tempest(tmp_path, "--services", "glance", "tempest.api.image")
    assert [t for t in interop if statuses.get(t) != "success"] == [], summary
    counted = [status for status in statuses.values() if status != "skip"]
    good = counted.count("success")
    print(f"{summary} -> {good}/{len(counted)} of the non-skipped image tests pass")
    assert good >= 0.9 * len(counted), summary
