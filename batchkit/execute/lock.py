"""One execute at a time per job.

Two runs selecting the same pending requests would both send them and pay
twice, and a starting run compacts write-ahead logs it takes for crashed
runs. The lock is an flock on `runs/<job>/execute.lock`, so the kernel
releases it when the process ends, also after `kill -9`.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from batchkit.execute.errors import ExecuteError
from batchkit.job.model import Job

LOCK_NAME = "execute.lock"


class ExecuteLockedError(ExecuteError):
    """Another execute of the same job is running."""


@contextmanager
def execute_lock(job: Job) -> Iterator[None]:
    """Hold the job's execute lock; raise ExecuteLockedError if another run has it."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    path = job.run_dir / LOCK_NAME
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ExecuteLockedError(
                f"{path}: another `batchkit execute` of job {job.name!r} is running "
                f"(pid {holder}); wait for it to end or stop it, then run this "
                "command again. `batchkit status` works meanwhile."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
