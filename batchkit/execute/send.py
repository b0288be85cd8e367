"""Send one chat completion request and turn what happens into a result or an error.

httpx drives the request through `httpx_aiohttp.AiohttpTransport`: httpx's
own transport costs several milliseconds of CPU per request under
concurrency, aiohttp's well under one. The whole request runs under a hard
deadline (`asyncio.timeout`), because a provider can keep a connection alive
for many minutes by sending blank lines, and each line resets the read
timeout.
"""

import asyncio
from dataclasses import dataclass
from types import TracebackType

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from batchkit.job.model import ProviderSpec
from batchkit.providers.classify import classify_response
from batchkit.providers.endpoint import Endpoint
from batchkit.providers.errors import (
    InvalidResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
)
from batchkit.providers.protocol import Completion, parse_completion

REQUEST_ID_HEADER = "X-Client-Request-Id"
# aiohttp failures that mean no usable response arrived, by the exception type
# httpx_aiohttp wrapped (it maps most of them to httpx.ConnectTimeout).
_TIMEOUT_CAUSES = (aiohttp.ServerTimeoutError, asyncio.TimeoutError)


@dataclass(frozen=True, slots=True)
class Reply:
    """A 200 response: the parsed completion and the body text as received."""

    completion: Completion
    body: str
    http_status: int = 200


def _transport_error(error: Exception, deadline: float) -> ProviderError:
    cause = error.__cause__
    # asyncio.timeout raises TimeoutError from the CancelledError it caused.
    if isinstance(error, TimeoutError) and isinstance(
        cause, asyncio.CancelledError | None
    ):
        return ProviderTimeoutError(
            f"no complete response within the request deadline of {deadline:g} s"
        )
    if isinstance(cause, _TIMEOUT_CAUSES) or isinstance(
        error, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout
    ):
        return ProviderTimeoutError(f"timed out: {type(error).__name__}: {error}")
    if isinstance(error, httpx.ConnectTimeout) and cause is None:
        return ProviderTimeoutError(f"timed out connecting: {error}")
    kind = type(cause or error).__name__
    return ProviderConnectionError(
        f"the connection failed or closed before a complete response ({kind}: "
        f"{cause or error})"
    )


class Sender:
    """An HTTP client for one endpoint, with a pool sized to the concurrency."""

    def __init__(
        self, endpoint: Endpoint, provider: ProviderSpec, concurrency: int
    ) -> None:
        # A parsed URL, so httpx does not parse the string again per request.
        self.url = httpx.URL(endpoint.chat_completions_url)
        self.deadline = provider.deadline
        limits = httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency
        )
        self.client = httpx.AsyncClient(
            transport=AiohttpTransport(limits=limits),
            timeout=httpx.Timeout(
                connect=provider.connect_timeout,
                read=provider.read_timeout,
                write=provider.read_timeout,
                pool=None,
            ),
        )
        # Only the headers a chat completion needs: httpx spends CPU on every
        # header of every request, and its defaults add four more.
        self.client.headers = httpx.Headers(
            {
                "Authorization": f"Bearer {endpoint.api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
        )

    async def __aenter__(self) -> "Sender":
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.client.aclose()

    async def send(self, custom_id: str, body: bytes) -> Reply:
        """POST `body` and return the parsed completion, or raise a ProviderError."""
        try:
            async with asyncio.timeout(self.deadline):
                response = await self.client.post(
                    self.url, content=body, headers={REQUEST_ID_HEADER: custom_id}
                )
        except httpx.DecodingError as error:
            raise InvalidResponseError(
                f"the response body could not be decoded: {error}"
            ) from error
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as error:
            raise _transport_error(error, self.deadline) from error
        content = response.content
        if response.status_code != 200:
            raise classify_response(response.status_code, response.headers, content)
        try:
            completion = parse_completion(content)
        except InvalidResponseError as error:
            error.body = content.decode("utf-8", "replace")
            raise
        return Reply(completion=completion, body=content.decode("utf-8", "replace"))
