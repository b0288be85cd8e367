"""The summary of one `execute --mode batch` run, as data and as printable lines."""

from dataclasses import dataclass, field

# Batch statuses before a final one.
LIVE_STATES = ("validating", "in_progress", "finalizing", "cancelling")


@dataclass
class BatchReport:
    """One provider batch as the run last saw it."""

    batch_id: str
    status: str
    request_count: int
    completed_count: int | None = None
    failed_count: int | None = None
    ok: int = 0  # records appended by this run's ingest
    failed: int = 0
    error: str | None = None


@dataclass
class BatchSummary:
    """Batches created, adopted, polled and ingested by one run, with totals."""

    run_id: str
    batches: dict[str, BatchReport] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    submitted: int = 0  # requests in the batches this run created
    too_large: int = 0  # requests recorded as failed without an upload
    deferred: int = 0  # requests left for a later run by the token budget
    blocked: dict[str, str] = field(default_factory=dict)  # model -> reason
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(report.ok for report in self.batches.values())

    @property
    def failed(self) -> int:
        ingested = sum(report.failed for report in self.batches.values())
        return ingested + self.too_large

    @property
    def pending(self) -> int:
        """Return the requests in batches that have not finished."""
        return sum(
            report.request_count
            for report in self.batches.values()
            if report.status in LIVE_STATES
        )

    def lines(self) -> list[str]:
        """Return one line per batch, then the notes and totals."""
        lines = [_batch_line(report) for report in self.batches.values()]
        if self.created:
            lines.append(
                f"created {len(self.created)} batches with {self.submitted} requests"
            )
        if self.adopted:
            lines.append(
                f"adopted {len(self.adopted)} batches that an interrupted run "
                f"created: {', '.join(self.adopted)}"
            )
        if self.deleted_files:
            lines.append(
                f"deleted {len(self.deleted_files)} uploaded files that no batch "
                f"used: {', '.join(self.deleted_files)}"
            )
        if self.too_large:
            lines.append(
                f"{self.too_large} requests are too large for a batch file and "
                "were recorded as failed (error_type too_large)"
            )
        if self.deferred:
            lines.append(
                f"{self.deferred} requests wait for the token budget "
                "(provider.batch.max_enqueued_tokens); rerun to submit them"
            )
        for model, reason in sorted(self.blocked.items()):
            lines.append(f"no new batches for {model}: {reason}")
        lines.extend(f"error: {error}" for error in self.errors)
        lines.append(
            f"total: {self.ok} ok, {self.failed} failed, {self.pending} pending "
            "in live batches"
        )
        return lines


def _batch_line(report: BatchReport) -> str:
    parts = [f"{report.batch_id}: {report.status}", f"{report.request_count} requests"]
    if report.completed_count is not None:
        parts.append(f"{report.completed_count} completed")
    if report.failed_count is not None:
        parts.append(f"{report.failed_count} failed")
    if report.ok or report.failed:
        parts.append(f"ingested {report.ok} ok and {report.failed} failed")
    if report.error:
        parts.append(f"error {report.error}")
    return ", ".join(parts)
