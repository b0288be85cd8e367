"""Read the valid results, rejects and load ledger from the job database.

A result is the newest successful attempt of a current request (the
`results` view); `valid_results` keeps those whose verdict under the stage's
current rules passed. Call `refresh_verdicts` before `read_results`.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson

from batchkit.job.model import Job
from batchkit.load.errors import LoadError
from batchkit.load.rows import (
    Result,
    RowShape,
    content_hash,
    load_key,
    newer,
    row_hash,
    strip_nul,
    target_key_text,
)

FETCH_ROWS = 2_000

VALID_SQL = """
    SELECT r.stage, r.item_key, r.custom_id, r.request_hash, r.attempt_id, r.model,
           r.content, r.prompt_tokens, r.completion_tokens, r.reasoning_tokens,
           r.cost_usd, r.finished_at, i.item
    FROM valid_results r
    JOIN items i ON i.item_key = r.item_key
"""

REJECT_SQL = """
    SELECT r.stage, split_part(reason.unnest, ':', 1) AS reason, count(*)
    FROM results r
    JOIN stages s ON s.stage = r.stage
    JOIN verdicts v ON v.attempt_id = r.attempt_id AND v.rules_hash = s.rules_hash
    CROSS JOIN unnest(v.reasons) AS reason
    WHERE NOT v.is_valid
    GROUP BY ALL
"""

REJECT_COUNT_SQL = """
    SELECT r.stage, count(*)
    FROM results r
    JOIN stages s ON s.stage = r.stage
    JOIN verdicts v ON v.attempt_id = r.attempt_id AND v.rules_hash = s.rules_hash
    WHERE NOT v.is_valid
    GROUP BY ALL
"""


@dataclass
class Reconciled:
    """The valid results to consider, one per target key and stage, and the rejects."""

    results: list[Result] = field(default_factory=list)
    ledger: dict[tuple[str, str], str] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    reject_reasons: dict[str, Counter[str]] = field(default_factory=dict)
    duplicates: int = 0  # valid results dropped for a newer one with the same key
    nul_removed: int = 0  # U+0000 characters removed from content and item values


def read_results(
    connection: duckdb.DuckDBPyConnection, job: Job, shape: RowShape, target: str
) -> Reconciled:
    """Return the job's valid results, deduplicated by target key, and its rejects."""
    reconciled = Reconciled()
    newest: dict[tuple[str, str], Result] = {}
    cursor = connection.execute(VALID_SQL)
    while rows := cursor.fetchmany(FETCH_ROWS):
        for row in rows:
            result = _to_result(job, shape, row, reconciled)
            slot = (target_key_text(result.target_key), result.stage)
            if slot in newest:
                reconciled.duplicates += 1
                result = newer(newest[slot], result)
            newest[slot] = result
    reconciled.results = list(newest.values())
    reconciled.ledger = read_ledger(connection, target)
    for stage, count in connection.execute(REJECT_COUNT_SQL).fetchall():
        reconciled.rejected[stage] = int(count)
    for stage, reason, count in connection.execute(REJECT_SQL).fetchall():
        reconciled.reject_reasons.setdefault(stage, Counter())[reason] = int(count)
    return reconciled


def read_ledger(
    connection: duckdb.DuckDBPyConnection, target: str
) -> dict[tuple[str, str], str]:
    """Return the ledger's row hash per (target key, stage) for `target`."""
    rows = connection.execute(
        "SELECT target_key, stage, row_hash FROM load_ledger WHERE target = ?",
        [target],
    ).fetchall()
    return {(key, stage): digest for key, stage, digest in rows}


def _item_values(
    job: Job, item: dict[str, Any], columns: tuple[str, ...], reconciled: Reconciled
) -> tuple[Any, ...]:
    values = []
    for column in columns:
        if column not in item:
            raise LoadError(
                f"{job.path}: load names the column {column!r}, which the items "
                f"query does not return; its columns are {', '.join(item)}"
            )
        value, removed = strip_nul(item[column])
        reconciled.nul_removed += removed
        values.append(value)
    return tuple(values)


def _to_result(
    job: Job, shape: RowShape, row: tuple[Any, ...], reconciled: Reconciled
) -> Result:
    (stage, item_key, custom_id, request_hash, attempt_id, model, content) = row[:7]
    prompt, completion, reasoning, cost, finished, item_json = row[7:]
    item = orjson.loads(item_json)
    target_key = _item_values(job, item, load_key(job), reconciled)
    item_values = _item_values(job, item, shape.item_columns, reconciled)
    content, removed = strip_nul(content)
    reconciled.nul_removed += removed
    digest = content_hash(content)
    return Result(
        stage=stage,
        item_key=item_key,
        target_key=target_key,
        item_values=item_values,
        custom_id=custom_id,
        request_hash=request_hash,
        attempt_id=attempt_id,
        model=model,
        content=content,
        content_hash=digest,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cost_usd=cost,
        generated_at=finished,
        row_hash=row_hash(digest, item_values),
    )
