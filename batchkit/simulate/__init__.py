"""The provider simulator: an OpenAI-compatible server for tests, demo and benchmarks.

It speaks the OpenAI wire protocol on 127.0.0.1 (chat completions with and
without streaming, files, batches), enforces its own rate caps, injects
latency, padding and faults, writes content in the requested language and
length, and logs what it served. docs/simulator.md describes every setting.

    with run_in_thread(SimulatorConfig(rpm=60)) as simulator:
        client = openai.OpenAI(base_url=simulator.base_url, api_key=simulator.api_key)
        ...
        assert simulator.stats()["by_status"]["200"] == 1
"""

from batchkit.simulate.config import FAULT_KINDS, SimulatorConfig
from batchkit.simulate.errors import SimulatorConfigError, SimulatorError
from batchkit.simulate.process import SimulatorProcess, run_in_subprocess
from batchkit.simulate.server import SimulatorHandle, run_in_thread, serve

__all__ = [
    "FAULT_KINDS",
    "SimulatorConfig",
    "SimulatorConfigError",
    "SimulatorError",
    "SimulatorHandle",
    "SimulatorProcess",
    "run_in_subprocess",
    "run_in_thread",
    "serve",
]
