"""The /_sim endpoints: statistics, the request log, settings and reset.

They need no API key, because the simulator only listens on loopback.
"""

import orjson
from aiohttp import web

from batchkit.simulate.errors import SimulatorConfigError
from batchkit.simulate.http_common import STATE, error_response, json_response


async def get_stats(request: web.Request) -> web.Response:
    """GET /_sim/stats."""
    return json_response(request.app[STATE].stats())


async def get_log(request: web.Request) -> web.Response:
    """GET /_sim/log?offset=N: the entries from the N-th one kept in memory on."""
    text = request.query.get("offset", "0")
    if not text.isdigit():
        return error_response(400, f"Invalid 'offset': {text!r}.", param="offset")
    entries = list(request.app[STATE].log.entries)
    return json_response(entries[int(text) :])


async def get_config(request: web.Request) -> web.Response:
    """GET /_sim/config."""
    return json_response(request.app[STATE].config.to_dict())


async def post_config(request: web.Request) -> web.Response:
    """POST /_sim/config with a JSON object of setting changes."""
    try:
        changes = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        changes = None
    if not isinstance(changes, dict):
        return error_response(400, "Send the setting changes as one JSON object.")
    try:
        config = request.app[STATE].configure(changes)
    except SimulatorConfigError as error:
        return error_response(400, str(error))
    return json_response(config.to_dict())


async def post_reset(request: web.Request) -> web.Response:
    """POST /_sim/reset."""
    request.app[STATE].reset()
    return json_response({"reset": True})
