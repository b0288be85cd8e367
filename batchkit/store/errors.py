"""Errors of the job database."""

from batchkit.errors import BatchkitError


class StoreError(BatchkitError):
    """The job database cannot be opened, is locked, or is from a newer batchkit."""
