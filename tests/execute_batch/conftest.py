"""A small prepared job and a simulator on 127.0.0.1 for the batch runner tests.

The simulator runs in a thread of the test process, a new one per test
(`simulator_factory` of tests/fixtures/simulator.py). Tests read its files
and batches through its own OpenAI-style HTTP API.
"""

import csv
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from batchkit.execute.batch.client import BatchClient
from batchkit.execute.batch.run import run_batches
from batchkit.execute.batch.summary import BatchSummary
from batchkit.execute.select import Selection
from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.prepare.run import prepare_job
from batchkit.providers.endpoint import resolve_endpoint
from batchkit.simulate.server import SimulatorHandle
from batchkit.store.database import connect
from tests.fixtures.simulator import SimulatorFactory

KEY_ENV = "BATCHKIT_BATCH_TEST_KEY"
MODEL = "gpt-4o-mini"

TEMPLATE = "Describe {{ item.name }}: {{ item.description }}"

JOB_TOML = """
[job]
name = "batchtest"
run_dir = "run"

[inputs.products]
path = "products.csv"

[items]
query = "SELECT id AS product_id, name, description FROM products"
key = ["product_id"]

[provider]
base_url = "{base_url}"
api_key_env = "{key_env}"
model = "{model}"
max_attempts = 5

[provider.batch]
max_lines = {max_lines}
max_bytes = {max_bytes}
{token_line}poll_interval = 0.05

[[stages]]
name = "doc"
model = "{model}"
messages = [{{ role = "user", text = "{template}" }}]
max_tokens = 400

[stages.validate]
enabled = false

[[prices]]
model = "{model}"
since = 2025-01-01
input_miss = 1.0
input_hit = 0.1
output = 2.0
batch_factor = 0.5
"""


@pytest.fixture
def batch_simulator(simulator_factory: SimulatorFactory) -> SimulatorHandle:
    """A simulator of this test only, so its batch and file lists start empty.

    It runs batches at 2,000 lines per second.
    """
    return simulator_factory(seed=7, batch_lines_per_second=2000.0)


@dataclass
class BatchEnv:
    """A prepared job, its simulator, and helpers to run and inspect it."""

    job: Job
    simulator: SimulatorHandle

    def client(self, page_size: int = 100) -> BatchClient:
        endpoint = resolve_endpoint(self.job)
        return BatchClient(endpoint, backoff=0.01, page_size=page_size)

    def run(
        self,
        page_size: int = 100,
        selection: Selection | None = None,
        **options: Any,
    ) -> BatchSummary:
        """Run the batch runner once with a fast sleep."""
        with self.client(page_size) as client:
            return run_batches(
                self.job,
                selection or Selection(),
                client,
                sleep=_short_sleep,
                **options,
            )

    def attempts(self) -> list[dict[str, Any]]:
        """Return every attempt of the response log, oldest first."""
        with connect(self.job, read_only=True) as connection:
            cursor = connection.execute(
                "SELECT * FROM attempts ORDER BY finished_at, custom_id"
            )
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def custom_ids(self) -> list[str]:
        with connect(self.job, read_only=True) as connection:
            rows = connection.execute(
                "SELECT custom_id FROM requests ORDER BY custom_id"
            ).fetchall()
        return [row[0] for row in rows]

    def provider_batches(self) -> list[dict[str, Any]]:
        with connect(self.job, read_only=True) as connection:
            cursor = connection.execute(
                "SELECT * FROM provider_batches ORDER BY created_at, batch_id"
            )
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def sim_get(self, path: str, **params: Any) -> httpx.Response:
        """GET a /v1 path of the simulator with the API key."""
        response = httpx.get(
            self.simulator.base_url + path,
            params=params,
            headers={"Authorization": "Bearer sk-simulator"},
            trust_env=False,
        )
        response.raise_for_status()
        return response

    def sim_delete(self, path: str) -> None:
        """DELETE a /v1 path of the simulator."""
        response = httpx.delete(
            self.simulator.base_url + path,
            headers={"Authorization": "Bearer sk-simulator"},
            trust_env=False,
        )
        response.raise_for_status()

    def wait_for_sim_batches(self, status: str, timeout: float = 10.0) -> None:
        """Poll the simulator until every batch has `status`."""
        deadline = time.monotonic() + timeout
        while {b["status"] for b in self.sim_batches()} != {status}:
            assert time.monotonic() < deadline, f"batches never all {status}"
            time.sleep(0.02)

    def sim_batches(self) -> list[dict[str, Any]]:
        """Return every batch the simulator holds."""
        data: list[dict[str, Any]] = self.sim_get("/batches", limit=100).json()["data"]
        return data

    def sim_files(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.sim_get("/files", purpose="batch").json()[
            "data"
        ]
        return data

    def sim_file_lines(self, file_id: str) -> list[dict[str, Any]]:
        content = self.sim_get(f"/files/{file_id}/content").content
        return [orjson.loads(line) for line in content.splitlines() if line.strip()]

    def submitted_custom_ids(self) -> list[str]:
        """Return the custom_id of every line of every batch's input file."""
        ids = []
        for batch in self.sim_batches():
            ids.extend(
                line["custom_id"]
                for line in self.sim_file_lines(batch["input_file_id"])
            )
        return ids


def _short_sleep(seconds: float) -> None:
    time.sleep(min(seconds, 0.05))


def write_products(path: Path, count: int, long_item: int | None = None) -> None:
    """Write `count` products; product number `long_item` gets a long description."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "name", "description"])
        writer.writeheader()
        for number in range(1, count + 1):
            description = f"Tool number {number} sorts tickets."
            if number == long_item:
                description = "A very long description. " * 400
            writer.writerow(
                {
                    "id": f"p{number:03d}",
                    "name": f"Tool {number}",
                    "description": description,
                }
            )


@pytest.fixture
def make_env(
    tmp_path: Path, batch_simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., BatchEnv]:
    """Return a factory of prepared jobs against the test's simulator."""
    monkeypatch.setenv(KEY_ENV, "sk-simulator")
    monkeypatch.delenv("BATCHKIT_BASE_URL", raising=False)

    def make(
        items: int = 10,
        *,
        max_lines: int = 50_000,
        max_bytes: int = 200_000_000,
        max_enqueued_tokens: int | None = None,
        long_item: int | None = None,
    ) -> BatchEnv:
        folder = tmp_path / "job"
        folder.mkdir()
        write_products(folder / "products.csv", items, long_item)
        token_line = (
            f"max_enqueued_tokens = {max_enqueued_tokens}\n"
            if max_enqueued_tokens
            else ""
        )
        (folder / "job.toml").write_text(
            JOB_TOML.format(
                base_url=batch_simulator.base_url,
                key_env=KEY_ENV,
                model=MODEL,
                max_lines=max_lines,
                max_bytes=max_bytes,
                token_line=token_line,
                template=TEMPLATE,
            ),
            encoding="utf-8",
        )
        job = load_job(folder / "job.toml")
        prepare_job(job, write_files=False)
        return BatchEnv(job, batch_simulator)

    return make


class _NotFoundHandler(BaseHTTPRequestHandler):
    """A handler that returns 404 for every path, like a server without a batch API."""

    def _answer(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"message": "File Not Found", "code": 404}}')

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_without_batches() -> Iterator[str]:
    """A server on 127.0.0.1 without a batch API; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFoundHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()
