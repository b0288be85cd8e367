"""Errors of status, sql and report."""

from pathlib import Path

from batchkit.errors import BatchkitError


class AnalysisError(BatchkitError):
    """A query failed, or the job database lacks the analysis views."""


def missing_views_error(
    db_path: Path, job_path: Path, error: Exception
) -> AnalysisError:
    """Return the error for a database whose views are missing or out of date."""
    return AnalysisError(
        f"{db_path}: the analysis views are missing or out of date ({error}); "
        f"run `batchkit prepare -j {job_path}` once to recreate them"
    )
