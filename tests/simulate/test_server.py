"""Starting and stopping: the thread runner, the child process and the CLI."""

import os
import signal
import socket
import subprocess
import sys

import openai
import pytest
import typer
from typer.testing import CliRunner

from batchkit.cli import simulate as simulate_command
from batchkit.simulate import SimulatorError, run_in_subprocess, run_in_thread
from tests.simulate.helpers import chat_body, openai_client


def test_thread_server_stops_listening():
    with run_in_thread() as handle:
        port = int(handle.base_url.rsplit(":", 1)[1].split("/")[0])
        assert handle.base_url == f"http://127.0.0.1:{port}/v1"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_busy_port_is_an_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(SimulatorError, match=f"127.0.0.1:{port}"),
            run_in_thread(port=port),
        ):
            pass


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_subprocess_serves_and_stops_on_signal(number):
    with run_in_subprocess(rpm=100) as simulator:
        with openai_client(simulator) as client:
            response = client.chat.completions.with_raw_response.create(
                **chat_body("hi")
            )
        os.kill(simulator.pid, number)
        code = simulator.process.wait(timeout=10)
    assert response.headers["x-ratelimit-limit-requests"] == "100"
    assert code == 0


def test_subprocess_killed_drops_connections():
    with run_in_subprocess() as simulator:
        simulator.process.kill()
        simulator.process.wait(timeout=10)
        with (
            openai_client(simulator) as client,
            pytest.raises(openai.APIConnectionError),
        ):
            client.chat.completions.create(**chat_body("hi"))


def test_cli_rejects_remote_host():
    finished = subprocess.run(
        [sys.executable, "-m", "batchkit.simulate", "--host", "192.0.2.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert finished.stdout == ""
    assert "Error:" in finished.stderr
    assert "not a loopback address" in finished.stderr


def test_cli_rejects_bad_fault_rate():
    finished = subprocess.run(
        [sys.executable, "-m", "batchkit.simulate", "--fault-rate", "boom=0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert "'boom' is not a fault kind" in finished.stderr


def test_cli_help_names_units():
    app = typer.Typer(add_completion=False)
    simulate_command.register(app)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "requests per minute" in result.output
    assert "milliseconds" in result.output
    assert "lines per second" in result.output
    assert "batchkit simulate --port 8000" in result.output
