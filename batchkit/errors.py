"""The root of batchkit's exception tree.

BatchkitError
 +-- JobError            the job file is invalid (batchkit.job)
 +-- StoreError          the job database cannot be opened or is locked
 +-- PrepareError        an input, item or template cannot be rendered
 +-- ProviderError       a provider response, classified (batchkit.providers);
 |                       rate limit, server, timeout, connection, invalid
 |                       response and bad request, plus RunStoppingError
 |                       (authentication, payment, not found) that ends a run
 +-- ExecuteError        a run cannot start or must stop (batchkit.execute),
 |                       with SelectionError, BudgetExceededError, BatchError
 +-- LoadError           the load target rejected the data (batchkit.load)
 +-- AnalysisError       a status, sql or report query failed
 +-- LocalPostgresError  the throwaway PostgreSQL cluster did not start

Every error is either terminal (fix something, then rerun) or retryable; code
that retries checks `is_retryable`, never the message text.
"""


class BatchkitError(Exception):
    """An error the CLI reports as one `Error: ...` line and exit code 1."""

    is_retryable = False
