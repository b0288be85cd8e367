"""Errors of the load phase."""

from batchkit.errors import BatchkitError


class LoadError(BatchkitError):
    """The results cannot be loaded; the message names the target, key or policy."""


class TransientLoadError(LoadError):
    """A chunk failed for a reason that may pass (a dropped connection, a conflict)."""

    is_retryable = True
