"""Stream mode against the simulator: faults, retries and what gets logged."""

from pathlib import Path

import pytest

from batchkit.execute.select import Selection
from batchkit.job.model import Job
from batchkit.simulate import SimulatorHandle
from tests.execute.jobfiles import KEY_ENV, SIMULATOR_KEY, prepared_job
from tests.execute.streamruns import attempts, attempts_of, ok_counts, run, served


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SIMULATOR_KEY)


def _job(tmp_path: Path, simulator: SimulatorHandle, prompts: list[str], **kw) -> Job:
    return prepared_job(tmp_path / "job", prompts, base_url=simulator.base_url, **kw)


def test_every_request_ok_once(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = _job(tmp_path, simulator, [f"prompt {n}" for n in range(30)])
    summary = run(job)
    assert summary.ok == 30
    assert summary.failed == 0
    assert set(ok_counts(job).values()) == {1}
    assert len(ok_counts(job)) == 30
    # The simulator saw each custom_id once, in the X-Client-Request-Id header.
    assert served(simulator) == ok_counts(job)


def test_rerun_sends_nothing(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = _job(tmp_path, simulator, ["one", "two", "three"])
    run(job)
    before = sum(served(simulator).values())
    summary = run(job)
    assert summary.selected == 0
    assert sum(served(simulator).values()) == before


def test_reasoner_keeps_reasoning_apart(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    prefix = "You write careful product pages. " * 40
    prompts = [prefix + "Alpha", prefix + "Beta"]
    job = _job(tmp_path, simulator, prompts, model="deepseek-reasoner", concurrency=1)
    run(job)
    rows = attempts(job)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    for row in rows:
        assert row["content"]
        assert row["reasoning_content"]
        assert row["reasoning_content"] not in row["content"]
        assert row["reasoning_tokens"] > 0
        assert row["completion_tokens"] >= row["reasoning_tokens"]
        assert row["cache_miss_tokens"] is not None
        assert row["cost_usd"] > 0
    # The second prompt repeats the first one's prefix, a cache hit.
    assert rows[1]["cache_hit_tokens"] > 0


def test_server_errors_are_retried(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = _job(tmp_path, simulator, ["flaky [[sim:500 x2]]", "fine"], max_attempts=5)
    summary = run(job)
    assert summary.ok == 2
    rows = attempts_of(job, "doc:0001")
    assert [row["status"] for row in rows] == ["failed", "failed", "ok"]
    assert [row["error_type"] for row in rows[:2]] == ["server", "server"]
    assert [row["http_status"] for row in rows] == [500, 500, 200]


def test_server_error_storm_stops_at_max_attempts(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    prompts = [f"broken {n} [[sim:500]]" for n in range(5)] + ["fine"]
    job = _job(tmp_path, simulator, prompts, max_attempts=3)
    summary = run(job)
    assert summary.ok == 1
    assert summary.failed == 5
    counts = served(simulator)
    for number in range(1, 6):
        assert counts[f"doc:{number:04d}"] == 3
    assert len(attempts(job)) == 5 * 3 + 1


def test_dropped_connection_is_retried(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    job = _job(tmp_path, simulator, ["dropped [[sim:drop x1]]"])
    run(job)
    rows = attempts_of(job, "doc:0001")
    assert [row["status"] for row in rows] == ["failed", "ok"]
    assert rows[0]["error_type"] == "connection"
    assert rows[0]["http_status"] is None
    assert ok_counts(job)["doc:0001"] == 1


def test_truncated_body_is_retried(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = _job(tmp_path, simulator, ["cut [[sim:truncate x1]]"])
    run(job)
    rows = attempts_of(job, "doc:0001")
    assert [row["status"] for row in rows] == ["failed", "ok"]
    assert rows[0]["error_type"] in ("invalid_json", "connection")


def test_hang_ends_at_the_deadline(tmp_path: Path, simulator: SimulatorHandle) -> None:
    job = _job(
        tmp_path, simulator, ["stuck [[sim:hang x1]]"], deadline=1.0, read_timeout=30
    )
    run(job)
    rows = attempts_of(job, "doc:0001")
    assert [row["status"] for row in rows] == ["failed", "ok"]
    assert rows[0]["error_type"] == "timeout"
    assert 900 <= rows[0]["latency_ms"] < 3000


def test_padding_before_json_parses(tmp_path: Path, simulator_factory) -> None:
    simulator = simulator_factory(pad_interval=0.2)
    job = _job(tmp_path, simulator, ["slow [[sim:pad 1s]]"], read_timeout=5)
    run(job)
    rows = attempts_of(job, "doc:0001")
    assert [row["status"] for row in rows] == ["ok"]
    assert rows[0]["content"]
    assert [entry["padded"] for entry in simulator.log()] == [True]


def test_endless_padding_cannot_outlive_deadline(
    tmp_path: Path, simulator_factory
) -> None:
    # Blank lines every 0.2 s keep the 5 s read timeout from firing, so only
    # the 1.5 s deadline can end the first attempt.
    simulator = simulator_factory(pad_interval=0.2)
    job = _job(
        tmp_path,
        simulator,
        ["trickle [[sim:pad forever x1]]"],
        read_timeout=5,
        deadline=1.5,
    )
    run(job)
    rows = attempts_of(job, "doc:0001")
    assert [row["status"] for row in rows] == ["failed", "ok"]
    assert rows[0]["error_type"] == "timeout"
    assert rows[0]["latency_ms"] < 4000


def test_only_failed_resends_just_failures(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    prompts = ["bad [[sim:500 x2]]", "fine", "also bad [[sim:503 x2]]", "fine too"]
    job = _job(tmp_path, simulator, prompts, max_attempts=2)
    first = run(job)
    assert first.failed == 2
    before = served(simulator)
    second = run(job, Selection(only_failed=True))
    assert second.ok == 2
    assert served(simulator) - before == {"doc:0001": 1, "doc:0003": 1}


def test_only_failed_resends_rejected(
    tmp_path: Path, simulator: SimulatorHandle
) -> None:
    job = _job(tmp_path, simulator, ["cut short [[sim:length x1]]", "fine"])
    run(job)
    rows = attempts_of(job, "doc:0001")
    assert [row["finish_reason"] for row in rows] == ["length"]
    assert rows[0]["status"] == "ok"
    before = served(simulator)
    run(job, Selection(only_failed=True))
    assert served(simulator) - before == {"doc:0001": 1}


def test_max_cost_stops_dispatch(tmp_path: Path, simulator: SimulatorHandle) -> None:
    # Each request may cost up to about 10 prompt and 4000 completion tokens,
    # at 1 and 2 USD per million, so 0.01 USD covers a few, never all 40.
    job = _job(tmp_path, simulator, [f"p {n}" for n in range(40)], max_tokens=4000)
    summary = run(job, max_cost=0.01, concurrency=4)
    assert summary.stop_reason == "budget"
    assert 0 < summary.ok < 40
    assert summary.spent_total_usd <= 0.01
    spent = sum(row["cost_usd"] or 0.0 for row in attempts(job))
    assert spent <= 0.01
    assert sum(served(simulator).values()) == summary.attempts
