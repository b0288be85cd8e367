"""The OpenAI endpoints besides chat: models, files and batches."""

import time
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from batchkit.simulate.batches import ENDPOINT, FINAL_STATUSES, read_controls
from batchkit.simulate.completion import InvalidRequest
from batchkit.simulate.files import PURPOSES
from batchkit.simulate.http_common import (
    STATE,
    error_response,
    json_response,
    read_limit,
    unauthorized_response,
)

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
READ_CHUNK_BYTES = 1 << 20


@web.middleware
async def require_api_key(request: web.Request, handler: Any) -> web.StreamResponse:
    """Reject /v1 requests without the key with 401; the chat handler logs its own."""
    if request.path.startswith("/v1/") and request.path != ENDPOINT:
        unauthorized = unauthorized_response(request)
        if unauthorized is not None:
            return unauthorized
    response: web.StreamResponse = await handler(request)
    return response


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models."""
    created = int(time.time())
    models = [
        {"id": name, "object": "model", "created": created, "owned_by": "simulator"}
        for name in request.app[STATE].config.models
    ]
    return json_response({"object": "list", "data": models})


async def upload_file(request: web.Request) -> web.Response:
    """POST /v1/files (multipart: `purpose` and `file`)."""
    state = request.app[STATE]
    if not request.content_type.startswith("multipart/"):
        return error_response(
            400, "Send the file as multipart/form-data.", param="file"
        )
    purpose, filename, data = None, None, None
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "purpose":
            purpose = (await part.read()).decode()
        elif part.name == "file":
            filename = part.filename or "upload.jsonl"
            data = await _read_part(part, state.config.upload_max_bytes)
            if data is None:
                limit = state.config.upload_max_bytes
                message = f"The file is larger than the upload limit of {limit} bytes."
                return error_response(400, message, param="file", code="file_too_large")
    if data is None or filename is None:
        return error_response(
            400,
            "Missing required parameter: 'file'.",
            param="file",
            code="missing_required_parameter",
        )
    if purpose not in PURPOSES or purpose == "batch_output":
        message = f"Invalid 'purpose': {purpose!r}. Use 'batch' for batch input files."
        return error_response(400, message, param="purpose", code="invalid_value")
    stored = state.files.add(data, filename, purpose)
    return json_response(stored.to_dict())


async def _read_part(part: BodyPartReader, limit: int) -> bytes | None:
    chunks = []
    size = 0
    while chunk := await part.read_chunk(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def list_files(request: web.Request) -> web.Response:
    """GET /v1/files (`purpose`, `limit`, `after`, `order`)."""
    state = request.app[STATE]
    limit = read_limit(request, 10_000, 10_000)
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        message = f"Invalid 'order': {order!r}. Expected 'asc' or 'desc'."
        return error_response(400, message, param="order")
    files, has_more = state.files.page(
        request.query.get("purpose"),
        limit,
        request.query.get("after"),
        newest_first=order == "desc",
    )
    return json_response(_page([f.to_dict() for f in files], has_more))


async def get_file(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}."""
    stored = request.app[STATE].files.get(request.match_info["file_id"])
    if stored is None:
        return _file_not_found(request)
    return json_response(stored.to_dict())


async def get_file_content(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}/content."""
    stored = request.app[STATE].files.get(request.match_info["file_id"])
    if stored is None:
        return _file_not_found(request)
    return web.Response(body=stored.data, content_type="application/octet-stream")


async def delete_file(request: web.Request) -> web.Response:
    """DELETE /v1/files/{file_id}."""
    file_id = request.match_info["file_id"]
    if not request.app[STATE].files.delete(file_id):
        return _file_not_found(request)
    return json_response({"id": file_id, "object": "file", "deleted": True})


def _file_not_found(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    return error_response(404, f"No such file: {file_id!r}.", param="file_id")


async def create_batch(request: web.Request) -> web.Response:
    """POST /v1/batches."""
    state = request.app[STATE]
    try:
        body = orjson.loads(await request.read())
        if not isinstance(body, dict):
            raise InvalidRequest("The request body is not a JSON object.")
        file_id = _read_input_file(body, request)
        window = body.get("completion_window")
        if window != "24h":
            raise InvalidRequest(
                f"Invalid 'completion_window': {window!r}. Only '24h' is supported.",
                "completion_window",
                "invalid_value",
            )
        endpoint = body.get("endpoint")
        if endpoint != ENDPOINT:
            raise InvalidRequest(
                f"Invalid 'endpoint': {endpoint!r}. The simulator supports "
                f"{ENDPOINT!r} only.",
                "endpoint",
                "invalid_value",
            )
        metadata = _read_metadata(body.get("metadata"))
        controls = read_controls(metadata, state.config)
    except orjson.JSONDecodeError:
        return error_response(400, "The request body is not valid JSON.")
    except InvalidRequest as invalid:
        return json_response(invalid.body(), invalid.status)
    batch = state.batches.create(file_id, window, metadata, controls)
    return json_response(batch.to_dict())


def _read_input_file(body: dict[str, Any], request: web.Request) -> str:
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str):
        raise InvalidRequest(
            "Missing required parameter: 'input_file_id'.",
            "input_file_id",
            "missing_required_parameter",
        )
    stored = request.app[STATE].files.get(file_id)
    if stored is None:
        raise InvalidRequest(
            f"No such file: {file_id!r}. Upload the input file first.",
            "input_file_id",
            "file_not_found",
        )
    if stored.purpose != "batch":
        raise InvalidRequest(
            f"The file {file_id!r} has purpose {stored.purpose!r}; batch input "
            "files need purpose 'batch'.",
            "input_file_id",
            "invalid_value",
        )
    return file_id


def _read_metadata(metadata: object) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"Invalid 'metadata': expected an object with at most "
            f"{MAX_METADATA_KEYS} string values.",
            "metadata",
            "invalid_value",
        )
    for key, value in metadata.items():
        too_long = (
            len(key) > MAX_METADATA_KEY_CHARS
            or not isinstance(value, str)
            or len(value) > MAX_METADATA_VALUE_CHARS
        )
        if too_long:
            raise InvalidRequest(
                f"Invalid 'metadata.{key}': keys have at most "
                f"{MAX_METADATA_KEY_CHARS} characters and values are strings of "
                f"at most {MAX_METADATA_VALUE_CHARS}.",
                f"metadata.{key}",
                "invalid_value",
            )
    return dict(metadata)


async def get_batch(request: web.Request) -> web.Response:
    """GET /v1/batches/{batch_id}."""
    batch = request.app[STATE].batches.get(request.match_info["batch_id"])
    if batch is None:
        return _batch_not_found(request)
    return json_response(batch.to_dict())


async def list_batches(request: web.Request) -> web.Response:
    """GET /v1/batches (`limit`, `after`)."""
    limit = read_limit(request, 20, 100)
    batches, has_more = request.app[STATE].batches.page(
        limit, request.query.get("after")
    )
    return json_response(_page([b.to_dict() for b in batches], has_more))


async def cancel_batch(request: web.Request) -> web.Response:
    """POST /v1/batches/{batch_id}/cancel."""
    state = request.app[STATE]
    batch = state.batches.get(request.match_info["batch_id"])
    if batch is None:
        return _batch_not_found(request)
    if batch.status in FINAL_STATUSES:
        message = f"Cannot cancel batch {batch.id!r}: its status is {batch.status}."
        return error_response(409, message, param="batch_id")
    if batch.status != "cancelling":
        state.batches.cancel(batch)
    return json_response(batch.to_dict())


def _batch_not_found(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    return error_response(404, f"No such batch: {batch_id!r}.", param="batch_id")


def _page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }
