"""The response log's fixed schema: one row per attempt, ok or failed.

Every Parquet part is written with this schema, so a column that is all null
in one part keeps its type, and parts read together with `union_by_name`.
"""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

RESPONSE_SCHEMA = pa.schema(
    [
        ("attempt_id", pa.string()),  # unique id of this attempt
        ("custom_id", pa.string()),
        ("request_hash", pa.string()),
        ("stage", pa.string()),
        ("item_key", pa.string()),
        ("attempt", pa.int32()),  # 1 for the first attempt of this request version
        ("run_id", pa.string()),
        ("mode", pa.string()),  # stream or batch
        ("batch_id", pa.string()),
        ("status", pa.string()),  # ok or failed
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("http_status", pa.int32()),
        ("model", pa.string()),
        ("content", pa.string()),
        ("reasoning_content", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),  # includes reasoning tokens
        ("reasoning_tokens", pa.int64()),
        ("cache_hit_tokens", pa.int64()),
        ("cache_miss_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("latency_ms", pa.float64()),
        ("raw_body", pa.string()),
    ]
)
RESPONSE_COLUMNS = tuple(RESPONSE_SCHEMA.names)

# A zero-row part with the full schema, so that the `attempts` view has a
# file to read before the first run.
EMPTY_PART_NAME = "part-000000-schema.parquet"


def ensure_schema_part(responses_dir: Path) -> None:
    """Write the zero-row schema part into `responses_dir` unless it exists."""
    responses_dir.mkdir(parents=True, exist_ok=True)
    path = responses_dir / EMPTY_PART_NAME
    if path.exists():
        return
    temporary = path.with_suffix(".tmp")
    pq.write_table(RESPONSE_SCHEMA.empty_table(), temporary, compression="zstd")
    temporary.replace(path)


def parts_glob(responses_dir: Path) -> str:
    """Return the glob of the response log's Parquet parts."""
    return str(responses_dir / "*.parquet")
