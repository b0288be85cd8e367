"""Provider errors, classified by HTTP status or transport failure, never by text.

ProviderError (batchkit.errors.BatchkitError)
 +-- MissingAPIKeyError      the key variable is unset: terminal
 +-- RateLimitError          429: retryable, lowers the caps
 +-- ServerError             5xx and 408/409/425: retryable
 +-- ProviderTimeoutError    connect/read timeout or the request deadline: retryable
 +-- ProviderConnectionError connection dropped without a complete response: retryable
 +-- InvalidResponseError    a 200 whose body is not a chat completion: retryable
 +-- BadRequestError         400, 422 and other 4xx: terminal for that request
 |    +-- ContentFilterError the provider refused the prompt (code content_filter)
 |    +-- ContextLengthError the prompt exceeds the model's context
 +-- RunStoppingError        the whole run must stop, because every request fails alike
      +-- AuthenticationError 401/403
      +-- PaymentRequiredError 402 (an empty balance)
      +-- NotFoundError       404 (wrong base URL or model)

`error_type` is the value stored in the response log's `error_type` column.
"""

from typing import ClassVar

from batchkit.errors import BatchkitError


class ProviderError(BatchkitError):
    """A failed attempt: the HTTP status (if any) and a retry hint from headers."""

    error_type: ClassVar[str] = "provider"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after  # seconds, from Retry-After or x-ratelimit-*
        self.body = body


class MissingAPIKeyError(ProviderError):
    """The environment variable that should hold the API key is unset or empty."""

    error_type = "auth"


class RateLimitError(ProviderError):
    """HTTP 429: too many requests, tokens or requests in flight."""

    error_type = "rate_limit"
    is_retryable = True


class ServerError(ProviderError):
    """HTTP 5xx (or 408, 409, 425): the provider failed or is overloaded."""

    error_type = "server"
    is_retryable = True


class ProviderTimeoutError(ProviderError):
    """No connection, no byte, or no complete response in time."""

    error_type = "timeout"
    is_retryable = True


class ProviderConnectionError(ProviderError):
    """The connection failed or closed before a complete response arrived."""

    error_type = "connection"
    is_retryable = True


class InvalidResponseError(ProviderError):
    """A 200 whose body is not JSON (cut short, or padding only) or no completion."""

    error_type = "invalid_json"
    is_retryable = True


class BadRequestError(ProviderError):
    """HTTP 400, 422 or another 4xx: this request fails the same way every time."""

    error_type = "bad_request"


class ContentFilterError(BadRequestError):
    """The provider refused the prompt under its content policy."""

    error_type = "content_filter"


class ContextLengthError(BadRequestError):
    """The prompt plus max_tokens exceeds the model's context length."""

    error_type = "length"


class RunStoppingError(ProviderError):
    """An error that every further request would repeat, so the run stops."""


class InvalidBaseURLError(ProviderError):
    """The base URL has no http:// or https:// scheme."""

    error_type = "bad_request"


class EndpointUnreachableError(RunStoppingError):
    """Every connection of the run so far failed: a wrong base URL or a server down."""

    error_type = "connection"


class AuthenticationError(RunStoppingError):
    """HTTP 401 or 403: the API key is wrong, revoked or lacks access."""

    error_type = "auth"


class PaymentRequiredError(RunStoppingError):
    """HTTP 402: the account has no balance left."""

    error_type = "payment"


class NotFoundError(RunStoppingError):
    """HTTP 404: the base URL or the model does not exist."""

    error_type = "not_found"
