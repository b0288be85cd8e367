"""The endpoint of a job: its base URL and the API key sent with every request.

The key is read from the environment variable the job file names, or from a
git-ignored `.env` file beside the job file or in the working directory. It
never appears in `repr`, `str` or logs.
"""

import os
from dataclasses import dataclass, field

from batchkit.job.model import Job
from batchkit.providers.errors import InvalidBaseURLError, MissingAPIKeyError
from batchkit.secrets import find_secret

BASE_URL_ENV = "BATCHKIT_BASE_URL"
CHAT_COMPLETIONS_PATH = "/chat/completions"


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible base URL and the API key to send to it."""

    base_url: str
    api_key: str = field(repr=False)
    key_env: str  # the name of the variable the key came from

    def __repr__(self) -> str:
        return (
            f"Endpoint(base_url={self.base_url!r}, api_key='***', "
            f"key_env={self.key_env!r})"
        )

    __str__ = __repr__

    @property
    def chat_completions_url(self) -> str:
        """Return the URL of the chat completions endpoint."""
        return self.base_url.rstrip("/") + CHAT_COMPLETIONS_PATH


def find_api_key(job: Job) -> str | None:
    """Return the provider's API key, or None when it is not set."""
    return find_secret(job, job.provider.api_key_env)


def resolve_endpoint(job: Job, base_url: str | None = None) -> Endpoint:
    """Pick the base URL (argument, then $BATCHKIT_BASE_URL, then the job) and key.

    Raises MissingAPIKeyError, naming the variable and how to set it, when the
    key is missing or empty, and InvalidBaseURLError for a URL without scheme.
    """
    chosen = base_url or os.environ.get(BASE_URL_ENV) or job.provider.base_url
    if not chosen.startswith(("http://", "https://")):
        raise InvalidBaseURLError(
            f"base URL {chosen!r} (from --base-url, ${BASE_URL_ENV} or "
            f"provider.base_url in {job.path}) must start with http:// or "
            "https://, for example http://127.0.0.1:8000/v1"
        )
    name = job.provider.api_key_env
    key = find_api_key(job)
    if not key:
        raise MissingAPIKeyError(
            f"the API key variable {name} is not set (provider.api_key_env in "
            f"{job.path}); run `export {name}=...` or add `{name}=...` to a "
            f"git-ignored .env file in the current directory or in {job.path.parent}"
        )
    return Endpoint(base_url=chosen.rstrip("/"), api_key=key, key_env=name)
