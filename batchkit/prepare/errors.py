"""Errors of the prepare phase."""

from batchkit.errors import BatchkitError


class PrepareError(BatchkitError):
    """An input, the items query or a template cannot be used; nothing was written."""


def describe_duckdb_error(error: Exception) -> str:
    """Return DuckDB's error text without its echo of the SQL (the `LINE n:` part)."""
    lines = []
    for line in str(error).strip().splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines)
