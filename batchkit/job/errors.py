"""Errors of the job file."""

from batchkit.errors import BatchkitError


class JobError(BatchkitError):
    """The job file is missing or invalid; the message names the file, key and fix."""
