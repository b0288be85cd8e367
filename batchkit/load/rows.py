"""Shape validated results into target rows: long or wide layout, hashes, NUL.

Long layout: one row per item and stage, unique on (load.key..., stage).
Wide layout: one row per item, unique on load.key, with one group of columns
per stage named after the stage's content column (`load.columns`, default
`<stage>_content`): the content column itself plus the suffixes in
STAGE_FIELDS, e.g. `output_content_en_hash`, `output_content_en_model`.
"""

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from batchkit.job.model import Job

NUL = "\x00"
T = TypeVar("T")

# The per-result columns besides the content, with their PostgreSQL types. In
# the long layout they are named as here; in the wide layout each is suffixed
# to the stage's content column (`<content column>_<name>`).
STAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("hash", "text"),
    ("model", "text"),
    ("prompt_tokens", "bigint"),
    ("completion_tokens", "bigint"),
    ("reasoning_tokens", "bigint"),
    ("cost_usd", "double precision"),
    ("generated_at", "timestamptz"),
    ("request_hash", "text"),
    ("attempt_id", "text"),
)
LONG_FIELD_NAMES = {"hash": "content_hash"}


@dataclass(frozen=True)
class Result:
    """One valid result, cleaned of NUL characters, ready to be shaped into rows."""

    stage: str
    item_key: str
    target_key: tuple[Any, ...]
    item_values: tuple[Any, ...]  # load.item_columns, in that order
    custom_id: str
    request_hash: str
    attempt_id: str
    model: str | None
    content: str
    content_hash: str
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    generated_at: datetime | None
    row_hash: str

    def stage_values(self) -> tuple[Any, ...]:
        """Return the content and the STAGE_FIELDS values, in column order."""
        return (
            self.content,
            self.content_hash,
            self.model,
            self.prompt_tokens,
            self.completion_tokens,
            self.reasoning_tokens,
            self.cost_usd,
            self.generated_at,
            self.request_hash,
            self.attempt_id,
        )


def strip_nul(value: Any) -> tuple[Any, int]:
    """Remove U+0000 from a string, which PostgreSQL text and jsonb cannot store.

    Returns the cleaned value and the number of characters removed; values
    that are not strings pass through unchanged.
    """
    if isinstance(value, str) and NUL in value:
        return value.replace(NUL, ""), value.count(NUL)
    return value, 0


def content_hash(content: str) -> str:
    """Return the SHA-256 hex digest of `content` encoded as UTF-8."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def row_hash(content_digest: str, item_values: Sequence[Any]) -> str:
    """Return a digest of a result's content hash and its item columns' values."""
    payload = orjson.dumps([content_digest, list(item_values)], default=str)
    return hashlib.sha256(payload).hexdigest()[:32]


def target_key_text(values: Sequence[Any]) -> str:
    """Return the ledger's text form of a target key: a JSON array."""
    return orjson.dumps(list(values), default=str).decode()


def load_key(job: Job) -> tuple[str, ...]:
    """Return the target's key columns: load.key, or the items' key when unset."""
    return job.load.key or job.items.key


def content_columns(job: Job) -> dict[str, str]:
    """Return the wide layout's content column for every stage, in stage order."""
    return {
        name: job.load.columns.get(name, f"{name}_content") for name in job.stage_names
    }


def stage_column_names(content_column: str) -> list[str]:
    """Return the wide layout's columns of one stage, content column first."""
    return [content_column] + [f"{content_column}_{name}" for name, _ in STAGE_FIELDS]


@dataclass(frozen=True)
class RowShape:
    """The target table's loaded columns and its conflict key."""

    layout: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the ON CONFLICT columns
    item_columns: tuple[str, ...]
    stage_groups: dict[str, tuple[str, ...]]  # wide: stage -> its columns

    def stage_of_column(self) -> dict[str, str]:
        """Return the stage that owns each stage column (wide layout)."""
        return {
            column: stage
            for stage, names in self.stage_groups.items()
            for column in names
        }


def row_shape(job: Job) -> RowShape:
    """Return the shape of the job's target rows under its layout."""
    key = load_key(job)
    items = tuple(c for c in job.load.item_columns if c not in key)
    if job.load.layout == "long":
        fields = tuple(LONG_FIELD_NAMES.get(name, name) for name, _ in STAGE_FIELDS)
        columns = (*key, "stage", *items, "content", *fields)
        return RowShape("long", columns, (*key, "stage"), items, {})
    groups = {
        stage: tuple(stage_column_names(column))
        for stage, column in content_columns(job).items()
    }
    stage_columns = tuple(c for names in groups.values() for c in names)
    return RowShape("wide", (*key, *items, *stage_columns), key, items, groups)


def long_rows(results: Sequence[Result]) -> Iterator[tuple[Any, ...]]:
    """Yield one long-layout row per result."""
    for result in results:
        yield (
            *result.target_key,
            result.stage,
            *result.item_values,
            *result.stage_values(),
        )


def wide_row(shape: RowShape, results: Sequence[Result]) -> tuple[Any, ...]:
    """Return the wide-layout row of one target key from its stages' results.

    A stage without a valid result gets NULL in all its columns; the upsert
    keeps the target's current values for such a stage.
    """
    by_stage = {result.stage: result for result in results}
    newest = max(results, key=_generated_sort_key)
    values: list[Any] = [*newest.target_key, *newest.item_values]
    for stage, names in shape.stage_groups.items():
        result = by_stage.get(stage)
        if result is None:
            values.extend([None] * len(names))
        else:
            values.extend(result.stage_values())
    return tuple(values)


def _generated_sort_key(result: Result) -> tuple[bool, datetime | None, str]:
    return (result.generated_at is not None, result.generated_at, result.attempt_id)


def newer(first: Result, second: Result) -> Result:
    """Return the result generated later; the attempt id breaks ties."""
    if _generated_sort_key(second) > _generated_sort_key(first):
        return second
    return first


def row_bytes(row: Sequence[Any]) -> int:
    """Return an estimate of a row's size on the wire, in bytes."""
    size = 0
    for value in row:
        if isinstance(value, str):
            size += len(value) if value.isascii() else len(value.encode("utf-8"))
        else:
            size += 8
    return size


def chunk_rows(
    items: Iterable[T],
    max_rows: int,
    max_bytes: int,
    size: Callable[[T], int] = row_bytes,  # type: ignore[assignment]
) -> Iterator[list[T]]:
    """Group items into chunks of at most `max_rows` and about `max_bytes`.

    `size` returns an item's estimated bytes. A single item larger than
    `max_bytes` forms a chunk of its own.
    """
    chunk: list[T] = []
    total = 0
    for item in items:
        estimate = size(item)
        if chunk and (len(chunk) >= max_rows or total + estimate > max_bytes):
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += estimate
    if chunk:
        yield chunk
