"""Errors of the provider simulator."""

from batchkit.errors import BatchkitError


class SimulatorError(BatchkitError):
    """The simulator cannot start or stopped; the message names the cause."""


class SimulatorConfigError(SimulatorError):
    """A simulator setting is invalid; the message names the setting and the fix."""
