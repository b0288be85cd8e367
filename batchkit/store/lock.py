"""One execute at a time per job, and no prepare while it runs.

Two runs selecting the same pending requests would both send them and pay
twice, and a starting run compacts write-ahead logs it takes for crashed
runs. A prepare during a run would supersede requests the run has already
selected, so it would pay for stale prompts. The lock is an flock on
`runs/<job>/execute.lock`, so the kernel releases it when the process ends,
also after `kill -9`.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from batchkit.job.model import Job
from batchkit.store.errors import StoreError

LOCK_NAME = "execute.lock"


class ExecuteLockedError(StoreError):
    """Another execute (or prepare) of the same job is running."""


@contextmanager
def execute_lock(job: Job, command: str = "execute") -> Iterator[None]:
    """Hold the job's execute lock; raise ExecuteLockedError if another run has it.

    `command` names the command that wants the lock, for the message.
    """
    job.run_dir.mkdir(parents=True, exist_ok=True)
    path = job.run_dir / LOCK_NAME
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ExecuteLockedError(
                f"{path}: `batchkit {command}` cannot start because another "
                f"`batchkit execute` or `prepare` of job {job.name!r} is running "
                f"(pid {holder}); wait for it to end or stop it, then run this "
                "command again. `batchkit status` works meanwhile."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
