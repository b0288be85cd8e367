"""Options and output helpers shared by every command."""

import logging
from pathlib import Path
from typing import Annotated

import typer
from dotenv import load_dotenv
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

# Data goes to stdout, everything else (progress, tables for people) to stderr.
stdout = Console()
stderr = Console(stderr=True)

JobOption = Annotated[
    Path,
    typer.Option(
        "--job",
        "-j",
        help="Job file (TOML). Default: batchkit.toml in the current directory.",
        envvar="BATCHKIT_JOB",
    ),
]
DEFAULT_JOB = Path("batchkit.toml")

QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only errors and the result.")
]


def configure_logging(verbose: bool) -> None:
    """Send batchkit's log records to stderr at INFO (or DEBUG with --debug)."""
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def load_dotenv_file() -> None:
    """Read secrets from `.env` in the current directory, if there is one.

    Variables already set in the environment win over the file.
    """
    path = Path.cwd() / ".env"
    if path.is_file():
        load_dotenv(path, override=False)


def format_duration(seconds: float) -> str:
    """Return `seconds` as text such as 2d 03h, 1h 05m, 4m 10s or 25s."""
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def progress_bar(label: str, quiet: bool) -> Progress:
    """Return a transient bar on stderr; it draws nothing when quiet or piped.

    `label` is the text column's format, such as "{task.description}".
    """
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        console=stderr,
        disable=quiet or not stderr.is_terminal,
        transient=True,
    )
