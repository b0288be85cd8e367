"""Errors of the batch runner.

BatchError (batchkit.execute.errors.ExecuteError)
 +-- NoBatchApiError      the endpoint has no /v1/files or /v1/batches: terminal
 +-- BatchFileError       a batch file would be invalid (duplicate custom_id): terminal
 +-- BatchRunLockedError  another batch run of the same job holds the lock: terminal
 +-- BatchCreateError     creating a batch failed and may have succeeded: retryable

HTTP failures of the files and batches calls raise the classes of
`batchkit.providers.errors` (RateLimitError, ServerError, AuthenticationError ...).
"""

from batchkit.execute.errors import ExecuteError


class BatchError(ExecuteError):
    """A batch run cannot go on."""


class NoBatchApiError(BatchError):
    """The endpoint returns 404 for the files or batches API."""


class BatchFileError(BatchError):
    """A batch file would break the provider's rules, so nothing is uploaded."""


class BatchRunLockedError(BatchError):
    """Another `execute --mode batch` of the same job is running."""


class BatchCreateError(BatchError):
    """POST /batches failed in a way that leaves unknown whether the batch exists.

    The next run lists the provider's batches and adopts it if it was created,
    or deletes the uploaded file if it was not.
    """

    is_retryable = True
