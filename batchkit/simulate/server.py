"""Run the simulator in the foreground, or in a background thread for tests."""

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from aiohttp import web

from batchkit.simulate.app import create_app
from batchkit.simulate.config import SimulatorConfig, check_config
from batchkit.simulate.errors import SimulatorConfigError, SimulatorError
from batchkit.simulate.state import SimulatorState

logger = logging.getLogger(__name__)

# Requests still open at shutdown (a hang, endless padding) get this long.
SHUTDOWN_SECONDS = 1.0
START_TIMEOUT_SECONDS = 30.0


def format_base_url(host: str, port: int) -> str:
    """Return the OpenAI base URL, such as http://127.0.0.1:8000/v1."""
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


async def start_server(config: SimulatorConfig) -> tuple[web.AppRunner, str]:
    """Start listening and return the runner and the base URL."""
    check_config(config)
    runner = web.AppRunner(
        create_app(SimulatorState(config)),
        access_log=None,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise SimulatorError(
            f"cannot listen on {config.host}:{config.port}: {error.strerror}; "
            "choose another port, or 0 for any free port"
        ) from error
    host, port = runner.addresses[0][:2]
    base_url = format_base_url(host, port)
    logger.info("simulator listening on %s", base_url)
    return runner, base_url


async def serve(config: SimulatorConfig, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM, then stop; `on_ready` gets the base URL."""
    runner, base_url = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    try:
        on_ready(base_url)
        await stop.wait()
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)
        await runner.cleanup()
        logger.info("simulator on %s stopped", base_url)


class SimulatorHandle:
    """A running simulator: its base URL and its /_sim endpoints over HTTP."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.base_url = base_url
        self.root_url = base_url.removesuffix("/v1")
        self.api_key = api_key
        # trust_env=False keeps proxy variables from routing loopback calls away.
        self._client = httpx.Client(base_url=self.root_url, timeout=30, trust_env=False)

    def stats(self) -> dict[str, Any]:
        """Return the request statistics (GET /_sim/stats)."""
        return self._get("/_sim/stats")

    def log(self) -> list[dict[str, Any]]:
        """Return the request log entries kept in memory (GET /_sim/log)."""
        entries: list[dict[str, Any]] = self._get("/_sim/log")
        return entries

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at run time and return them all (POST /_sim/config)."""
        response = self._client.post("/_sim/config", json=changes)
        if response.status_code == 400:
            raise SimulatorConfigError(response.json()["error"]["message"])
        response.raise_for_status()
        config: dict[str, Any] = response.json()
        return config

    def reset(self) -> None:
        """Clear the log and counters and restore the start settings."""
        self._client.post("/_sim/reset").raise_for_status()

    def close(self) -> None:
        """Close the HTTP client; the server keeps running."""
        self._client.close()

    def __enter__(self) -> "SimulatorHandle":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, path: str) -> Any:
        response = self._client.get(path)
        response.raise_for_status()
        return response.json()


class _ThreadServer:
    """A simulator on its own event loop in a daemon thread."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="batchkit-simulator", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise SimulatorError("the simulator thread did not start in time")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner, self.base_url = self._loop.run_until_complete(
                start_server(self.config)
            )
        except BaseException as error:
            self._error = error
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()


@contextmanager
def run_in_thread(
    config: SimulatorConfig | None = None, **changes: Any
) -> Iterator[SimulatorHandle]:
    """Run a simulator in a background thread for the `with` block.

    `changes` override fields of `config` (or of the defaults). The port is a
    free one unless the config names it.
    """
    config = (config or SimulatorConfig()).replace(**changes)
    server = _ThreadServer(config)
    server.start()
    try:
        with SimulatorHandle(server.base_url, config.api_key) as handle:
            yield handle
    finally:
        server.stop()
