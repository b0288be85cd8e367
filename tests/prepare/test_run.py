"""prepare_job end to end on small jobs: reruns, edits, dependencies, limits."""

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from batchkit.job.model import Job
from batchkit.prepare.errors import PrepareError
from batchkit.prepare.run import prepare_job
from tests.prepare.jobfiles import PRODUCTS, load, take_snapshot, write_job
from tests.prepare.responses import write_part

LONG_EN = "# Alpha\n\n## Overview\n\nAlpha writes release notes for busy teams."


def _query(job: Job, sql: str) -> list[tuple]:
    with duckdb.connect(str(job.db_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def _current(job: Job) -> dict[str, str]:
    rows = _query(job, "SELECT custom_id, request_hash FROM requests")
    return dict(rows)


def test_first_run_stores_one_request_per_item(tmp_path: Path) -> None:
    job = load(write_job(tmp_path))

    summary = prepare_job(job)

    assert summary.items == 3
    assert summary.stages["doc_en"].added == 3
    assert sorted(_current(job)) == ["doc_en:p1", "doc_en:p2", "doc_en:p3"]
    rows = _query(
        job,
        "SELECT stage, item_key, model, max_tokens, prompt_tokens_est, line_bytes, "
        "octet_length(encode(line)) + 1 FROM requests WHERE custom_id = 'doc_en:p1'",
    )
    assert rows[0][:4] == ("doc_en", "p1", "test-model", 400)
    assert rows[0][4] > 0
    assert rows[0][5] == rows[0][6]


def test_rerun_unchanged_adds_no_row(tmp_path: Path) -> None:
    job = load(write_job(tmp_path))
    prepare_job(job)
    before = take_snapshot(job)

    summary = prepare_job(job)

    assert summary.stages["doc_en"].added == 0
    assert summary.stages["doc_en"].changed == 0
    assert summary.stages["doc_en"].unchanged == 3
    assert take_snapshot(job) == before


def test_template_edit_versions_only_its_requests(tmp_path: Path) -> None:
    path = write_job(tmp_path, with_zh=True)
    job = load(path)
    prepare_job(job)
    old = _current(job)

    (tmp_path / "doc_en.j2").write_text("Describe {{ item.name }}.", encoding="utf-8")
    summary = prepare_job(load(path))

    assert summary.stages["doc_en"].changed == 3
    assert summary.stages["doc_en"].added == 0
    new = _current(job)
    assert set(new) == set(old)
    assert all(new[custom_id] != old[custom_id] for custom_id in new)
    superseded = _query(
        job,
        "SELECT custom_id, request_hash FROM request_versions "
        "WHERE superseded_at IS NOT NULL ORDER BY custom_id",
    )
    assert superseded == sorted(old.items())


def test_edit_of_one_value_versions_one_request(tmp_path: Path) -> None:
    path = write_job(tmp_path)
    prepare_job(load(path))
    rows = [dict(row) for row in PRODUCTS]
    rows[1]["description"] = "Sorts and answers support tickets."

    summary = prepare_job(load(write_job(tmp_path, rows=rows)))

    assert summary.stages["doc_en"].changed == 1
    assert summary.stages["doc_en"].unchanged == 2
    versions = _query(
        load(path),
        "SELECT custom_id, count(*) FROM request_versions GROUP BY ALL ORDER BY 1",
    )
    assert versions == [("doc_en:p1", 1), ("doc_en:p2", 2), ("doc_en:p3", 1)]


def test_template_reverted_revives_old_version(tmp_path: Path) -> None:
    path = write_job(tmp_path)
    prepare_job(load(path))
    first = _current(load(path))
    (tmp_path / "doc_en.j2").write_text("Other {{ item.name }}", encoding="utf-8")
    prepare_job(load(path))

    write_job(tmp_path)
    summary = prepare_job(load(path))

    assert summary.stages["doc_en"].changed == 3
    assert _current(load(path)) == first
    count = _query(load(path), "SELECT count(*) FROM request_versions")
    assert count == [(6,)]


def _doc_en_attempts(job: Job) -> list[dict]:
    hashes = _current(job)
    valid_content = LONG_EN + " It drafts, checks and publishes notes."
    return [
        {
            "attempt_id": "a1",
            "custom_id": "doc_en:p1",
            "request_hash": hashes["doc_en:p1"],
            "stage": "doc_en",
            "item_key": "p1",
            "content": valid_content,
        },
        {  # too short for doc_en's min_chars: rejected
            "attempt_id": "a2",
            "custom_id": "doc_en:p2",
            "request_hash": hashes["doc_en:p2"],
            "stage": "doc_en",
            "item_key": "p2",
            "content": "Too short.",
        },
        {  # failed attempt: no result
            "attempt_id": "a3",
            "custom_id": "doc_en:p3",
            "request_hash": hashes["doc_en:p3"],
            "stage": "doc_en",
            "item_key": "p3",
            "status": "failed",
            "error_type": "rate_limited",
            "http_status": 429,
            "finish_reason": None,
        },
    ]


def test_dependent_stage_renders_only_valid_results(tmp_path: Path) -> None:
    job = load(write_job(tmp_path, with_zh=True))
    first = prepare_job(job)
    assert first.stages["doc_zh"].rendered == 0
    assert first.waiting["doc_zh"] == 3

    write_part(job.responses_dir, "part-test-1", _doc_en_attempts(job))
    summary = prepare_job(job)

    assert summary.stages["doc_zh"].added == 1
    assert summary.waiting["doc_zh"] == 2
    rows = _query(
        job,
        "SELECT custom_id, source_attempt_id, line FROM requests "
        "WHERE stage = 'doc_zh'",
    )
    assert [(row[0], row[1]) for row in rows] == [("doc_zh:p1", "a1")]
    assert "It drafts, checks and publishes notes." in rows[0][2]
    verdicts = _query(job, "SELECT attempt_id, is_valid FROM verdicts ORDER BY 1")
    assert verdicts == [("a1", True), ("a2", False)]


def test_dependent_stage_follows_new_source(tmp_path: Path) -> None:
    job = load(write_job(tmp_path, with_zh=True))
    prepare_job(job)
    attempts = _doc_en_attempts(job)
    write_part(job.responses_dir, "part-test-1", attempts[:1])
    prepare_job(job)
    later = datetime(2026, 2, 1, tzinfo=UTC)
    newer = {
        **attempts[0],
        "attempt_id": "a9",
        "attempt": 2,
        "content": LONG_EN + " A newer and better answer.",
        "started_at": later,
        "finished_at": later,
    }
    write_part(job.responses_dir, "part-test-2", [newer])

    summary = prepare_job(job)

    assert summary.stages["doc_zh"].changed == 1
    rows = _query(job, "SELECT source_attempt_id FROM requests WHERE stage='doc_zh'")
    assert rows == [("a9",)]


def test_limit_renders_first_items_only(tmp_path: Path) -> None:
    job = load(write_job(tmp_path))

    summary = prepare_job(job, limit=2)

    assert summary.items == 2
    assert sorted(_current(job)) == ["doc_en:p1", "doc_en:p2"]


def test_limit_rerun_keeps_other_requests(tmp_path: Path) -> None:
    job = load(write_job(tmp_path))
    prepare_job(job)

    summary = prepare_job(job, limit=1)

    assert summary.stages["doc_en"].unchanged == 1
    assert len(_current(job)) == 3


def test_stage_option_renders_named_stage_only(tmp_path: Path) -> None:
    job = load(write_job(tmp_path, with_zh=True))

    summary = prepare_job(job, stage_names=["doc_zh"])

    assert list(summary.stages) == ["doc_zh"]
    assert _current(job) == {}


def test_unknown_stage_option_is_error(tmp_path: Path) -> None:
    job = load(write_job(tmp_path))

    with pytest.raises(PrepareError, match=r"--stage 'nope': no stage .* doc_en"):
        prepare_job(job, stage_names=["nope"])


def test_when_filter_selects_items(tmp_path: Path) -> None:
    path = write_job(tmp_path)
    text = path.read_text().replace(
        'name = "doc_en"', 'name = "doc_en"\nwhen = "id <> \'p2\'"'
    )
    path.write_text(text)
    job = load(path)

    prepare_job(job)

    assert sorted(_current(job)) == ["doc_en:p1", "doc_en:p3"]


def test_invalid_when_names_stage_key(tmp_path: Path) -> None:
    path = write_job(tmp_path)
    text = path.read_text().replace(
        'name = "doc_en"', 'name = "doc_en"\nwhen = "no_such_column > 1"'
    )
    path.write_text(text)

    with pytest.raises(PrepareError, match=r"stages\[0\]\.when = 'no_such_column > 1'"):
        prepare_job(load(path))


def test_progress_reports_each_stage(tmp_path: Path) -> None:
    job = load(write_job(tmp_path, with_zh=True))
    calls: list[tuple[str, int, int]] = []

    prepare_job(job, progress=lambda *args: calls.append(args))

    assert calls == [("doc_en", 3, 3)]
