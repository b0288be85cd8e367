"""Selecting pending requests: attempts, limits, live batches, --only-failed."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from batchkit.execute.errors import SelectionError
from batchkit.execute.responselog import ResponseLog
from batchkit.execute.select import (
    PendingRequest,
    Selection,
    count_pending,
    iter_pending,
)
from batchkit.job.model import Job
from batchkit.store.database import connect
from tests.execute.jobfiles import prepared_job

PROMPTS = ["alpha", "beta", "gamma", "delta", "epsilon"]
GOOD = "A long enough answer that passes the checks."


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return prepared_job(tmp_path / "job", PROMPTS, max_attempts=3, max_tokens=100)


def _hashes(job: Job) -> dict[str, str]:
    with connect(job) as connection:
        rows = connection.execute(
            "SELECT custom_id, request_hash FROM requests"
        ).fetchall()
    return dict(rows)


def _log(job: Job, *attempts: tuple[str, str, str | None]) -> None:
    """Append attempts given as (custom_id, status, error_type) in one run."""
    hashes = _hashes(job)
    now = datetime.now(UTC)
    with ResponseLog(job, "run-test") as log:
        for number, (custom_id, status, error_type) in enumerate(attempts):
            log.append(
                {
                    "attempt_id": f"run-test-{number:07d}",
                    "custom_id": custom_id,
                    "request_hash": hashes[custom_id],
                    "stage": "doc",
                    "item_key": custom_id.split(":")[1],
                    "attempt": number + 1,
                    "run_id": "run-test",
                    "mode": "stream",
                    "status": status,
                    "error_type": error_type,
                    "content": GOOD if status == "ok" else None,
                    "finish_reason": "stop" if status == "ok" else None,
                    "cost_usd": 0.001,
                    "started_at": now,
                    "finished_at": now,
                }
            )


def _pending(job: Job, selection: Selection | None = None) -> list[PendingRequest]:
    chunks = iter_pending(job, selection or Selection())
    return [request for chunk in chunks for request in chunk]


def _ids(job: Job, selection: Selection | None = None) -> list[str]:
    # Rows come in no set order unless --limit is given, so compare sorted ids.
    return sorted(request.custom_id for request in _pending(job, selection))


def test_fresh_job_is_all_pending(job: Job) -> None:
    assert _ids(job) == [f"doc:{n:04d}" for n in range(1, 6)]


def test_pending_request_fields(job: Job) -> None:
    first = _pending(job, Selection(limit=1))[0]
    assert first.stage == "doc"
    assert first.item_key == "0001"
    assert first.model == "deepseek-chat"
    assert first.max_tokens == 100
    assert first.attempts == 0
    assert '"custom_id":"doc:0001"' in first.line


def test_count_pending_with_max_cost(job: Job) -> None:
    with connect(job) as connection:
        count, cost = count_pending(connection, job, Selection())
    assert count == 5
    # 5 requests x 100 max tokens x 2.0 USD per million, plus the prompts.
    assert cost is not None
    assert 5 * 100 * 2.0 / 1e6 < cost < 5 * 200 * 2.0 / 1e6


def test_ok_attempt_is_not_pending(job: Job) -> None:
    _log(job, ("doc:0001", "ok", None))
    assert "doc:0001" not in _ids(job)


def test_failed_attempts_count_to_the_limit(job: Job) -> None:
    _log(
        job,
        ("doc:0001", "failed", "server"),
        ("doc:0001", "failed", "timeout"),
        ("doc:0002", "failed", "server"),
        ("doc:0002", "failed", "server"),
        ("doc:0002", "failed", "connection"),
    )
    pending = {request.custom_id: request for request in _pending(job)}
    assert pending["doc:0001"].attempts == 2
    assert "doc:0002" not in pending


@pytest.mark.parametrize("error_type", ["rate_limit", "cancelled"])
def test_uncounted_attempts(job: Job, error_type: str) -> None:
    _log(job, *[("doc:0003", "failed", error_type)] * 4)
    pending = {request.custom_id: request for request in _pending(job)}
    assert pending["doc:0003"].attempts == 0
    assert pending["doc:0003"].logged_attempts == 4


def _add_batch(job: Job, status: str, custom_id: str) -> None:
    now = datetime.now(UTC)
    with connect(job) as connection:
        connection.execute(
            "INSERT INTO provider_batches (batch_id, run_id, input_file_id, status, "
            "request_count, created_at, updated_at) VALUES (?, 'r', 'f', ?, 1, ?, ?)",
            [f"batch_{status}", status, now, now],
        )
        connection.execute(
            "INSERT INTO batch_requests (batch_id, custom_id, request_hash) "
            "VALUES (?, ?, ?)",
            [f"batch_{status}", custom_id, _hashes(job)[custom_id]],
        )


def test_live_batch_requests_are_not_pending(job: Job) -> None:
    _add_batch(job, "in_progress", "doc:0004")
    _add_batch(job, "expired", "doc:0005")
    ids = _ids(job)
    assert "doc:0004" not in ids
    assert "doc:0005" in ids


def test_only_failed_selects_latest_failures(job: Job) -> None:
    _log(
        job,
        ("doc:0001", "failed", "server"),
        ("doc:0002", "failed", "server"),
        ("doc:0002", "ok", None),
        *[("doc:0003", "failed", "server")] * 3,
    )
    ids = _ids(job, Selection(only_failed=True))
    # doc:0003 is out of attempts, but --only-failed asks for it explicitly.
    assert ids == ["doc:0001", "doc:0003"]


def test_only_failed_selects_rejected_results(job: Job) -> None:
    hashes = _hashes(job)
    now = datetime.now(UTC)
    with ResponseLog(job, "run-rej") as log:
        log.append(
            {
                "attempt_id": "run-rej-0000001",
                "custom_id": "doc:0004",
                "request_hash": hashes["doc:0004"],
                "stage": "doc",
                "item_key": "0004",
                "status": "ok",
                "content": "cut",
                "finish_reason": "length",
                "started_at": now,
                "finished_at": now,
            }
        )
    assert "doc:0004" not in _ids(job)
    assert _ids(job, Selection(only_failed=True)) == ["doc:0004"]


def test_edited_request_is_pending_again(job: Job, tmp_path: Path) -> None:
    _log(job, ("doc:0001", "ok", None))
    edited = prepared_job(tmp_path / "job", ["alpha, edited", *PROMPTS[1:]])
    assert "doc:0001" in _ids(edited)


def test_where_and_limit(job: Job) -> None:
    selection = Selection(where="item_key >= '0002'", limit=2)
    # With --limit the first rows by custom_id are taken, in that order.
    pending = _pending(job, selection)
    assert [request.custom_id for request in pending] == ["doc:0002", "doc:0003"]


def test_bad_where_names_the_option(job: Job) -> None:
    with pytest.raises(SelectionError, match="--where 'no_such_column = 1'"):
        _ids(job, Selection(where="no_such_column = 1"))


def test_unknown_stage_lists_the_stages(job: Job) -> None:
    with pytest.raises(SelectionError, match=r"--stage 'nope'.*stages are doc"):
        _ids(job, Selection(stages=["nope"]))


def test_iter_pending_yields_chunks(job: Job) -> None:
    chunks = list(iter_pending(job, Selection(), chunk_size=2))
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]


def test_iter_pending_removes_its_snapshot(job: Job) -> None:
    list(iter_pending(job, Selection()))
    assert list((job.run_dir / "tmp").glob("pending-*")) == []
