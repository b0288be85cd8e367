"""Write and prepare small stream jobs whose prompts can carry simulator markers."""

import csv
from pathlib import Path

from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.prepare.run import prepare_job

KEY_ENV = "BATCHKIT_TEST_API_KEY"
# The simulator's default key; tests that check for leaks use their own.
SIMULATOR_KEY = "sk-simulator"

_JOB = """
[job]
name = "stream"
run_dir = "run"

[inputs]
prompts = "prompts.csv"

[items]
query = "SELECT id, prompt FROM prompts"
key = ["id"]

[provider]
name = "simulator"
base_url = "{base_url}"
model = "{model}"
api_key_env = "{key_env}"
rpm = {rpm}
concurrency = {concurrency}
connect_timeout = 5
read_timeout = {read_timeout}
deadline = {deadline}
max_attempts = {max_attempts}
{tpm_line}

[[stages]]
name = "doc"
messages = [{{ role = "user", text = "{{{{ item.prompt }}}}" }}]
max_tokens = {max_tokens}

[stages.validate]
min_chars = 1
finish_reason = "stop"

[[prices]]
model = "{model}"
since = 2025-01-01
input_miss = 1.0
input_hit = 0.1
output = 2.0
{windows_line}
"""


def write_job(
    folder: Path,
    prompts: list[str],
    *,
    base_url: str = "http://127.0.0.1:9/v1",
    rpm: int = 60_000,
    tpm: int | None = None,
    concurrency: int = 32,
    read_timeout: float = 10.0,
    deadline: float = 20.0,
    max_attempts: int = 5,
    max_tokens: int = 1000,
    key_env: str = KEY_ENV,
    model: str = "deepseek-chat",
    windows: str | None = None,
) -> Path:
    """Write job.toml and prompts.csv, one item per prompt, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "prompts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt"])
        for number, prompt in enumerate(prompts, start=1):
            writer.writerow([f"{number:04d}", prompt])
    text = _JOB.format(
        base_url=base_url,
        key_env=key_env,
        model=model,
        windows_line=f"windows = {windows}" if windows else "",
        rpm=rpm,
        concurrency=concurrency,
        read_timeout=read_timeout,
        deadline=deadline,
        max_attempts=max_attempts,
        max_tokens=max_tokens,
        tpm_line=f"tpm = {tpm}" if tpm else "",
    )
    path = folder / "job.toml"
    path.write_text(text, encoding="utf-8")
    return path


def prepared_job(folder: Path, prompts: list[str], **options: object) -> Job:
    """Write a job, run prepare on it (no batch files) and return it."""
    job = load_job(write_job(folder, prompts, **options))  # type: ignore[arg-type]
    prepare_job(job, write_files=False)
    return job
