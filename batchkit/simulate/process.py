"""Run the simulator as a child process, for benchmarks and kill tests."""

import dataclasses
import json
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchkit.simulate.config import SimulatorConfig
from batchkit.simulate.errors import SimulatorError
from batchkit.simulate.server import START_TIMEOUT_SECONDS, SimulatorHandle

STOP_TIMEOUT_SECONDS = 10.0


class SimulatorProcess(SimulatorHandle):
    """A simulator running in a child process; `process` is its Popen."""

    def __init__(
        self, base_url: str, api_key: str | None, process: subprocess.Popen[str]
    ) -> None:
        super().__init__(base_url, api_key)
        self.process = process

    @property
    def pid(self) -> int:
        """Return the child's process id."""
        return self.process.pid

    def stop(self) -> int:
        """Stop the child with SIGTERM (SIGKILL after 10 s); return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def simulator_command(config_path: Path, cpu: int | None = None) -> list[str]:
    """Return the command line that starts a simulator with a config file."""
    command = [sys.executable, "-m", "batchkit.simulate", "--config", str(config_path)]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    return command


@contextmanager
def run_in_subprocess(
    config: SimulatorConfig | None = None,
    *,
    cpu: int | None = None,
    quiet: bool = False,
    **changes: Any,
) -> Iterator[SimulatorProcess]:
    """Run a simulator in a child process for the `with` block.

    The child is `python -m batchkit.simulate`, pinned to CPU `cpu` with
    taskset when given. It prints its base URL as the first line of stdout.
    Its stderr goes to this process's stderr, or nowhere when `quiet`.
    """
    config = (config or SimulatorConfig()).replace(**changes)
    with tempfile.TemporaryDirectory(prefix="batchkit-sim-") as folder:
        path = Path(folder) / "simulator.json"
        values = dataclasses.asdict(config)
        values["fault_rates"] = dict(config.fault_rates)
        path.write_text(json.dumps(values), encoding="utf-8")
        process = subprocess.Popen(
            simulator_command(path, cpu),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,
            text=True,
        )
        handle = None
        try:
            base_url = _read_base_url(process)
            handle = SimulatorProcess(base_url, config.api_key, process)
            yield handle
        finally:
            if handle is not None:
                handle.close()
                handle.stop()
            elif process.poll() is None:
                process.kill()
                process.wait()


def _read_base_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
    line = process.stdout.readline().strip() if readable else ""
    if not line.startswith("http://"):
        process.kill()
        process.wait()
        raise SimulatorError(
            f"the simulator process did not print its URL (exit code "
            f"{process.returncode}, first line {line!r}); run "
            "`python -m batchkit.simulate` by hand to see its error"
        )
    return line
