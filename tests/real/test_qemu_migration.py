"""Live migration between two qemu drivers on this machine (two hosts' instances directories):
the destination waits with ``-incoming defer`` and exports its fresh disk over NBD, the source
mirrors its disk into it and migrates the memory. The guest keeps running: a counter its user
data prints goes on, on the destination's console, from where it was."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from mcloud.compute import states
from tests.harness import missing
from tests.qemu import Guests, make_spec, qemu_missing, tiny, wait_console

pytestmark = pytest.mark.real

COUNTER = """#!/bin/sh
i=0
while true; do echo "tick $i"; i=$((i + 1)); usleep 200000; done
"""


def ticks(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^tick (\d+)\r?$", text, re.M)]


async def test_a_running_guest_moves_to_another_host_and_carries_on(tmp_path):
    if (why := qemu_missing()) is not None:
        missing(why)
    async with Guests(tmp_path / "a") as source, Guests(tmp_path / "b") as dest:
        spec = make_spec(tiny(), user_data=COUNTER)
        await source.driver.spawn(spec)
        await wait_console(source.driver, spec.uuid, lambda s: s.script_output is not None and "tick 5" in s.script_output)
        target = await dest.driver.prepare_incoming(spec)
        assert target.uri.startswith("tcp:127.0.0.1:") and target.disks["disk"].startswith("nbd://127.0.0.1:")
        assert await dest.driver.power_state(spec.uuid) == states.POWER_PAUSED
        seen: list[int] = []

        async def progress(percent: int) -> None:
            seen.append(percent)

        before = ticks(await source.driver.console_output(spec.uuid))
        started = time.monotonic()
        figures = await source.driver.live_migrate(spec.uuid, target, progress)
        moved = time.monotonic()
        await dest.driver.finish_incoming(spec.uuid)
        running = time.monotonic()
        assert await source.driver.list_instances() == {}
        assert await dest.driver.power_state(spec.uuid) == states.RUNNING
        # the counter goes on where it was (memory moved), on the destination's console
        deadline = time.monotonic() + 30
        while True:
            after = ticks(await dest.driver.console_output(spec.uuid))
            if len(after) >= 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert len(after) >= 3, await dest.driver.console_output(spec.uuid)
        assert after[0] > before[-1] and after == list(range(after[0], after[0] + len(after)))
        assert "mcloud-tiny: starting" not in await dest.driver.console_output(spec.uuid)
        # qemu's own figures: the guest's downtime within the move, the memory (96 MB) and disk sent
        assert 0 <= figures["downtime_ms"] <= figures["total_time_ms"] <= (moved - started) * 1000
        assert figures["memory_total"] >= 90 << 20 and figures["memory_processed"] > 0
        assert figures["memory_remaining"] == 0 and figures["disk_total"] > 0  # the overlay's own blocks
        print(f"migration {moved - started:.2f} s (qemu: {figures['total_time_ms']} ms, downtime "
              f"{figures['downtime_ms']} ms, {figures['memory_processed'] >> 20} MiB of memory sent), paused until "
              f"running {running - moved:.3f} s, progress {seen[:3]}...{seen[-2:]}, ticks {before[-1]} -> {after[0]}")
        # and the disk moved with it: a reboot on the destination boots it (its second boot)
        await dest.driver.reboot(spec.uuid, hard=True)
        again = await wait_console(dest.driver, spec.uuid, lambda s: s.boot_count is not None)
        assert again.boot_count == 2 and again.uuid == spec.uuid


async def test_an_aborted_incoming_leaves_nothing_and_the_source_runs_on(tmp_path):
    if (why := qemu_missing()) is not None:
        missing(why)
    async with Guests(tmp_path / "a") as source, Guests(tmp_path / "b") as dest:
        spec = make_spec(tiny())
        await source.driver.spawn(spec)
        target = await dest.driver.prepare_incoming(spec)
        await dest.driver.abort_incoming(spec.uuid)
        assert await dest.driver.list_instances() == {}
        with pytest.raises(Exception):
            await source.driver.live_migrate(spec.uuid, target)
        assert await source.driver.power_state(spec.uuid) == states.RUNNING
        seen = await wait_console(source.driver, spec.uuid, lambda s: s.ready)
        assert seen.uuid == spec.uuid
