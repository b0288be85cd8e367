"""The state one batch run shares between its steps."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchkit.execute.batch.client import BatchClient
from batchkit.execute.batch.files import BatchFile
from batchkit.execute.batch.summary import BatchSummary
from batchkit.execute.responselog import ResponseLog
from batchkit.job.model import Job

# Batch metadata keys that name the job, run and file a batch came from.
JOB_KEY = "batchkit_job"
RUN_KEY = "batchkit_run"
FILE_KEY = "batchkit_file"

# Called after each poll round with the run's summary so far.
ProgressCallback = Callable[[BatchSummary], None]
# Test hook: called with a step name ("uploaded", "created") and its object.
StepHook = Callable[[str, dict[str, Any]], None]
# Test hook: more metadata for the batch of one file (simulator controls).
MetadataHook = Callable[[BatchFile], dict[str, str]]

_RUN_ID = r"\d{8}T\d{6}Z-[0-9a-f]+"


def batches_dir(job: Job) -> Path:
    """Return the folder of the job's batch files and downloads."""
    return job.run_dir / "batches"


def upload_name(job: Job, run_id: str, path: Path) -> str:
    """Return the file name an upload gets, which marks it as this job's."""
    return f"batchkit-{job.name}-{run_id}-{path.name}"


def is_job_upload(job: Job, filename: str) -> bool:
    """Return whether an uploaded file's name marks it as one of this job's."""
    pattern = rf"batchkit-{re.escape(job.name)}-{_RUN_ID}-.+"
    return re.fullmatch(pattern, filename) is not None


@dataclass
class BatchRun:
    """The job, client, response log and summary of one batch run."""

    job: Job
    client: BatchClient
    log: ResponseLog
    summary: BatchSummary
    progress: ProgressCallback | None = None
    on_step: StepHook | None = None
    extra_metadata: MetadataHook | None = None
    next_file_number: int = 1
    # Set when an ingest may have made requests pending again, so that
    # --wait runs a selection only then.
    needs_selection: bool = True
    reported_too_large: set[str] = field(default_factory=set)

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def run_dir(self) -> Path:
        """Return the folder of this run's batch files."""
        return batches_dir(self.job) / self.run_id

    def step(self, name: str, value: dict[str, Any]) -> None:
        """Call the test hook, if any, after a step that a crash could follow."""
        if self.on_step is not None:
            self.on_step(name, value)

    def metadata(self, batch_file: BatchFile) -> dict[str, str]:
        """Return the metadata of the batch created from `batch_file`."""
        metadata = {
            JOB_KEY: self.job.name,
            RUN_KEY: self.run_id,
            FILE_KEY: batch_file.path.name,
        }
        if self.extra_metadata is not None:
            metadata.update(self.extra_metadata(batch_file))
        return metadata
