"""Operating a stream run: off-peak windows, set-aside parts, a free database."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batchkit.execute.errors import ExecuteError
from batchkit.execute.responselog import recover
from batchkit.simulate import SimulatorHandle
from batchkit.store.database import connect
from tests.execute.jobfiles import KEY_ENV, prepared_job
from tests.execute.streamruns import ok_counts, run, served

DEADLINE_SECONDS = 30.0


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch, simulator: SimulatorHandle) -> None:
    monkeypatch.setenv(KEY_ENV, simulator.api_key or "")


def _window_around_now(hours_from_now: float, length_hours: float) -> str:
    start = datetime.now(UTC) + timedelta(hours=hours_from_now)
    end = start + timedelta(hours=length_hours)
    return f'[{{ start = "{start:%H:%M}", end = "{end:%H:%M}", factor = 0.5 }}]'


def test_off_peak_needs_windows(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = prepared_job(tmp_path / "job", ["a"], base_url=simulator.base_url)
    with pytest.raises(ExecuteError, match="--off-peak: model deepseek-chat"):
        run(job, off_peak=True)
    assert served(simulator) == {}


def test_off_peak_sends_inside_window(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    job = prepared_job(
        tmp_path / "job",
        ["a", "b"],
        base_url=simulator.base_url,
        windows=_window_around_now(-1, 2),
    )
    summary = run(job, off_peak=True)
    assert summary.ok == 2


def test_corrupt_part_is_sent_again(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = prepared_job(tmp_path / "job", ["a", "b", "c"], base_url=simulator.base_url)
    run(job)
    parts = [
        part
        for part in job.responses_dir.glob("part-*.parquet")
        if "schema" not in part.name
    ]
    assert len(parts) == 1
    parts[0].write_bytes(b"PAR1 damaged on disk")
    before = served(simulator)
    summary = run(job)
    assert summary.ok == 3
    assert served(simulator) - before == {"doc:0001": 1, "doc:0002": 1, "doc:0003": 1}
    assert parts[0].with_name(parts[0].name + ".corrupt").exists()
    assert set(ok_counts(job).values()) == {1}


def test_database_free_during_run(tmp_path: Path, simulator: SimulatorHandle) -> None:
    prompts = [f"slow {n} [[sim:hang 3s]]" for n in range(4)]
    job = prepared_job(
        tmp_path / "job", prompts, base_url=simulator.base_url, deadline=30
    )
    command = [sys.executable, "-m", "batchkit.cli.main", "execute", "-q", "-j"]
    child = subprocess.Popen(
        [*command, str(job.path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, KEY_ENV: simulator.api_key or ""},
    )
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while sum(served(simulator).values()) < 4:
            assert time.monotonic() < deadline, "the requests never arrived"
            time.sleep(0.05)
        # All 4 requests are in flight: another process can write the database.
        with connect(job, wait=1.0) as connection:
            row = connection.execute("SELECT count(*) FROM requests").fetchone()
        assert row == (4,)
        assert child.poll() is None
    finally:
        child.terminate()
        child.wait(DEADLINE_SECONDS)
    recover(job)
