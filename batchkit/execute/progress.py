"""Progress reports of a stream run, and the silent default reporter.

The core never prints: the CLI passes a reporter that draws a progress bar or
writes plain lines, and library callers get `SilentProgress` by default.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RunSnapshot:
    """The state of a run at one moment; rates are over the last 60 seconds."""

    total: int  # requests selected for this run
    done: int  # requests finished: ok, or failed with no retry left in this run
    ok: int
    failed: int
    retrying: int  # requests waiting for a retry
    in_flight: int
    attempts: int  # attempts sent in this run, retries included
    requests_per_minute: int
    tokens_per_minute: int
    rpm_cap: float  # the requests-per-minute cap in force (lowered after 429s)
    tpm_cap: float | None
    concurrency_cap: int  # the requests-in-flight cap in force
    spent_usd: float  # cost of this run's attempts
    budget_usd: float | None  # --max-cost, for the whole job
    eta_seconds: float | None
    elapsed_seconds: float
    waiting_seconds: float = 0.0  # an off-peak or rate-limit pause still to go
    waiting_reason: str | None = None
    stopping: str | None = None  # why dispatch stopped: interrupted, budget, provider


class ExecuteProgress(Protocol):
    """Receives a snapshot about twice a second and once at the end."""

    def update(self, snapshot: RunSnapshot) -> None:
        """Show `snapshot`."""


class SilentProgress:
    """The default reporter: shows nothing."""

    def update(self, snapshot: RunSnapshot) -> None:
        """Ignore `snapshot`."""
