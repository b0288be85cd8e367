"""Load targets: PostgreSQL over COPY, Supabase REST, and a Parquet export.

Every target takes chunks of rows shaped by `batchkit.load.rows` and raises
LoadError (stop), TransientLoadError (retry the chunk) or ChunkRejectedError
(send the chunk in halves).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ChunkWrite:
    """The target's row counts for one committed chunk; None where it reports none."""

    inserted: int | None
    updated: int | None


class Target(Protocol):
    """A place that stores upserted rows."""

    identity: str  # host, database and table, never credentials

    def open(self, statements: list[str] | None) -> None:
        """Connect and check the table; run `statements` first if it is missing."""

    def write(self, rows: list[tuple[Any, ...]]) -> ChunkWrite:
        """Upsert one chunk of rows and commit it."""

    def reset(self) -> None:
        """Drop the connection after a transient error; the next write reconnects."""

    def close(self) -> None:
        """Release the connection."""


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return `text` with URL passwords, `password=` values and `secrets` masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return _KEYWORD_PASSWORD.sub(r"\1***", text)
