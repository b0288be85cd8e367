"""The load ledger: what was committed to which target, so reruns send only changes.

Entries are buffered and written after their chunk committed in the target.
If the process dies between the target's commit and the ledger write, the
next load sends those rows again, and the upsert leaves them unchanged
because their content hashes match.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import pyarrow as pa
from psycopg.conninfo import conninfo_to_dict

from batchkit.job.model import Job
from batchkit.load.rows import Result, target_key_text
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0

LEDGER_SCHEMA = pa.schema(
    [
        ("target", pa.string()),
        ("target_key", pa.string()),
        ("stage", pa.string()),
        ("item_key", pa.string()),
        ("custom_id", pa.string()),
        ("request_hash", pa.string()),
        ("attempt_id", pa.string()),
        ("content_hash", pa.string()),
        ("row_hash", pa.string()),
        ("loaded_at", pa.timestamp("us", tz="UTC")),
    ]
)


def postgres_identity(url: str, table: str) -> str:
    """Return `postgres://host:port/database/table`, without user or password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        # An unparsable URL still gets an identity; its text must not leak.
        parts = {}
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    database = parts.get("dbname") or "postgres"
    return f"postgres://{host}:{port}/{database}/{table}"


def rest_identity(url: str, table: str) -> str:
    """Return `rest://host/table` for a Supabase project URL."""
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return f"rest://{host}/{table}"


@dataclass
class LedgerWriter:
    """Buffers ledger entries of committed chunks and writes them in batches."""

    job: Job
    target: str
    pending: list[Result] = field(default_factory=list)
    written: int = 0
    last_flush: float = field(default_factory=time.monotonic)

    def add(self, results: list[Result]) -> None:
        """Record `results` as committed; flush when the buffer is old enough."""
        self.pending.extend(results)
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered entries into `load_ledger`."""
        self.last_flush = time.monotonic()
        if not self.pending:
            return
        table = ledger_table(self.target, self.pending, datetime.now(UTC))
        with connect(self.job) as connection:
            connection.register("ledger_entries", table)
            connection.execute(
                "INSERT OR REPLACE INTO load_ledger SELECT * FROM ledger_entries"
            )
            connection.unregister("ledger_entries")
        self.written += len(self.pending)
        logger.debug(
            "ledger: %s entries written for %s", len(self.pending), self.target
        )
        self.pending = []


def ledger_table(target: str, results: list[Result], now: datetime) -> pa.Table:
    """Return ledger rows for `results` as an Arrow table in the ledger's order."""
    columns = {
        "target": [target] * len(results),
        "target_key": [target_key_text(r.target_key) for r in results],
        "stage": [r.stage for r in results],
        "item_key": [r.item_key for r in results],
        "custom_id": [r.custom_id for r in results],
        "request_hash": [r.request_hash for r in results],
        "attempt_id": [r.attempt_id for r in results],
        "content_hash": [r.content_hash for r in results],
        "row_hash": [r.row_hash for r in results],
        "loaded_at": [now] * len(results),
    }
    return pa.table(columns, schema=LEDGER_SCHEMA)
