"""The list of command modules; each has `register(app)`."""

import importlib

import typer

# Add a module here when its phase exists.
COMMAND_MODULES = [
    "batchkit.cli.prepare",
    "batchkit.cli.run",
    "batchkit.cli.execute",
    "batchkit.cli.simulate",
    "batchkit.cli.load",
    "batchkit.cli.analysis",
]


def register(app: typer.Typer) -> None:
    """Import every command module and let it add its commands to `app`."""
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
