"""The `batchkit` command: one typer app, one sub-module per phase."""

import sys
from typing import Annotated

import typer
from rich.markup import escape

from batchkit.cli import common
from batchkit.errors import BatchkitError

app = typer.Typer(
    name="batchkit",
    help="Run very large LLM generation jobs as rerunnable phases: "
    "prepare, execute, load.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs.")
    ] = False,
) -> None:
    _state["debug"] = debug
    common.configure_logging(debug)
    common.load_dotenv_file()


def _register_commands(arguments: list[str] | None = None) -> None:
    from batchkit.cli import commands

    commands.register(app, arguments)


def main() -> None:
    """Run the CLI, turning batchkit errors into one line on stderr and exit 1.

    typer's standalone mode handles usage errors (exit 2) and Ctrl-C (exit 130
    where the command does not handle it itself).
    """
    _register_commands(sys.argv[1:])
    try:
        app()
    except BatchkitError as error:
        if _state["debug"]:
            raise
        common.stderr.print(
            f"[red]Error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
