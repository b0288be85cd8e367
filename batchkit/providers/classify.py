"""Turn a non-200 HTTP response into the matching ProviderError.

The class depends on the status code and, for 400s, on the structured
`error.code` field; the message text is only copied for people to read.
"""

from collections.abc import Mapping

import orjson

from batchkit.providers.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextLengthError,
    NotFoundError,
    PaymentRequiredError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from batchkit.providers.headers import retry_delay

MESSAGE_CHARS = 500
_CONTENT_FILTER_CODES = {"content_filter", "content_policy_violation"}
_CONTEXT_LENGTH_CODES = {"context_length_exceeded", "string_above_max_length"}
_SERVER_STATUSES = {408, 409, 425}


def _error_fields(body: bytes) -> tuple[str | None, str]:
    """Return the error code and message of an OpenAI-style error body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body[:MESSAGE_CHARS].decode("utf-8", "replace").strip()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, str(data)[:MESSAGE_CHARS]
    code = error.get("code") or error.get("type")
    message = str(error.get("message") or "")[:MESSAGE_CHARS]
    return (str(code) if code else None), message


def _error_class(status: int, code: str | None) -> type[ProviderError]:
    if status == 429:
        return RateLimitError
    if status in (401, 403):
        return AuthenticationError
    if status == 402:
        return PaymentRequiredError
    if status == 404:
        return NotFoundError
    if status >= 500 or status in _SERVER_STATUSES or status < 400:
        return ServerError
    if code in _CONTENT_FILTER_CODES:
        return ContentFilterError
    if code in _CONTEXT_LENGTH_CODES:
        return ContextLengthError
    return BadRequestError


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes
) -> ProviderError:
    """Return the error for a non-200 response; headers must be case-insensitive."""
    code, detail = _error_fields(body)
    message = f"HTTP {status}" + (f" ({code})" if code else "") + f": {detail}"
    error_class = _error_class(status, code)
    retry_after = retry_delay(headers) if error_class.is_retryable else None
    return error_class(
        message,
        http_status=status,
        retry_after=retry_after,
        body=body.decode("utf-8", "replace"),
    )
