"""Errors of the execute phase."""

from batchkit.errors import BatchkitError


class ExecuteError(BatchkitError):
    """A run cannot start or must stop; the message names the value and the fix."""


class SelectionError(ExecuteError):
    """A selection option (--stage, --where, --limit) is invalid."""


class BudgetExceededError(ExecuteError):
    """The next request could take the spend over --max-cost."""
