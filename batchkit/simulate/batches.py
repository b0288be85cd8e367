"""OpenAI-style batches: validation, background processing and result files.

A batch moves validating → in_progress → finalizing → completed, or ends
failed (invalid input file, or the whole batch failed on purpose), expired
(after `expire_after` lines) or cancelled (cancelling, then cancelled).
Expired and cancelled batches still deliver the lines they finished; the
others go to the error file with code `batch_expired` or `batch_cancelled`.
`request_counts` count the lines that ran. Result lines are written in an
order fixed by the seed and the custom_id, not in input order. A completed
batch whose lines all failed has an error file and no output file.

Controls, as batch metadata (string values) or as simulator settings:

    sim_expire_after=N          expire after N lines      (batch_expire_after)
    sim_fail_lines=a,b          fail these custom_ids     (batch_fail_lines)
    sim_fail_batch=CODE         fail the whole batch, for example
                                token_limit_exceeded      (batch_fail_code)
    sim_drop_output_lines=a,b   leave these lines out of both result files,
                                as a lost line            (batch_drop_lines)
    sim_lines_per_second=R      processing speed          (batch_lines_per_second)

The error codes of an invalid input file (`invalid_json_line`,
`duplicate_custom_id`, `too_many_lines`, `file_too_large`, …) are the
simulator's own names; OpenAI's messages vary.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from batchkit.simulate.completion import InvalidRequest, new_id
from batchkit.simulate.config import SimulatorConfig
from batchkit.simulate.files import FileStore
from batchkit.simulate.tokens import count_tokens

logger = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW_SECONDS = 24 * 3600
MAX_LISTED_ERRORS = 100
TICK_SECONDS = 0.02
FINAL_STATUSES = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class BatchControls:
    """The simulator's controls for one batch: expiry, failures, losses, speed."""

    expire_after: int | None = None
    fail_lines: frozenset[str] = frozenset()
    fail_code: str | None = None
    drop_lines: frozenset[str] = frozenset()
    lines_per_second: float = 1_000.0


@dataclass(slots=True)
class LineResult:
    """One processed batch line: the result file line and its usage."""

    line: dict[str, Any]
    is_ok: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0


# Serves one line: (batch, custom_id, request body, fail on purpose) -> result.
LineServer = Callable[["Batch", str, dict[str, Any], bool], LineResult]


@dataclass
class Batch:
    """One batch and its progress."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    controls: BatchControls
    created_at: int
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    model: str | None = None
    enqueued_tokens: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    is_cancel_requested: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the OpenAI `batch` object."""
        usage = self.usage
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": None
            if self.errors is None
            else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.times.get("in_progress_at"),
            "expires_at": self.created_at + COMPLETION_WINDOW_SECONDS,
            "finalizing_at": self.times.get("finalizing_at"),
            "completed_at": self.times.get("completed_at"),
            "failed_at": self.times.get("failed_at"),
            "expired_at": self.times.get("expired_at"),
            "cancelling_at": self.times.get("cancelling_at"),
            "cancelled_at": self.times.get("cancelled_at"),
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "usage": {
                "input_tokens": usage.get("input", 0),
                "input_tokens_details": {"cached_tokens": usage.get("cached", 0)},
                "output_tokens": usage.get("output", 0),
                "output_tokens_details": {
                    "reasoning_tokens": usage.get("reasoning", 0)
                },
                "total_tokens": usage.get("input", 0) + usage.get("output", 0),
            },
            "metadata": self.metadata,
        }

    def set_status(self, status: str) -> None:
        """Move to `status` and stamp its `<status>_at` time."""
        self.status = status
        if status != "validating":
            self.times[f"{status}_at"] = int(time.time())


def read_controls(
    metadata: Mapping[str, str] | None, config: SimulatorConfig
) -> BatchControls:
    """Merge the `sim_*` metadata keys over the settings; raise InvalidRequest."""
    metadata = metadata or {}
    expire_after = config.batch_expire_after
    speed = config.batch_lines_per_second
    if "sim_expire_after" in metadata:
        expire_after = int(_positive(metadata, "sim_expire_after"))
    if "sim_lines_per_second" in metadata:
        speed = _positive(metadata, "sim_lines_per_second")
    return BatchControls(
        expire_after=expire_after,
        fail_lines=frozenset(config.batch_fail_lines)
        | _id_set(metadata, "sim_fail_lines"),
        fail_code=metadata.get("sim_fail_batch") or config.batch_fail_code,
        drop_lines=frozenset(config.batch_drop_lines)
        | _id_set(metadata, "sim_drop_output_lines"),
        lines_per_second=speed,
    )


def _positive(metadata: Mapping[str, str], key: str) -> float:
    try:
        value = float(metadata[key])
    except ValueError:
        value = 0.0
    if value <= 0:
        raise InvalidRequest(
            f"Invalid 'metadata.{key}': {metadata[key]!r}. Expected a positive number.",
            f"metadata.{key}",
            "invalid_value",
        )
    return value


def _id_set(metadata: Mapping[str, str], key: str) -> frozenset[str]:
    text = metadata.get(key, "")
    return frozenset(part.strip() for part in text.split(",") if part.strip())


class BatchStore:
    """Batches by id, each processed by its own task on the server's event loop."""

    def __init__(
        self, files: FileStore, serve_line: LineServer, config: SimulatorConfig
    ) -> None:
        self.files = files
        self.serve_line = serve_line
        # The server replaces this when POST /_sim/config changes the settings.
        self.config = config
        self._batches: dict[str, Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def create(
        self,
        input_file_id: str,
        completion_window: str,
        metadata: dict[str, str] | None,
        controls: BatchControls,
    ) -> Batch:
        """Register a batch and start processing it in the background."""
        batch = Batch(
            id=new_id("batch_"),
            input_file_id=input_file_id,
            endpoint=ENDPOINT,
            completion_window=completion_window,
            metadata=metadata,
            controls=controls,
            created_at=int(time.time()),
        )
        self._batches[batch.id] = batch
        task = asyncio.get_running_loop().create_task(self._process(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        logger.info("batch %s created from file %s", batch.id, input_file_id)
        return batch

    def get(self, batch_id: str) -> Batch | None:
        """Return the batch with `batch_id`, or None."""
        return self._batches.get(batch_id)

    def page(self, limit: int, after: str | None) -> tuple[list[Batch], bool]:
        """Return a page of batches, newest first, after the id `after`."""
        batches = list(reversed(self._batches.values()))
        if after is not None:
            ids = [batch.id for batch in batches]
            batches = batches[ids.index(after) + 1 :] if after in ids else []
        return batches[:limit], len(batches) > limit

    def count_by_status(self) -> dict[str, int]:
        """Return how many batches are in each status."""
        counts: dict[str, int] = {}
        for batch in self._batches.values():
            counts[batch.status] = counts.get(batch.status, 0) + 1
        return counts

    def cancel(self, batch: Batch) -> None:
        """Ask the batch's task to stop; it becomes cancelled once it has."""
        batch.is_cancel_requested = True
        batch.set_status("cancelling")

    async def close(self) -> None:
        """Stop every batch task."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _process(self, batch: Batch) -> None:
        try:
            await asyncio.sleep(0)
            lines = self._validate(batch)
            if lines is None:
                return
            results = await self._run(batch, lines)
            await asyncio.sleep(0)
            self._finish(batch, lines, results)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.exception("batch %s failed inside the simulator", batch.id)
            self._fail(batch, [_error_item("simulator_error", str(error))])

    def _validate(self, batch: Batch) -> list[tuple[str, dict[str, Any]]] | None:
        stored = self.files.get(batch.input_file_id)
        if stored is None:
            self._fail(
                batch, [_error_item("file_not_found", "The input file is gone.")]
            )
            return None
        lines, errors, model = parse_input_file(stored.data, self.config)
        batch.total = len(lines)
        batch.model = model
        if not errors:
            errors = self._check_token_limit(batch, lines)
        if errors:
            self._fail(batch, errors)
            return None
        if batch.is_cancel_requested:
            return lines
        batch.set_status("in_progress")
        return lines

    def _check_token_limit(
        self, batch: Batch, lines: list[tuple[str, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        code = batch.controls.fail_code
        limit = self.config.batch_token_limit
        if code is None and limit is not None:
            batch.enqueued_tokens = sum(_estimate_tokens(body) for _, body in lines)
            enqueued = batch.enqueued_tokens + sum(
                other.enqueued_tokens
                for other in self._batches.values()
                if other is not batch
                and other.model == batch.model
                and other.status in ("validating", "in_progress", "finalizing")
            )
            if enqueued > limit:
                code = "token_limit_exceeded"
        if code is None:
            return []
        message = (
            f"Enqueued token limit reached for {batch.model}. Limit: {limit}. "
            "Try again once some in_progress batches have completed."
            if code == "token_limit_exceeded"
            else f"The batch failed on purpose with code {code}."
        )
        return [_error_item(code, message)]

    async def _run(
        self, batch: Batch, lines: list[tuple[str, dict[str, Any]]]
    ) -> list[LineResult]:
        controls = batch.controls
        results: list[LineResult] = []
        started = time.monotonic()
        while len(results) < len(lines):
            if batch.is_cancel_requested:
                return results
            if (
                controls.expire_after is not None
                and len(results) >= controls.expire_after
            ):
                return results
            allowed = int((time.monotonic() - started) * controls.lines_per_second) + 1
            while len(results) < min(allowed, len(lines)):
                if len(results) == controls.expire_after:
                    break
                custom_id, body = lines[len(results)]
                result = self.serve_line(
                    batch, custom_id, body, custom_id in controls.fail_lines
                )
                results.append(result)
                _count_result(batch, result)
            await asyncio.sleep(min(TICK_SECONDS, 1 / controls.lines_per_second))
        return results

    def _finish(
        self,
        batch: Batch,
        lines: list[tuple[str, dict[str, Any]]],
        results: list[LineResult],
    ) -> None:
        if batch.is_cancel_requested:
            final, code = "cancelled", "batch_cancelled"
        elif len(results) < len(lines):
            final, code = "expired", "batch_expired"
        else:
            final, code = "completed", ""
        if final == "completed":
            batch.set_status("finalizing")
        ok_lines = [r.line for r in results if r.is_ok]
        error_lines = [r.line for r in results if not r.is_ok]
        for custom_id, _ in lines[len(results) :]:
            error_lines.append(_unfinished_line(custom_id, code))
        dropped = batch.controls.drop_lines
        if ok_lines:
            batch.output_file_id = self._write(batch, "output", ok_lines, dropped)
        if error_lines:
            batch.error_file_id = self._write(batch, "error", error_lines, dropped)
        batch.set_status(final)
        logger.info(
            "batch %s %s: %d completed, %d failed of %d",
            batch.id,
            final,
            batch.completed,
            batch.failed,
            batch.total,
        )

    def _write(
        self,
        batch: Batch,
        kind: str,
        lines: list[dict[str, Any]],
        dropped: frozenset[str],
    ) -> str:
        seed = self.config.seed
        kept = [line for line in lines if line["custom_id"] not in dropped]
        kept.sort(key=lambda line: _shuffle_key(seed, line["custom_id"]))
        data = b"".join(orjson.dumps(line) + b"\n" for line in kept)
        stored = self.files.add(data, f"{batch.id}_{kind}.jsonl", "batch_output")
        return stored.id

    def _fail(self, batch: Batch, errors: list[dict[str, Any]]) -> None:
        batch.errors = errors[:MAX_LISTED_ERRORS]
        batch.set_status("failed")
        logger.info("batch %s failed: %s", batch.id, errors[0]["code"])


def parse_input_file(
    data: bytes, config: SimulatorConfig
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]], str | None]:
    """Check a batch input file; return its (custom_id, body) lines and errors."""
    if len(data) > config.batch_max_bytes:
        message = (
            f"The input file has {len(data)} bytes, over the limit of "
            f"{config.batch_max_bytes} bytes. Split it into smaller files."
        )
        return [], [_error_item("file_too_large", message)], None

    texts = data.splitlines()
    while texts and not texts[-1].strip():
        texts.pop()
    if not texts:
        return [], [_error_item("empty_file", "The input file has no lines.")], None
    if len(texts) > config.batch_max_lines:
        message = (
            f"The input file has {len(texts)} lines, over the limit of "
            f"{config.batch_max_lines}. Split it into smaller files."
        )
        return [], [_error_item("too_many_lines", message)], None

    lines: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, text in enumerate(texts, start=1):
        item, error = _parse_line(text, number, seen)
        if error is not None:
            errors.append(error)
            continue
        assert item is not None
        lines.append(item)
        model = item[1].get("model")
        if isinstance(model, str):
            models.add(model)

    if len(models) > 1:
        message = f"The lines use more than one model: {', '.join(sorted(models))}."
        errors.append(_error_item("mismatched_model", message, param="body.model"))
    return lines, errors, min(models) if models else None


def _parse_line(
    text: bytes, number: int, seen: set[str]
) -> tuple[tuple[str, dict[str, Any]] | None, dict[str, Any] | None]:
    try:
        line = orjson.loads(text)
    except orjson.JSONDecodeError:
        line = None
    if not isinstance(line, dict):
        return None, _error_item(
            "invalid_json_line", "The line is not a JSON object.", line=number
        )
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        message = "The line has no custom_id string."
        return None, _error_item("missing_custom_id", message, "custom_id", number)
    if custom_id in seen:
        message = (
            f"The custom_id {custom_id!r} is a duplicate of an earlier line; "
            "each line of a batch needs its own custom_id."
        )
        return None, _error_item("duplicate_custom_id", message, "custom_id", number)
    seen.add(custom_id)
    if line.get("method") != "POST":
        message = f"The method must be POST, not {line.get('method')!r}."
        return None, _error_item("invalid_method", message, "method", number)
    if line.get("url") != ENDPOINT:
        message = f"The url must be {ENDPOINT}, not {line.get('url')!r}."
        return None, _error_item("invalid_url", message, "url", number)
    body = line.get("body")
    if not isinstance(body, dict):
        message = "The line's body must be a JSON object."
        return None, _error_item("invalid_body", message, "body", number)
    return (custom_id, body), None


def _error_item(
    code: str, message: str, param: str | None = None, line: int | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _estimate_tokens(body: dict[str, Any]) -> int:
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    messages = body.get("messages")
    prompt = orjson.dumps(messages).decode() if messages is not None else ""
    return count_tokens(prompt) + (max_tokens if isinstance(max_tokens, int) else 0)


def _count_result(batch: Batch, result: LineResult) -> None:
    if result.is_ok:
        batch.completed += 1
    else:
        batch.failed += 1
    usage = batch.usage
    usage["input"] = usage.get("input", 0) + result.prompt_tokens
    usage["output"] = usage.get("output", 0) + result.completion_tokens
    usage["reasoning"] = usage.get("reasoning", 0) + result.reasoning_tokens
    usage["cached"] = usage.get("cached", 0) + result.cached_tokens


_UNFINISHED_MESSAGES = {
    "batch_expired": "This request was not run before the batch expired.",
    "batch_cancelled": "This request was not run before the batch was cancelled.",
}


def _unfinished_line(custom_id: str, code: str) -> dict[str, Any]:
    return {
        "id": new_id("batch_req_"),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": _UNFINISHED_MESSAGES[code]},
    }


def _shuffle_key(seed: int, custom_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{custom_id}".encode(), digest_size=8).digest()
