"""One execute at a time per job: a second run stops before it sends anything."""

from pathlib import Path

import pytest

from batchkit.execute.select import Selection
from batchkit.execute.stream import StreamOptions, run_stream
from batchkit.prepare.run import prepare_job
from batchkit.simulate import SimulatorHandle
from batchkit.store.lock import ExecuteLockedError, execute_lock
from tests.execute.jobfiles import KEY_ENV, prepared_job


def test_second_lock_is_rejected(tmp_path: Path) -> None:
    job = prepared_job(tmp_path, ["hello"])
    with execute_lock(job), pytest.raises(ExecuteLockedError) as raised:  # noqa: SIM117
        with execute_lock(job):
            pass
    assert "another `batchkit execute` or `prepare`" in str(raised.value)
    assert job.name in str(raised.value)


def test_lock_is_free_after_run(tmp_path: Path) -> None:
    job = prepared_job(tmp_path, ["hello"])
    with execute_lock(job):
        pass
    with execute_lock(job):
        pass


def test_locked_job_sends_nothing(
    tmp_path: Path, simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, simulator.api_key or "")
    job = prepared_job(tmp_path, ["one", "two"], base_url=simulator.base_url)
    options = StreamOptions(handle_signals=False)
    with execute_lock(job), pytest.raises(ExecuteLockedError):
        run_stream(job, Selection(), options)
    assert simulator.stats()["requests"] == 0
    summary = run_stream(job, Selection(), options)
    assert summary.ok == 2


def test_prepare_rejected_during_execute(tmp_path: Path) -> None:
    job = prepared_job(tmp_path, ["hello"])
    with execute_lock(job), pytest.raises(ExecuteLockedError) as raised:
        prepare_job(job, write_files=False)
    assert "`batchkit prepare` cannot start" in str(raised.value)
