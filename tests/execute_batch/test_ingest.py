"""Output and error lines → response log records."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from batchkit.execute.batch.ingest import (
    BatchRequest,
    FinishedBatch,
    ingest_batch,
    parse_completion,
    record_from_line,
)
from batchkit.job.model import PriceEntry

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
PRICES = (
    PriceEntry(
        model="deepseek-reasoner",
        since=datetime(2025, 1, 1, tzinfo=UTC),
        input_miss=1.0,
        input_hit=0.1,
        output=2.0,
        batch_factor=0.5,
    ),
)


def _batch(status="completed"):
    return FinishedBatch(
        batch_id="batch_1",
        run_id="run",
        status=status,
        model="deepseek-reasoner",
        created_at=START,
        finished_at=START + timedelta(minutes=5),
        prices=PRICES,
    )


def _request(custom_id="doc:1", attempt=1):
    return BatchRequest(custom_id, "hash-" + custom_id, "doc", custom_id[4:], attempt)


def _completion(content="Text", finish_reason="stop"):
    return {
        "model": "deepseek-reasoner",
        "choices": [
            {
                "message": {"content": content, "reasoning_content": "thinking"},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_cache_hit_tokens": 40,
            "prompt_cache_miss_tokens": 60,
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
    }


def _line(custom_id="doc:1", status=200, body=None, error=None):
    response = None if status is None else {"status_code": status, "body": body}
    return {"id": "r1", "custom_id": custom_id, "response": response, "error": error}


def test_ok_line_keeps_deepseek_usage_and_cost():
    record = record_from_line(_batch(), _request(), _line(body=_completion()))

    assert record["status"] == "ok"
    assert record["mode"] == "batch"
    assert record["content"] == "Text"
    assert record["reasoning_content"] == "thinking"
    assert record["cache_hit_tokens"] == 40
    assert record["cache_miss_tokens"] == 60
    assert record["reasoning_tokens"] == 20
    assert record["completion_tokens"] == 50
    # (60 x 1.0 + 40 x 0.1 + 50 x 2.0) / 1e6, at half price
    assert record["cost_usd"] == pytest.approx(164 / 1e6 * 0.5)
    assert record["latency_ms"] == 300_000


def test_ok_line_reads_openai_cached_tokens():
    body = _completion()
    body["usage"] = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 30},
    }

    record = record_from_line(_batch(), _request(), _line(body=body))

    assert record["cache_hit_tokens"] == 30
    assert record["cache_miss_tokens"] == 70


@pytest.mark.parametrize("finish_reason", ["length", "content_filter"])
def test_unfinished_completion_is_still_ok(finish_reason):
    body = _completion(content="", finish_reason=finish_reason)

    record = record_from_line(_batch(), _request(), _line(body=body))

    assert record["status"] == "ok"
    assert record["finish_reason"] == finish_reason


@pytest.mark.parametrize(
    ("line", "error_type", "http_status"),
    [
        (_line(status=429, body={"error": {"message": "slow"}}), "rate_limit", 429),
        (_line(status=500, body={"error": {"message": "boom"}}), "server", 500),
        (_line(status=400, body={"error": {"message": "bad"}}), "bad_request", 400),
        (_line(status=200, body={"object": "weird"}), "invalid_json", 200),
        (
            _line(status=None, error={"code": "batch_expired", "message": "late"}),
            "batch_expired",
            None,
        ),
    ],
)
def test_failed_lines_get_error_type(line, error_type, http_status):
    record = record_from_line(_batch(), _request(), line)

    assert record["status"] == "failed"
    assert record["error_type"] == error_type
    assert record["http_status"] == http_status
    assert record["error_message"]


def test_parse_completion_rejects_non_completion():
    assert parse_completion({"choices": []}) is None
    assert parse_completion("text") is None
    assert parse_completion({"choices": [{"message": "x"}]}) is None


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def test_ingest_matches_by_custom_id(tmp_path):
    requests = {cid: _request(cid, attempt=2) for cid in ("doc:1", "doc:2", "doc:3")}
    output = _write(
        tmp_path / "out.jsonl",
        [
            _line("doc:3", body=_completion("three")),
            _line("doc:9", body=_completion("stray")),
            _line("doc:1", body=_completion("one")),
        ],
    )
    records: list[dict] = []

    counts = ingest_batch(_batch(), requests, [output], records.append, set())

    by_id = {r["custom_id"]: r for r in records}
    assert by_id["doc:1"]["content"] == "one"
    assert by_id["doc:3"]["content"] == "three"
    assert by_id["doc:2"]["error_type"] == "missing_from_output"
    assert {r["attempt"] for r in records} == {2}
    assert counts.ok == 2
    assert counts.unreturned == 1
    assert counts.unknown == ["doc:9"]


def test_ingest_skips_already_logged(tmp_path):
    requests = {cid: _request(cid) for cid in ("doc:1", "doc:2")}
    output = _write(
        tmp_path / "out.jsonl",
        [_line("doc:1", body=_completion()), _line("doc:2", body=_completion())],
    )
    records: list[dict] = []

    counts = ingest_batch(_batch(), requests, [output], records.append, {"doc:1"})

    assert [r["custom_id"] for r in records] == ["doc:2"]
    assert counts.skipped == 1


@pytest.mark.parametrize(
    ("status", "error_type"),
    [("expired", "batch_expired"), ("cancelled", "batch_cancelled")],
)
def test_ingest_marks_unreturned_by_status(tmp_path, status, error_type):
    requests = {"doc:1": _request("doc:1")}
    records: list[dict] = []

    ingest_batch(_batch(status), requests, [], records.append, set())

    assert [r["error_type"] for r in records] == [error_type]
