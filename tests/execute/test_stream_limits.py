"""Stream mode against a rate-capped simulator: 429 headers, caps, auth, secrets."""

from pathlib import Path

import pytest

from batchkit.job.model import Job
from batchkit.providers.errors import AuthenticationError
from batchkit.simulate import SimulatorHandle
from tests.execute.jobfiles import KEY_ENV, prepared_job
from tests.execute.streamruns import (
    attempts,
    attempts_of,
    files_containing,
    ok_counts,
    run,
    served,
)


def _job(tmp_path: Path, simulator: SimulatorHandle, prompts: list[str], **kw) -> Job:
    return prepared_job(tmp_path / "job", prompts, base_url=simulator.base_url, **kw)


def _arrivals(simulator: SimulatorHandle, custom_id: str) -> list[dict]:
    return [entry for entry in simulator.log() if entry["custom_id"] == custom_id]


def test_retry_after_is_followed(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2 requests per 3 s window, so the third and fourth get 429 with
    # Retry-After. max_attempts = 1 shows that 429s do not use up attempts.
    simulator = simulator_factory(rpm=2, window_seconds=3)
    monkeypatch.setenv(KEY_ENV, simulator.api_key)
    job = _job(tmp_path, simulator, ["a", "b", "c", "d"], max_attempts=1)
    summary = run(job)
    assert summary.ok == 4
    limited = [row for row in attempts(job) if row["error_type"] == "rate_limit"]
    assert limited
    for row in limited:
        tries = _arrivals(simulator, row["custom_id"])
        assert tries[0]["status"] == 429
        # The fast test backoff waits at most 0.05 s, so a gap of seconds
        # can only come from the header.
        assert tries[1]["time"] - tries[0]["time"] >= 1.0
    assert set(ok_counts(job).values()) == {1}


def test_reset_tokens_header_is_followed(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a token cap and no Retry-After: the 429 carries nothing but the
    # x-ratelimit-*-tokens headers, with a reset time of about 3 s.
    simulator = simulator_factory(tpm=1_500, window_seconds=3, retry_after=False)
    monkeypatch.setenv(KEY_ENV, simulator.api_key)
    job = _job(tmp_path, simulator, ["first", "second"], max_attempts=1)
    summary = run(job)
    assert summary.ok == 2
    limited = [row for row in attempts(job) if row["error_type"] == "rate_limit"]
    assert len(limited) >= 1
    assert attempts_of(job, limited[0]["custom_id"])[-1]["status"] == "ok"
    tries = _arrivals(simulator, limited[0]["custom_id"])
    assert tries[0]["error"] == "rate_limit_tokens"
    assert tries[1]["time"] - tries[0]["time"] >= 1.5


def test_concurrency_cap_holds(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator = simulator_factory(latency_ms=50)
    monkeypatch.setenv(KEY_ENV, simulator.api_key)
    job = _job(tmp_path, simulator, [f"p {n}" for n in range(40)], concurrency=3)
    run(job)
    assert simulator.stats()["max_in_flight"] <= 3


def test_provider_concurrency_cap_backs_off(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider allows 2 in flight (DeepSeek's kind of cap) and the client
    # starts with 8: 429s must lower what is in flight until all succeed.
    simulator = simulator_factory(concurrency=2, latency_ms=100)
    monkeypatch.setenv(KEY_ENV, simulator.api_key)
    job = _job(tmp_path, simulator, [f"p {n}" for n in range(40)], concurrency=8)
    summary = run(job)
    assert summary.ok == 40
    rejected = simulator.stats()["by_error"].get("concurrency", 0)
    assert rejected > 0
    assert rejected < 40


def test_auth_error_stops_the_run(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator = simulator_factory(api_key="sk-the-right-key")
    monkeypatch.setenv(KEY_ENV, "sk-a-wrong-key")
    job = _job(tmp_path, simulator, [f"p {n}" for n in range(50)], concurrency=4)
    with pytest.raises(AuthenticationError) as caught:
        run(job)
    assert KEY_ENV in str(caught.value)
    # Only what was in flight when the first 401 came back was sent.
    assert sum(served(simulator).values()) <= 8
    assert {row["error_type"] for row in attempts(job)} == {"auth"}


def test_api_key_in_no_file(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-leak-check-4f1c9a7e"
    simulator = simulator_factory(api_key=key)
    monkeypatch.setenv(KEY_ENV, key)
    prompts = ["fine", "flaky [[sim:500 x1]]", "gone [[sim:drop x1]]"]
    job = _job(tmp_path, simulator, prompts)
    summary = run(job)
    assert summary.ok == 3
    assert files_containing(job.run_dir, key.encode()) == []
    assert key not in "\n".join(summary.lines())


def test_api_key_not_in_auth_failure(
    tmp_path: Path, simulator_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-leak-check-wrong-77d0"
    simulator = simulator_factory(api_key="sk-the-right-key")
    monkeypatch.setenv(KEY_ENV, key)
    job = _job(tmp_path, simulator, ["one"])
    with pytest.raises(AuthenticationError) as caught:
        run(job)
    assert key not in str(caught.value)
    assert files_containing(job.run_dir, key.encode()) == []


def test_run_log_records_retries(
    tmp_path: Path, simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, simulator.api_key)
    job = _job(tmp_path, simulator, ["flaky [[sim:500 x1]]", "fine"])
    summary = run(job)
    text = summary.log_path.read_text()
    assert summary.log_path.parent == job.logs_dir
    assert summary.run_id in text
    assert "doc:0001" in text
    assert "500" in text
