"""The provider's files and batches API (OpenAI's /v1/files and /v1/batches).

Calls that are safe to repeat are retried on 429, 5xx and transport errors
with exponential backoff, honouring Retry-After. POST /batches is retried only
when the provider cannot have created the batch (no connection, or 429),
because a second batch from the same file would be paid twice.
"""

import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from batchkit.execute.batch.errors import BatchCreateError, NoBatchApiError
from batchkit.execute.records import redact
from batchkit.providers.endpoint import Endpoint
from batchkit.providers.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    PaymentRequiredError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)

logger = logging.getLogger(__name__)

CHAT_COMPLETIONS_URL = "/v1/chat/completions"
PAGE_SIZE = 100
DOWNLOAD_CHUNK = 1 << 20


class BatchClient:
    """A synchronous client, because a batch needs only a few calls."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = 120.0,
        max_tries: int = 5,
        backoff: float = 1.0,
        page_size: int = PAGE_SIZE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = endpoint.base_url.rstrip("/")
        self.max_tries = max_tries
        self.page_size = page_size
        self._api_key = endpoint.api_key
        self.backoff = backoff  # seconds before the first retry, doubled after each
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {endpoint.api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> "BatchClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def upload_file(self, path: Path, filename: str) -> dict[str, Any]:
        """Upload a JSONL batch file with purpose=batch and return the file object."""

        def send() -> httpx.Response:
            with path.open("rb") as handle:
                files = {"file": (filename, handle, "application/jsonl")}
                return self._http.post("/files", data={"purpose": "batch"}, files=files)

        response = self._call("POST", "/files", send, is_collection=True)
        return _json(response)

    def create_batch(
        self, input_file_id: str, completion_window: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        """Create a batch of chat completions from an uploaded file.

        Raises BatchCreateError when the outcome is unknown (timeout, dropped
        connection, 5xx), because retrying could create a second batch.
        """
        payload = {
            "input_file_id": input_file_id,
            "endpoint": CHAT_COMPLETIONS_URL,
            "completion_window": completion_window,
            "metadata": metadata,
        }
        try:
            response = self._call(
                "POST",
                "/batches",
                lambda: self._http.post("/batches", json=payload),
                is_collection=True,
                is_idempotent=False,
            )
        except (ServerError, ProviderTimeoutError, ProviderConnectionError) as error:
            raise BatchCreateError(
                f"POST {self.base_url}/batches for file {input_file_id} failed "
                f"({error}); the batch may exist, so the next run adopts it or "
                "deletes the file"
            ) from error
        return _json(response)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        """Return the batch object of `batch_id`."""
        path = f"/batches/{batch_id}"
        return _json(self._call("GET", path, lambda: self._http.get(path)))

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Ask the provider to cancel `batch_id` and return the batch object."""
        path = f"/batches/{batch_id}/cancel"
        return _json(self._call("POST", path, lambda: self._http.post(path)))

    def iter_batches(self) -> Iterator[dict[str, Any]]:
        """Yield every batch of the account, newest first, page by page."""
        yield from self._iter_pages("/batches", {})

    def iter_files(self) -> Iterator[dict[str, Any]]:
        """Yield every file of the account with purpose=batch."""
        yield from self._iter_pages("/files", {"purpose": "batch"})

    def delete_file(self, file_id: str) -> None:
        """Delete an uploaded file; a file that is gone already counts as deleted."""
        path = f"/files/{file_id}"
        try:
            self._call("DELETE", path, lambda: self._http.delete(path))
        except NotFoundError:
            logger.info("file %s was deleted already", file_id)

    def download_file(self, file_id: str, target: Path) -> Path:
        """Stream a file's content into `target` (written beside it, then renamed)."""
        path = f"/files/{file_id}/content"
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)

        def send() -> httpx.Response:
            with self._http.stream("GET", path) as response:
                if response.status_code == 200:
                    with partial.open("wb") as handle:
                        for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                            handle.write(chunk)
                else:
                    response.read()
                return response

        self._call("GET", path, send)
        partial.replace(target)
        return target

    def _iter_pages(
        self, path: str, params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        after: str | None = None
        while True:
            query = {**params, "limit": self.page_size}
            if after is not None:
                query["after"] = after
            response = self._call(
                "GET",
                path,
                lambda q=query: self._http.get(path, params=q),  # type: ignore[misc]
                is_collection=True,
            )
            page = _json(response)
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            after = page.get("last_id") or data[-1].get("id")

    def _call(
        self,
        method: str,
        path: str,
        send: Any,
        *,
        is_collection: bool = False,
        is_idempotent: bool = True,
    ) -> httpx.Response:
        for attempt in range(1, self.max_tries + 1):
            try:
                response = send()
                _raise_for_status(method, self.base_url + path, response, self._api_key)
                return response
            except NotFoundError as error:
                if is_collection:
                    url = self.base_url + path
                    raise _no_batch_api(method, url, error.http_status) from error
                raise
            except ProviderError as error:
                may_retry = isinstance(error, RateLimitError) or (
                    error.is_retryable and is_idempotent
                )
                if not may_retry or attempt == self.max_tries:
                    raise
                self._sleep_before_retry(method, path, attempt, error)
            except httpx.TransportError as error:
                failure = _transport_error(method, self.base_url + path, error)
                sent = not isinstance(error, httpx.ConnectError)
                if (sent and not is_idempotent) or attempt == self.max_tries:
                    raise failure from error
                self._sleep_before_retry(method, path, attempt, failure)
        raise AssertionError("unreachable: the last try returns or raises")

    def _sleep_before_retry(
        self, method: str, path: str, attempt: int, error: ProviderError
    ) -> None:
        delay = self.backoff * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        logger.warning(
            "%s %s failed (%s); retry %s of %s in %.1f s",
            method,
            path,
            error,
            attempt,
            self.max_tries - 1,
            delay,
        )
        time.sleep(delay)


def _no_batch_api(method: str, url: str, status: int | None) -> NoBatchApiError:
    return NoBatchApiError(
        f"{url}: this endpoint has no batch API ({method} {url} returned "
        f"{status}); use --mode stream"
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = orjson.loads(response.content)
    except orjson.JSONDecodeError as error:
        raise InvalidResponseError(
            f"{response.request.method} {response.request.url} returned "
            f"invalid JSON: {error}",
            http_status=response.status_code,
        ) from error
    if not isinstance(value, dict):
        raise InvalidResponseError(
            f"{response.request.method} {response.request.url} returned "
            f"{type(value).__name__}, not a JSON object",
            http_status=response.status_code,
        )
    return value


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _raise_for_status(
    method: str, url: str, response: httpx.Response, api_key: str
) -> None:
    status = response.status_code
    if status < 400:
        return
    # A 401 body may quote the key, so it is masked before any message holds it.
    body = (redact(response.text, api_key) or "")[:500]
    message = f"{method} {url} returned {status}: {body}"
    error_class: type[ProviderError]
    # Unlike chat completions, 409 here means the batch's state forbids the
    # call (cancelling a finished batch), so retrying cannot help.
    if status == 429:
        error_class = RateLimitError
    elif status == 409:
        error_class = BadRequestError
    elif status >= 500 or status in (408, 425):
        error_class = ServerError
    elif status in (401, 403):
        error_class = AuthenticationError
    elif status == 402:
        error_class = PaymentRequiredError
    elif status in (404, 405):
        error_class = NotFoundError
    else:
        error_class = BadRequestError
    raise error_class(
        message, http_status=status, retry_after=_retry_after(response), body=body
    )


def _transport_error(
    method: str, url: str, error: httpx.TransportError
) -> ProviderError:
    if isinstance(error, httpx.TimeoutException):
        return ProviderTimeoutError(f"{method} {url} timed out: {error!r}")
    return ProviderConnectionError(f"{method} {url} failed: {error!r}")
