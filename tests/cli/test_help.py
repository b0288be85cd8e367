"""Every registered command has help with a summary and an example."""

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from batchkit.cli import commands


def _app() -> typer.Typer:
    app = typer.Typer(name="batchkit", add_completion=False)
    commands.register(app)
    return app


def _commands() -> dict[str, Any]:
    # typer ships its own copy of click, so the group is read by duck typing.
    return dict(typer.main.get_command(_app()).commands)  # type: ignore[attr-defined]


def test_prepare_is_registered() -> None:
    assert "prepare" in _commands()


@pytest.mark.parametrize("name", sorted(_commands()))
def test_command_help_has_summary(name: str) -> None:
    result = CliRunner().invoke(_app(), [name, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    text = (_commands()[name].help or "").strip()
    assert text, f"{name} has no help text"
    summary = text.splitlines()[0]
    assert summary.endswith("."), f"{name}: summary {summary!r}"
    assert "Example" in text, f"{name} help shows no example"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_command_options_have_help(name: str) -> None:
    for parameter in _commands()[name].params:
        if parameter.param_type_name == "option" and parameter.name != "help":
            assert parameter.help, f"{name} {parameter.opts[0]} has no help"
