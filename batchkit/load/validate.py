"""Check results against their stage's rules and store the verdicts.

A reason is `name: detail`; the name is one of REASONS, so SQL can group
rejects with `split_part(reason, ':', 1)`.
"""

import re
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from batchkit.job.model import Job, ValidationRules
from batchkit.load.errors import LoadError
from batchkit.store.database import rules_hash

REASONS = (
    "empty",
    "finish_reason",
    "too_short",
    "too_long",
    "language",
    "headings",
    "heading_structure",
    "forbidden_phrase",
    "sql_check",
)

_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+\S|[ \t]*$)", re.MULTILINE)
# A fenced code block: its lines (e.g. `# install` in a shell example) are
# not headings. An unclosed fence runs to the end of the text.
_FENCE = re.compile(
    r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\1[ \t]*$|\Z)", re.M | re.S
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
FETCH_ROWS = 2_000


def count_headings(text: str) -> int:
    """Return the number of Markdown ATX headings (`#` to `######`) in `text`.

    Lines inside fenced code blocks do not count.
    """
    return len(_HEADING.findall(_FENCE.sub("", text)))


def language_share(text: str, language: str) -> float:
    """Return the share of `text`'s words written in `language`'s script.

    A run of Latin letters counts as one word and so does each CJK character,
    so English product names inside a Chinese text weigh like the Chinese
    words around them, not letter by letter.
    """
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    words = cjk + latin
    if words == 0:
        return 0.0
    return (cjk if language == "zh" else latin) / words


def check_result(
    rules: ValidationRules,
    content: str | None,
    finish_reason: str | None,
    source_content: str | None = None,
) -> list[str]:
    """Return the reasons `content` fails `rules`; an empty list means valid."""
    if content is None or not content.strip():
        return ["empty: the response has no content"]
    if not rules.enabled:
        return []

    reasons = []
    if rules.finish_reason and finish_reason != rules.finish_reason:
        reasons.append(f"finish_reason: {finish_reason} is not {rules.finish_reason}")
    reasons.extend(_length_reasons(rules, content))
    reasons.extend(_language_reasons(rules, content))
    reasons.extend(_heading_reasons(rules, content, source_content))

    lowered = content.lower()
    for phrase in rules.forbidden:
        if phrase.lower() in lowered:
            reasons.append(f"forbidden_phrase: contains {phrase!r}")
    return reasons


def _length_reasons(rules: ValidationRules, content: str) -> list[str]:
    length = len(content)
    if rules.min_chars is not None and length < rules.min_chars:
        return [f"too_short: {length} characters, minimum {rules.min_chars}"]
    if rules.max_chars is not None and length > rules.max_chars:
        return [f"too_long: {length} characters, maximum {rules.max_chars}"]
    return []


def _language_reasons(rules: ValidationRules, content: str) -> list[str]:
    if rules.language is None:
        return []
    share = language_share(content, rules.language)
    if share >= rules.min_language_share:
        return []
    return [
        f"language: {share:.0%} of words are {rules.language}, "
        f"minimum {rules.min_language_share:.0%}"
    ]


def _heading_reasons(
    rules: ValidationRules, content: str, source_content: str | None
) -> list[str]:
    reasons = []
    headings = count_headings(content)
    if rules.min_headings is not None and headings < rules.min_headings:
        reasons.append(f"headings: {headings} headings, minimum {rules.min_headings}")
    if rules.same_headings_as_source and source_content is not None:
        expected = count_headings(source_content)
        if abs(headings - expected) > rules.heading_tolerance:
            reasons.append(
                f"heading_structure: {headings} headings, the source has {expected} "
                f"(tolerance {rules.heading_tolerance})"
            )
    return reasons


def _unjudged_sql() -> str:
    return """
        SELECT r.attempt_id, r.custom_id, r.request_hash, r.stage, r.item_key,
               r.content, r.finish_reason, src.content AS source_content
        FROM results r
        JOIN stages s ON s.stage = r.stage
        LEFT JOIN verdicts v
          ON v.attempt_id = r.attempt_id AND v.rules_hash = s.rules_hash
        LEFT JOIN request_versions rv
          ON rv.custom_id = r.custom_id AND rv.request_hash = r.request_hash
        LEFT JOIN attempts src ON src.attempt_id = rv.source_attempt_id
        WHERE v.attempt_id IS NULL
    """


def _sql_failures(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: str, rules: ValidationRules
) -> set[str]:
    if not rules.enabled or rules.sql is None:
        return set()
    try:
        rows = connection.execute(
            f"SELECT attempt_id FROM results WHERE stage = ? "
            f"AND NOT coalesce(({rules.sql}), false)",
            [stage],
        ).fetchall()
    except duckdb.Error as error:
        index = job.stage_names.index(stage)
        raise LoadError(
            f"{job.path}: stages[{index}].validate.sql = {rules.sql!r}: the predicate "
            f"failed on the results view: {error}"
        ) from error
    return {row[0] for row in rows}


VERDICT_SCHEMA = pa.schema(
    [
        ("attempt_id", pa.string()),
        ("rules_hash", pa.string()),
        ("custom_id", pa.string()),
        ("request_hash", pa.string()),
        ("stage", pa.string()),
        ("item_key", pa.string()),
        ("is_valid", pa.bool_()),
        ("reasons", pa.list_(pa.string())),
        ("checked_at", pa.timestamp("us", tz="UTC")),
    ]
)


def refresh_verdicts(connection: duckdb.DuckDBPyConnection, job: Job) -> int:
    """Judge every result that has no verdict under its stage's current rules.

    Returns the number of verdicts added.
    """
    hashes = {stage.name: rules_hash(job, stage.name) for stage in job.stages}
    sql_failed = {
        stage.name: _sql_failures(connection, job, stage.name, stage.validation)
        for stage in job.stages
    }
    now = datetime.now(UTC)
    cursor = connection.execute(_unjudged_sql())
    verdicts: list[dict[str, Any]] = []
    while rows := cursor.fetchmany(FETCH_ROWS):
        for row in rows:
            attempt_id, custom_id, request_hash, stage, item_key = row[:5]
            content, finish, source = row[5:]
            if stage not in hashes:
                continue
            rules = job.stage(stage).validation
            reasons = check_result(rules, content, finish, source)
            if attempt_id in sql_failed[stage]:
                reasons.append(f"sql_check: fails {rules.sql}")
            verdicts.append(
                {
                    "attempt_id": attempt_id,
                    "rules_hash": hashes[stage],
                    "custom_id": custom_id,
                    "request_hash": request_hash,
                    "stage": stage,
                    "item_key": item_key,
                    "is_valid": not reasons,
                    "reasons": reasons,
                    "checked_at": now,
                }
            )
    _insert_verdicts(connection, verdicts)
    return len(verdicts)


def _insert_verdicts(
    connection: duckdb.DuckDBPyConnection, verdicts: list[dict[str, Any]]
) -> None:
    # One INSERT from an Arrow table: executemany runs one statement per row,
    # which took minutes for 62,000 verdicts.
    if not verdicts:
        return
    table = pa.Table.from_pylist(verdicts, schema=VERDICT_SCHEMA)
    connection.register("new_verdicts", table)
    try:
        connection.execute("INSERT OR REPLACE INTO verdicts SELECT * FROM new_verdicts")
    finally:
        connection.unregister("new_verdicts")
