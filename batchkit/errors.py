"""The root of batchkit's exception tree.

BatchkitError
 +-- JobError            the job file is invalid (batchkit.job)
 +-- StoreError          the job database cannot be opened or is locked (batchkit.store)
 +-- PrepareError        an input, item or template cannot be rendered (batchkit.prepare)
 +-- ProviderError       a provider response, classified (batchkit.providers)
 +-- ExecuteError        a run cannot start or must stop (batchkit.execute)
 +-- LoadError           the load target rejected the data (batchkit.load)

Every error is either terminal (fix something, then rerun) or retryable; code
that retries checks `is_retryable`, never the message text.
"""


class BatchkitError(Exception):
    """An error the CLI reports as one `Error: ...` line and exit code 1."""

    is_retryable = False
