"""The log file of one run: `runs/<job>/logs/<run_id>.log`."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from batchkit.job.model import Job

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def run_log(job: Job, run_id: str) -> Iterator[Path]:
    """Write batchkit's INFO and higher records to the run's log file meanwhile.

    The `batchkit` logger is lowered to INFO for the file. Console handlers
    without a level of their own would then print those INFO records too, so
    for that time they get the root logger's level, keeping the console as
    quiet as before.
    """
    job.logs_dir.mkdir(parents=True, exist_ok=True)
    path = job.logs_dir / f"{run_id}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    package = logging.getLogger("batchkit")
    root = logging.getLogger()
    consoles = [h for h in root.handlers if h.level == logging.NOTSET]
    for console in consoles:
        console.setLevel(root.getEffectiveLevel())
    previous_level = package.level
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    package.addHandler(handler)
    try:
        yield path
    finally:
        package.removeHandler(handler)
        package.setLevel(previous_level)
        for console in consoles:
            console.setLevel(logging.NOTSET)
        handler.close()
