"""Rate adherence over a full minute, read from the simulator's request log."""

from pathlib import Path

import pytest

from batchkit.job.model import Job
from batchkit.simulate.requestlog import max_in_window
from tests.execute.jobfiles import KEY_ENV, prepared_job
from tests.execute.streamruns import run

RPM = 1_200
REQUESTS = 1_300  # 65 s at the cap, so one full 60-second window is measured


def _arrival_times(simulator) -> list[float]:
    return sorted(entry["time"] for entry in simulator.log())


@pytest.mark.slow
def test_rate_cap_held_and_used(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator = simulator_factory(latency_ms=50)
    monkeypatch.setenv(KEY_ENV, simulator.api_key)
    job: Job = prepared_job(
        tmp_path / "job",
        [f"prompt {n}" for n in range(REQUESTS)],
        base_url=simulator.base_url,
        rpm=RPM,
        concurrency=32,
        max_tokens=50,
    )
    summary = run(job)
    assert summary.ok == REQUESTS
    times = _arrival_times(simulator)
    assert len(times) == REQUESTS
    # No 60-second window over the cap, no second over 110 % of R/60.
    assert max_in_window(times, 60.0) <= RPM
    assert max_in_window(times, 1.0) <= 1.1 * RPM / 60
    # At least 97 % of the cap sustained: the first minute holds >= 0.97 R.
    first_minute = sum(1 for stamp in times if stamp < times[0] + 60.0)
    assert first_minute >= 0.97 * RPM
