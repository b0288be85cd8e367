"""`batchkit simulate`: run the OpenAI-compatible provider simulator."""

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from batchkit.cli.common import configure_logging, stderr
from batchkit.errors import BatchkitError
from batchkit.simulate.config import (
    SimulatorConfig,
    load_config_file,
    parse_fault_rate,
)
from batchkit.simulate.server import serve


def simulate(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; loopback only unless --allow-remote."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port to listen on; 0 picks a free port.")
    ] = 0,
    allow_remote: Annotated[
        bool,
        typer.Option(help="Allow a --host outside 127.0.0.0/8 and localhost."),
    ] = False,
    rpm: Annotated[
        int | None,
        typer.Option(min=1, help="Cap on requests per minute (sliding window)."),
    ] = None,
    tpm: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Cap on tokens per minute: prompt plus max_tokens or completion.",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Cap on requests in flight at once.")
    ] = None,
    window: Annotated[
        float | None,
        typer.Option(help="Length of the rate-limit window in seconds. Default: 60."),
    ] = None,
    no_retry_after: Annotated[
        bool,
        typer.Option(help="Send 429s without Retry-After (rate-limit headers only)."),
    ] = False,
    over_cap: Annotated[
        str | None,
        typer.Option(
            help="What a request over a cap gets: 'reject' (429, default) or "
            "'pad' (blank lines until the cap has room, as DeepSeek does)."
        ),
    ] = None,
    latency: Annotated[
        float | None,
        typer.Option(help="Mean time to first byte in milliseconds (lognormal)."),
    ] = None,
    token_ms: Annotated[
        float | None,
        typer.Option(help="Generation time per output token in milliseconds."),
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            help="Factor on every simulated delay (latency, padding, hangs); "
            "0.01 runs 100 times faster."
        ),
    ] = None,
    fault_rate: Annotated[
        list[str] | None,
        typer.Option(
            help="Share of requests that get a fault, as KIND=RATE (repeatable); "
            "kinds: 429 500 502 503 drop truncate hang length content_filter empty."
        ),
    ] = None,
    pad_rate: Annotated[
        float | None,
        typer.Option(help="Share of requests padded with blank lines (0 to 1)."),
    ] = None,
    pad_seconds: Annotated[
        float | None,
        typer.Option(help="How long padding lasts, in seconds. Default: 10."),
    ] = None,
    pad_forever: Annotated[
        bool,
        typer.Option(help="Pad until the client gives up, never sending the body."),
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Bearer key clients must send; an empty string accepts any "
            "request. Default: sk-simulator.",
            envvar="BATCHKIT_SIMULATOR_KEY",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for generated text, faults and latency. Default: 0."),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option(help="Append every served request to this JSONL file."),
    ] = None,
    batch_speed: Annotated[
        float | None,
        typer.Option(help="Batch processing speed in lines per second."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="JSON or TOML file of settings (docs/simulator.md); the other "
            "options override it."
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option(help="Log every batch and setting change to stderr.")
    ] = False,
) -> None:
    """Run an OpenAI-compatible provider simulator on 127.0.0.1 until stopped.

    Prints its base URL on the first line of stdout, then serves chat
    completions, files and batches with the caps, latency and faults set here.
    Example:

        batchkit simulate --port 8000 --rpm 600 --fault-rate 500=0.02
    """
    changes: dict[str, Any] = load_config_file(config) if config else {}
    options = {
        "host": host,
        "port": port,
        "rpm": rpm,
        "tpm": tpm,
        "concurrency": concurrency,
        "window_seconds": window,
        "over_cap": over_cap,
        "latency_ms": latency,
        "token_ms": token_ms,
        "time_scale": time_scale,
        "pad_rate": pad_rate,
        "pad_seconds": pad_seconds,
        "seed": seed,
        "batch_lines_per_second": batch_speed,
        "log_file": str(log) if log else None,
    }
    is_default = {"host": "127.0.0.1", "port": 0}
    for name, value in options.items():
        if value is not None and (name not in is_default or value != is_default[name]):
            changes[name] = value
    for name, flag in (
        ("allow_remote", allow_remote),
        ("pad_forever", pad_forever),
        ("retry_after", not no_retry_after),
    ):
        if flag != getattr(SimulatorConfig, name):
            changes[name] = flag
    if api_key is not None:
        changes["api_key"] = api_key or None
    if fault_rate:
        changes["fault_rates"] = dict(parse_fault_rate(text) for text in fault_rate)
    settings = SimulatorConfig().replace(**changes)
    if debug:
        configure_logging(verbose=True)
    asyncio.run(serve(settings, _announce(settings)))


def _announce(settings: SimulatorConfig) -> Any:
    def on_ready(base_url: str) -> None:
        # The URL alone on stdout, flushed, so scripts can read the first line.
        print(base_url, flush=True)
        if settings.api_key is None:
            key = "any API key"
        elif settings.api_key == SimulatorConfig.api_key:
            key = f"API key {settings.api_key}"
        else:
            key = "the API key from --api-key"
        stderr.print(
            f"Simulator listening on {base_url} ({key}). Stop it with Ctrl+C.",
            highlight=False,
        )

    return on_ready


def register(app: typer.Typer) -> None:
    """Add the `simulate` command to `app`."""
    app.command(name="simulate")(simulate)


def main() -> None:
    """Run `simulate` as its own program (`python -m batchkit.simulate`)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    try:
        app(standalone_mode=False)
    except BatchkitError as error:
        stderr.print(f"[red]Error:[/red] {error}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except Exception as error:
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise
