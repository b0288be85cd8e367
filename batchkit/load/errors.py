"""Errors of the load phase."""

from batchkit.errors import BatchkitError


class LoadError(BatchkitError):
    """The results cannot be loaded; the message names the target, key or policy."""


class TransientLoadError(LoadError):
    """A chunk failed for a reason that may pass (a dropped connection, a conflict)."""

    is_retryable = True


class ChunkRejectedError(LoadError):
    """The target rejected a chunk for its size or run time; send it in halves.

    Raised for a statement timeout (57014), 413 Payload Too Large and 5xx
    answers of the REST API.
    """

    is_retryable = True
