"""Errors of status, sql and report."""

from batchkit.errors import BatchkitError


class AnalysisError(BatchkitError):
    """A query failed, or the job database lacks the analysis views."""
