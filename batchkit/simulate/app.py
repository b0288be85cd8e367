"""The aiohttp application: routes and cleanup."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from batchkit.simulate import admin, api
from batchkit.simulate.chat import handle_chat
from batchkit.simulate.http_common import STATE
from batchkit.simulate.state import SimulatorState

# Chat bodies up to a 128K-token prompt fit; file uploads stream past this.
MAX_BODY_BYTES = 64 * 1024 * 1024


def create_app(state: SimulatorState) -> web.Application:
    """Return the simulator's application, serving `state`."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[api.require_api_key]
    )
    app[STATE] = state
    app.router.add_get("/v1/models", api.list_models)
    app.router.add_post("/v1/chat/completions", handle_chat)
    app.router.add_post("/v1/files", api.upload_file)
    app.router.add_get("/v1/files", api.list_files)
    app.router.add_get("/v1/files/{file_id}", api.get_file)
    app.router.add_delete("/v1/files/{file_id}", api.delete_file)
    app.router.add_get("/v1/files/{file_id}/content", api.get_file_content)
    app.router.add_post("/v1/batches", api.create_batch)
    app.router.add_get("/v1/batches", api.list_batches)
    app.router.add_get("/v1/batches/{batch_id}", api.get_batch)
    app.router.add_post("/v1/batches/{batch_id}/cancel", api.cancel_batch)
    app.router.add_get("/_sim/stats", admin.get_stats)
    app.router.add_get("/_sim/log", admin.get_log)
    app.router.add_get("/_sim/config", admin.get_config)
    app.router.add_post("/_sim/config", admin.post_config)
    app.router.add_post("/_sim/reset", admin.post_reset)
    app.cleanup_ctx.append(_flush_log)
    app.on_cleanup.append(_close_state)
    return app


async def _flush_log(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(app[STATE].log.flush_periodically())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_state(app: web.Application) -> None:
    state = app[STATE]
    await state.batches.close()
    state.log.close()
