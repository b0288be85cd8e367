"""Write response-log parts (RESPONSE_SCHEMA) as execute would, for prepare tests."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from batchkit.store.responses import RESPONSE_SCHEMA


def write_part(responses_dir: Path, name: str, attempts: list[dict[str, Any]]) -> Path:
    """Write `attempts` (partial rows; the rest are null) as one Parquet part."""
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    defaults = {
        "attempt": 1,
        "run_id": "test-run",
        "mode": "stream",
        "status": "ok",
        "http_status": 200,
        "model": "test-model",
        "finish_reason": "stop",
        "prompt_tokens": 50,
        "completion_tokens": 300,
        "started_at": now,
        "finished_at": now,
    }
    rows = [{**defaults, **attempt} for attempt in attempts]
    columns = {
        field.name: [row.get(field.name) for row in rows] for field in RESPONSE_SCHEMA
    }
    table = pa.Table.from_pydict(columns, schema=RESPONSE_SCHEMA)
    path = responses_dir / f"{name}.parquet"
    temporary = responses_dir / f"{name}.parquet.tmp"
    pq.write_table(table, temporary)
    temporary.rename(path)
    return path
