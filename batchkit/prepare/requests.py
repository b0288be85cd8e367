"""Store rendered requests as new versions, superseding the ones they replace."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from batchkit.prepare.render import RenderedRequest

_FIELDS = [
    ("custom_id", pa.string()),
    ("request_hash", pa.string()),
    ("stage", pa.string()),
    ("item_key", pa.string()),
    ("model", pa.string()),
    ("line", pa.string()),
    ("line_bytes", pa.int32()),
    ("prompt_tokens_est", pa.int32()),
    ("max_tokens", pa.int32()),
    ("source_attempt_id", pa.string()),
]
_SCHEMA = pa.schema(_FIELDS)


@dataclass(frozen=True)
class StoreCounts:
    """Counts of rendered requests by their effect on the stored versions."""

    rendered: int
    added: int  # new custom_ids
    changed: int  # new versions of existing custom_ids
    unchanged: int

    def __add__(self, other: "StoreCounts") -> "StoreCounts":
        return StoreCounts(
            self.rendered + other.rendered,
            self.added + other.added,
            self.changed + other.changed,
            self.unchanged + other.unchanged,
        )


def _to_table(rendered: list[RenderedRequest]) -> pa.Table:
    columns = [
        pa.array(values, kind)
        for values, (_, kind) in zip(zip(*rendered, strict=True), _FIELDS, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=_SCHEMA)


def store_requests(
    connection: duckdb.DuckDBPyConnection, rendered: Iterable[RenderedRequest]
) -> StoreCounts:
    """Insert new request versions and supersede the ones they replace.

    Runs in the caller's transaction.
    """
    batch = list(rendered)
    if not batch:
        return StoreCounts(0, 0, 0, 0)
    now = datetime.now(UTC)
    connection.register("rendered_batch", _to_table(batch))
    try:
        return _merge(connection, now, len(batch))
    finally:
        connection.unregister("rendered_batch")


def _count(connection: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _merge(
    connection: duckdb.DuckDBPyConnection, now: datetime, total: int
) -> StoreCounts:
    # Classify before writing: unchanged rows have their current version
    # already; changed rows have another current version.
    unchanged = _count(
        connection,
        """
        SELECT count(*) FROM rendered_batch n JOIN request_versions v
          ON v.custom_id = n.custom_id AND v.request_hash = n.request_hash
        WHERE v.superseded_at IS NULL
        """,
    )
    changed = _count(
        connection,
        """
        SELECT count(*) FROM rendered_batch n
        WHERE EXISTS (SELECT 1 FROM request_versions v WHERE v.custom_id = n.custom_id)
          AND NOT EXISTS (
            SELECT 1 FROM request_versions v
            WHERE v.custom_id = n.custom_id AND v.request_hash = n.request_hash
              AND v.superseded_at IS NULL)
        """,
    )
    # Supersede the current versions that the new rendering replaces.
    connection.execute(
        """
        UPDATE request_versions v SET superseded_at = ?
        FROM rendered_batch n
        WHERE v.custom_id = n.custom_id AND v.request_hash <> n.request_hash
          AND v.superseded_at IS NULL
        """,
        [now],
    )
    # A template edited back to an earlier text revives that version.
    connection.execute(
        """
        UPDATE request_versions v SET superseded_at = NULL
        FROM rendered_batch n
        WHERE v.custom_id = n.custom_id AND v.request_hash = n.request_hash
          AND v.superseded_at IS NOT NULL
        """
    )
    connection.execute(
        """
        INSERT INTO request_versions
        SELECT n.custom_id, n.request_hash, n.stage, n.item_key, n.model, n.line,
               n.line_bytes, n.prompt_tokens_est, n.max_tokens, n.source_attempt_id,
               ?, NULL
        FROM rendered_batch n
        ANTI JOIN request_versions v
          ON v.custom_id = n.custom_id AND v.request_hash = n.request_hash
        """,
        [now],
    )
    return StoreCounts(
        rendered=total,
        added=total - unchanged - changed,
        changed=changed,
        unchanged=unchanged,
    )
