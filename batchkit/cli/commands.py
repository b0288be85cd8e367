"""The command modules; each has `register(app)`.

Importing every module costs most of a second (aiohttp, psycopg, pyarrow), so
a command line that names one command imports only that command's module.
"""

import importlib
from collections.abc import Sequence

import typer

# Command name -> the module that defines it.
COMMANDS = {
    "prepare": "batchkit.cli.prepare",
    "run": "batchkit.cli.run",
    "execute": "batchkit.cli.execute",
    "simulate": "batchkit.cli.simulate",
    "load": "batchkit.cli.load",
    "schema": "batchkit.cli.load",
    "status": "batchkit.cli.analysis",
    "sql": "batchkit.cli.analysis",
    "report": "batchkit.cli.analysis",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


def _named_command(arguments: Sequence[str]) -> str | None:
    for argument in arguments:
        if not argument.startswith("-"):
            return argument if argument in COMMANDS else None
    return None


def register(app: typer.Typer, arguments: Sequence[str] | None = None) -> None:
    """Add the commands to `app`: only the one `arguments` names, else all of them."""
    command = _named_command(arguments or [])
    modules = [COMMANDS[command]] if command else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(app)
