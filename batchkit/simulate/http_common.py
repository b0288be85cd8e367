"""Shared HTTP pieces: the state key, JSON responses and the API key check."""

import math
from typing import Any

import orjson
from aiohttp import web

from batchkit.simulate.completion import error_body
from batchkit.simulate.limits import Rejection
from batchkit.simulate.state import SimulatorState

STATE = web.AppKey("state", SimulatorState)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Return `body` encoded with orjson."""
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> web.Response:
    """Return OpenAI's error object with `status`."""
    return json_response(error_body(message, kind, param, code), status)


def unauthorized_response(request: web.Request) -> web.Response | None:
    """Return a 401 when the request lacks the configured bearer key, else None."""
    key = request.app[STATE].config.api_key
    if key is None:
        return None
    header = request.headers.get("Authorization")
    if header == f"Bearer {key}":
        return None
    if header is None:
        message = (
            "No API key provided. Send it in the Authorization header as 'Bearer KEY'."
        )
        return error_response(401, message)
    message = "Incorrect API key provided. Use the key the simulator was started with."
    return error_response(401, message, code="invalid_api_key")


def rate_limit_response(rejection: Rejection, send_retry_after: bool) -> web.Response:
    """Return the 429 for a request over a cap, with its rate-limit headers."""
    headers = dict(rejection.headers)
    if send_retry_after:
        headers["Retry-After"] = str(max(math.ceil(rejection.retry_after), 1))
    kind = rejection.cap if rejection.cap in ("requests", "tokens") else "requests"
    body = error_body(rejection.message, kind, None, "rate_limit_exceeded")
    return json_response(body, 429, headers)


def read_limit(request: web.Request, default: int, highest: int) -> int:
    """Return the `limit` query parameter, checked; raise HTTPBadRequest."""
    text = request.query.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= highest:
        message = f"Invalid 'limit': {text!r}. Expected an integer from 1 to {highest}."
        raise web.HTTPBadRequest(
            body=orjson.dumps(error_body(message, "invalid_request_error", "limit")),
            content_type="application/json",
        )
    return int(text)
