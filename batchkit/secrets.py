"""Read secrets from the environment or a git-ignored `.env`, never the job file."""

import os
from pathlib import Path

from dotenv import dotenv_values

from batchkit.job.model import Job


def find_secret(job: Job, name: str) -> str | None:
    """Return variable `name` from the environment, else from a `.env` file, else None.

    The CLI loads ./.env into the environment at start; a .env beside the job
    file serves jobs run from another directory.
    """
    value = os.environ.get(name)
    if value:
        return value
    for folder in (job.path.parent, Path.cwd()):
        value = dotenv_values(folder / ".env").get(name)
        if value:
            return value
    return None
