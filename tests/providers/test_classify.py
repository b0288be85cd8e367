"""Non-200 responses classified by status code and error code, never by text."""

import httpx
import pytest

from batchkit.providers.classify import classify_response
from batchkit.providers.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextLengthError,
    NotFoundError,
    PaymentRequiredError,
    ProviderError,
    RateLimitError,
    RunStoppingError,
    ServerError,
)


def _body(code: str | None = None, message: str = "details") -> bytes:
    error = {"message": message, "code": code} if code else {"message": message}
    return httpx.Response(200, json={"error": error}).content


@pytest.mark.parametrize(
    ("status", "body", "expected", "error_type", "is_retryable"),
    [
        (429, _body("rate_limit_exceeded"), RateLimitError, "rate_limit", True),
        (500, _body(), ServerError, "server", True),
        (502, b"<html>bad gateway</html>", ServerError, "server", True),
        (503, b"", ServerError, "server", True),
        (408, _body(), ServerError, "server", True),
        (400, _body("invalid_request_error"), BadRequestError, "bad_request", False),
        (422, _body(), BadRequestError, "bad_request", False),
        (400, _body("content_filter"), ContentFilterError, "content_filter", False),
        (400, _body("context_length_exceeded"), ContextLengthError, "length", False),
        (401, _body("invalid_api_key"), AuthenticationError, "auth", False),
        (403, _body(), AuthenticationError, "auth", False),
        (402, _body(), PaymentRequiredError, "payment", False),
        (404, _body(), NotFoundError, "not_found", False),
    ],
)
def test_classify_response_by_status(
    status: int,
    body: bytes,
    expected: type[ProviderError],
    error_type: str,
    is_retryable: bool,
) -> None:
    error = classify_response(status, httpx.Headers({}), body)
    assert type(error) is expected
    assert error.error_type == error_type
    assert error.is_retryable is is_retryable
    assert error.http_status == status
    assert str(error).startswith(f"HTTP {status}")


def test_classify_ignores_message_text() -> None:
    # A 500 whose message mentions the API key is still a server error.
    error = classify_response(500, httpx.Headers({}), _body(message="invalid api key"))
    assert isinstance(error, ServerError)


def test_classify_rate_limit_reads_headers() -> None:
    headers = httpx.Headers({"x-ratelimit-reset-tokens": "1m30s"})
    error = classify_response(429, headers, _body("rate_limit_exceeded"))
    assert error.retry_after == pytest.approx(90.0)


def test_classify_server_error_reads_retry_after() -> None:
    error = classify_response(503, httpx.Headers({"Retry-After": "3"}), b"")
    assert error.retry_after == pytest.approx(3.0)


def test_auth_errors_stop_the_run() -> None:
    error = classify_response(401, httpx.Headers({}), _body())
    assert isinstance(error, RunStoppingError)
