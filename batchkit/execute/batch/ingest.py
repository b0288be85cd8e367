"""Turn the lines of a finished batch's output and error files into attempts.

Lines are matched to requests by custom_id only, never by position, and a
line whose custom_id the batch did not contain is skipped with a warning.
Every record has the response log's columns (mode 'batch'); the cost uses
the batch price (`attempt_cost(..., is_batch=True)`).
"""

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from batchkit.execute.records import completion_columns
from batchkit.job.model import PriceEntry
from batchkit.job.prices import attempt_cost
from batchkit.providers.protocol import Completion, parse_usage

logger = logging.getLogger(__name__)

# Lines with an unknown custom_id logged one by one; the ingest line counts all.
MAX_LOGGED_UNKNOWN = 5

# error_type of the requests a finished batch did not return, by batch status.
UNRETURNED_ERROR_TYPES = {
    "completed": "missing_from_output",
    "expired": "batch_expired",
    "cancelled": "batch_cancelled",
}


@dataclass(frozen=True)
class BatchRequest:
    """A request a batch contains, with the attempt number its result gets."""

    custom_id: str
    request_hash: str
    stage: str
    item_key: str
    attempt: int


@dataclass(frozen=True)
class FinishedBatch:
    """The batch fields that every record of one finished batch shares."""

    batch_id: str
    run_id: str
    status: str
    model: str
    created_at: datetime
    finished_at: datetime
    prices: tuple[PriceEntry, ...]


@dataclass
class IngestCounts:
    """Counts of the records that ingesting one batch appended."""

    ok: int = 0
    failed: int = 0
    unreturned: int = 0  # requests in neither file, recorded as failed too
    skipped: int = 0  # lines logged by an earlier, interrupted ingest
    unknown: list[str] = field(default_factory=list)  # custom_ids not in the batch


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file, skipping blank and invalid lines."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                logger.warning("%s: line %s is not JSON (%s)", path, number, error)
                continue
            if isinstance(value, dict):
                yield value


def ingest_batch(
    batch: FinishedBatch,
    requests: dict[str, BatchRequest],
    files: list[Path],
    append: Callable[[dict[str, Any]], None],
    already_logged: set[str],
) -> IngestCounts:
    """Append one record per request of `batch`, read from its output and error files.

    Requests in `already_logged` have a record for this batch already and are
    skipped. Requests found in no file get a failed record whose error_type
    depends on the batch status.
    """
    counts = IngestCounts(skipped=len(already_logged))
    seen = set(already_logged)
    for path in files:
        for line in read_lines(path):
            custom_id = line.get("custom_id")
            request = requests.get(custom_id) if isinstance(custom_id, str) else None
            if request is None:
                counts.unknown.append(str(custom_id))
                if len(counts.unknown) <= MAX_LOGGED_UNKNOWN:
                    logger.warning(
                        "batch %s: %s has custom_id %r, which the batch does not "
                        "contain; the line is skipped",
                        batch.batch_id,
                        path.name,
                        custom_id,
                    )
                continue
            if request.custom_id in seen:
                continue
            seen.add(request.custom_id)
            record = record_from_line(batch, request, line)
            append(record)
            if record["status"] == "ok":
                counts.ok += 1
            else:
                counts.failed += 1
    _record_unreturned(batch, requests, seen, append, counts)
    return counts


def _record_unreturned(
    batch: FinishedBatch,
    requests: dict[str, BatchRequest],
    seen: set[str],
    append: Callable[[dict[str, Any]], None],
    counts: IngestCounts,
) -> None:
    error_type = UNRETURNED_ERROR_TYPES.get(batch.status)
    if error_type is None:
        return
    message = (
        f"batch {batch.batch_id} ended {batch.status} without a line for this "
        "request; it is pending again"
    )
    for custom_id, request in requests.items():
        if custom_id in seen:
            continue
        append(failed_record(batch, request, error_type, message))
        counts.unreturned += 1


def record_from_line(
    batch: FinishedBatch, request: BatchRequest, line: dict[str, Any]
) -> dict[str, Any]:
    """Build the record of one output or error file line."""
    response = line.get("response") if isinstance(line.get("response"), dict) else {}
    assert isinstance(response, dict)
    status = response.get("status_code")
    body = response.get("body")
    raw_body = None if body is None else orjson.dumps(body).decode()
    error = line.get("error") if isinstance(line.get("error"), dict) else None
    if status == 200 and error is None:
        completion = parse_completion(body)
        if completion is not None:
            return ok_record(batch, request, completion, raw_body)
        error_type, message = "invalid_json", "HTTP 200 without a chat completion"
    else:
        error_type, message = classify_failure(status, body, error)
    record = failed_record(batch, request, error_type, message)
    record["http_status"] = status if isinstance(status, int) else None
    record["raw_body"] = raw_body
    return record


def classify_failure(
    status: Any, body: Any, error: dict[str, Any] | None
) -> tuple[str, str]:
    """Return (error_type, message) of a failed line."""
    body_error = body.get("error") if isinstance(body, dict) else None
    detail = error or (body_error if isinstance(body_error, dict) else {})
    message = str(detail.get("message") or f"HTTP {status}")
    code = detail.get("code") or detail.get("type")
    if error is not None and code:
        return str(code), message  # batch_expired, batch_cancelled, ...
    if not isinstance(status, int):
        return str(code or "unknown"), message
    return _status_error_type(status), message


def _status_error_type(status: int) -> str:
    # The same names as the streaming runner's provider errors.
    if status == 429:
        return "rate_limit"
    if status >= 500 or status in (408, 409, 425):
        return "server"
    if status in (401, 403):
        return "auth"
    if status == 402:
        return "payment"
    if status == 404:
        return "not_found"
    return "bad_request"


def parse_completion(body: Any) -> Completion | None:
    """Return the completion in a parsed body, or None when it is not one."""
    if not isinstance(body, dict):
        return None
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None
    return Completion(
        content=message.get("content"),
        reasoning_content=message.get("reasoning_content"),
        finish_reason=choices[0].get("finish_reason"),
        model=body.get("model"),
        usage=parse_usage(body.get("usage")),
    )


def base_record(batch: FinishedBatch, request: BatchRequest) -> dict[str, Any]:
    """Return the fields every record of `request` in `batch` shares."""
    latency = (batch.finished_at - batch.created_at).total_seconds() * 1000
    return {
        "attempt_id": uuid.uuid4().hex,
        "custom_id": request.custom_id,
        "request_hash": request.request_hash,
        "stage": request.stage,
        "item_key": request.item_key,
        "attempt": request.attempt,
        "run_id": batch.run_id,
        "mode": "batch",
        "batch_id": batch.batch_id,
        "model": batch.model,
        "started_at": batch.created_at,
        "finished_at": batch.finished_at,
        "latency_ms": latency,
    }


def ok_record(
    batch: FinishedBatch,
    request: BatchRequest,
    completion: Completion,
    raw_body: str | None,
) -> dict[str, Any]:
    """Build the record of a line that returned a chat completion."""
    usage = completion.usage
    cache_miss = usage.cache_miss_tokens
    if cache_miss is None:
        cache_miss = usage.prompt_tokens or 0
    record = base_record(batch, request)
    record.update(completion_columns(completion, batch.model))
    record.update(
        http_status=200,
        cost_usd=attempt_cost(
            batch.prices,
            batch.model,
            batch.created_at,
            cache_miss_tokens=cache_miss,
            cache_hit_tokens=usage.cache_hit_tokens or 0,
            completion_tokens=usage.completion_tokens or 0,
            is_batch=True,
        ),
        raw_body=raw_body,
    )
    return record


def failed_record(
    batch: FinishedBatch, request: BatchRequest, error_type: str, message: str
) -> dict[str, Any]:
    """Build the record of a request that the batch did not complete."""
    record = base_record(batch, request)
    record.update(status="failed", error_type=error_type, error_message=message)
    return record
