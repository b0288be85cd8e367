"""Errors of the prepare phase."""

from batchkit.errors import BatchkitError


class PrepareError(BatchkitError):
    """An input, the items query or a template cannot be used; nothing was written."""
