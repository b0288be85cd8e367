"""`status` while a real `batchkit execute` process sends requests."""

import os
import subprocess
import sys
import time
from pathlib import Path

from batchkit.analysis.status import read_status
from batchkit.simulate import SimulatorHandle
from tests.execute.jobfiles import KEY_ENV, SIMULATOR_KEY, prepared_job

REQUESTS = 300
DEADLINE_SECONDS = 120.0


def test_status_follows_running_execute(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    simulator.configure(latency_ms=30)
    job = prepared_job(
        tmp_path,
        [f"Write about topic {n}." for n in range(REQUESTS)],
        base_url=simulator.base_url,
        rpm=6_000,
        concurrency=8,
    )
    execute = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("batchkit")),
            "execute",
            "-j",
            str(job.path),
        ],
        env={**os.environ, KEY_ENV: SIMULATOR_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    snapshots = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while execute.poll() is None:
            assert time.monotonic() < deadline, "execute did not finish in time"
            snapshots.append(read_status(job, lock_wait=30).totals)
            time.sleep(0.1)
    finally:
        if execute.poll() is None:
            execute.kill()
        _, errors = execute.communicate(timeout=30)
    assert execute.returncode == 0, errors.decode()
    # execute compacts only on exit here, so the counts seen mid-run came
    # from its write-ahead log.
    mid_run = [s for s in snapshots if 0 < s.pending < REQUESTS]
    assert mid_run, f"no status saw the run in progress: {snapshots}"
    assert all(s.total == REQUESTS for s in snapshots)
    final = read_status(job).totals
    assert (final.pending, final.ok + final.rejected) == (0, REQUESTS)
