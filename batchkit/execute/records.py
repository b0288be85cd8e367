"""Build the response log row of one attempt."""

from datetime import datetime
from typing import Any

from batchkit.execute.select import PendingRequest
from batchkit.job.model import Job
from batchkit.job.prices import attempt_cost
from batchkit.providers.errors import ProviderError
from batchkit.providers.protocol import Completion, Usage

MAX_FAILED_BODY_CHARS = 20_000  # of a failed attempt's body, kept for diagnosis


def redact(text: str | None, secret: str) -> str | None:
    """Return `text` with every occurrence of `secret` replaced by `***`."""
    if text is None or secret not in text:
        return text
    return text.replace(secret, "***")


def usage_cost(
    job: Job, model: str, started_at: datetime, usage: Usage
) -> float | None:
    """Return the USD cost of the usage an attempt reported; None without a price."""
    if usage.prompt_tokens is None and usage.completion_tokens is None:
        return None
    miss = usage.cache_miss_tokens
    if miss is None:
        miss = usage.prompt_tokens or 0
    return attempt_cost(
        job.prices,
        model,
        started_at,
        cache_miss_tokens=miss,
        cache_hit_tokens=usage.cache_hit_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
    )


def completion_columns(completion: Completion, default_model: str) -> dict[str, Any]:
    """Return the columns of an ok attempt that come from its chat completion."""
    usage = completion.usage
    return {
        "status": "ok",
        "model": completion.model or default_model,
        "content": completion.content,
        "reasoning_content": completion.reasoning_content,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cache_hit_tokens": usage.cache_hit_tokens,
        "cache_miss_tokens": usage.cache_miss_tokens,
    }


def base_record(
    request: PendingRequest,
    *,
    attempt_id: str,
    attempt: int,
    run_id: str,
    started_at: datetime,
    finished_at: datetime,
    latency_ms: float,
) -> dict[str, Any]:
    """Return the columns every attempt has, ok or failed."""
    return {
        "attempt_id": attempt_id,
        "custom_id": request.custom_id,
        "request_hash": request.request_hash,
        "stage": request.stage,
        "item_key": request.item_key,
        "attempt": attempt,
        "run_id": run_id,
        "mode": "stream",
        "model": request.model,
        "started_at": started_at,
        "finished_at": finished_at,
        "latency_ms": latency_ms,
    }


def add_failure(
    record: dict[str, Any], error: ProviderError, secret: str
) -> dict[str, Any]:
    """Fill in the columns of a failed attempt."""
    body = error.body
    if body is not None and len(body) > MAX_FAILED_BODY_CHARS:
        body = body[:MAX_FAILED_BODY_CHARS]
    record.update(
        status="failed",
        error_type=error.error_type,
        error_message=redact(str(error), secret),
        http_status=error.http_status,
        raw_body=redact(body, secret),
    )
    return record
