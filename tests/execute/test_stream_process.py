"""`batchkit execute` as a child process: kill -9, Ctrl-C, dry run, exit codes."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from batchkit.execute.responselog import recover
from batchkit.job.model import Job
from batchkit.simulate import SimulatorHandle
from tests.execute.jobfiles import KEY_ENV, prepared_job
from tests.execute.streamruns import attempts, ok_counts, run

DEADLINE_SECONDS = 60.0


def _start(job: Job, key: str, *options: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "batchkit.cli.main", "execute", "-j"]
    # A wide console keeps rich from wrapping the lines the tests look for.
    environment = {**os.environ, KEY_ENV: key, "COLUMNS": "400"}
    return subprocess.Popen(
        [*command, str(job.path), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


def _served(simulator: SimulatorHandle) -> int:
    return int(simulator.stats()["requests"])


def _first_run_ok_ids(job: Job, run_ids: set[str]) -> set[str]:
    return {
        row["custom_id"]
        for row in attempts(job)
        if row["status"] == "ok" and row["run_id"] in run_ids
    }


@pytest.mark.slow
def test_kill_9_then_resume_pays_once(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator = simulator_factory(latency_ms=150, latency_sigma=0.0)
    prompts = [f"prompt {n}" for n in range(300)]
    job = prepared_job(
        tmp_path / "job", prompts, base_url=simulator.base_url, concurrency=16
    )
    child = _start(job, simulator.api_key, "--quiet")
    _wait_until(lambda: _served(simulator) >= 120, "120 requests were served")
    child.send_signal(signal.SIGKILL)
    child.communicate()
    killed_run = {row["run_id"] for row in _wal_rows(job)}

    monkeypatch.setenv(KEY_ENV, simulator.api_key)
    summary = run(job)

    assert summary.recovered > 0
    counts = ok_counts(job)
    assert len(counts) == 300
    assert set(counts.values()) == {1}
    sent = Counter(entry["custom_id"] for entry in simulator.log())
    twice = {custom_id for custom_id, count in sent.items() if count > 1}
    # Only requests in flight at the kill went out again: none of them had
    # an ok attempt logged by the killed run, and there were at most 16.
    assert twice.isdisjoint(_first_run_ok_ids(job, killed_run))
    assert len(twice) <= 16


def _wal_rows(job: Job) -> list[dict]:
    rows = []
    for path in job.wal_dir.glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # the torn last line of a killed writer
    return rows


@pytest.mark.slow
def test_ctrl_c_finishes_in_flight_and_exits_130(
    tmp_path: Path, simulator_factory
) -> None:
    simulator = simulator_factory(latency_ms=300, latency_sigma=0.0)
    prompts = [f"prompt {n}" for n in range(200)]
    job = prepared_job(
        tmp_path / "job", prompts, base_url=simulator.base_url, concurrency=8
    )
    child = _start(job, simulator.api_key)
    _wait_until(lambda: _served(simulator) >= 20, "20 requests were served")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=DEADLINE_SECONDS)
    assert child.returncode == 130
    assert f"batchkit execute -j {job.path}" in err
    # Everything the simulator answered with 200 is in the response log.
    recover(job)
    answered = sum(1 for entry in simulator.log() if entry["status"] == 200)
    assert sum(ok_counts(job).values()) == answered
    assert answered < 200


@pytest.mark.slow
def test_second_ctrl_c_cancels_in_flight(tmp_path: Path, simulator_factory) -> None:
    simulator = simulator_factory()
    prompts = [f"stuck {n} [[sim:hang]]" for n in range(4)]
    job = prepared_job(
        tmp_path / "job", prompts, base_url=simulator.base_url, deadline=120
    )
    child = _start(job, simulator.api_key, "--grace", "60")
    _wait_until(lambda: _served(simulator) >= 4, "4 requests hang")
    child.send_signal(signal.SIGINT)
    time.sleep(0.5)
    began = time.monotonic()
    child.send_signal(signal.SIGINT)
    child.communicate(timeout=DEADLINE_SECONDS)
    assert child.returncode == 130
    assert time.monotonic() - began < 10
    recover(job)
    assert {row["status"] for row in attempts(job)} == {"failed"}


def test_sigterm_stops_like_ctrl_c(tmp_path: Path, simulator_factory) -> None:
    simulator = simulator_factory(latency_ms=200, latency_sigma=0.0)
    job = prepared_job(
        tmp_path / "job",
        [f"p {n}" for n in range(100)],
        base_url=simulator.base_url,
        concurrency=4,
    )
    child = _start(job, simulator.api_key)
    _wait_until(lambda: _served(simulator) >= 4, "4 requests were served")
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=DEADLINE_SECONDS)
    assert child.returncode == 130


def test_dry_run_sends_nothing(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = prepared_job(tmp_path / "job", ["a", "b", "c"], base_url=simulator.base_url)
    child = _start(job, simulator.api_key, "--dry-run")
    out, err = child.communicate(timeout=DEADLINE_SECONDS)
    assert child.returncode == 0, err
    assert "3" in out + err
    assert _served(simulator) == 0


def test_wrong_key_exits_1_naming_variable(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    job = prepared_job(tmp_path / "job", ["a"], base_url=simulator.base_url)
    child = _start(job, "sk-wrong")
    _, err = child.communicate(timeout=DEADLINE_SECONDS)
    assert child.returncode == 1
    assert err.count("Error:") == 1
    assert KEY_ENV in err


def test_missing_key_exits_1_naming_variable(tmp_path: Path) -> None:
    job = prepared_job(tmp_path / "job", ["a"])
    child = _start(job, "")
    _, err = child.communicate(timeout=DEADLINE_SECONDS)
    assert child.returncode == 1
    assert KEY_ENV in err
    assert "export" in err
