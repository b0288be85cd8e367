"""Time `prepare` on 62,000 synthetic requests: a first run and an unchanged rerun.

The job has 487 products × 32 templates = 15,584 items and four independent
stages with request lines of about 2.8 KB, the size of the target: 62,000
requests rendered and stored in under 10 s on 2 cores.
"""

import csv
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from batchkit.job.loader import load_job
from batchkit.prepare.run import PrepareSummary, prepare_job
from batchkit.store.database import connect

PRODUCTS = 487
TEMPLATES = 32
STAGES = 4
TARGET_SECONDS = 10.0

_WORDS = [
    *("model", "agent", "workflow", "latency", "dataset", "pipeline", "embedding"),
    *("retrieval", "customer", "pricing", "dashboard", "security", "compliance"),
    *("analytics", "integration", "platform", "team", "roadmap", "feedback"),
    *("inference", "quality", "evaluation", "prompt", "deployment", "schema"),
]

_STAGE = """
[[stages]]
name = "{name}"
messages = [
    {{ role = "system", text = "{system}" }},
    {{ role = "user", file = "user.j2" }},
]
max_tokens = 2000
"""

_USER_TEMPLATE = """Write the {{{{ item.template_name }}}} for the product below.

Instructions:
{{{{ item.template_prompt }}}}

Product:
- Name: {{{{ item.product_name }}}}
- Category: {{{{ item.product_category }}}}
- Description: {{{{ item.product_description }}}}
- Website: {{{{ item.product_url or "none listed" }}}}
Stage: {stage}
"""


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _write_inputs(directory: Path, rng: random.Random) -> None:
    with (directory / "products.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "description", "category", "url"])
        for number in range(PRODUCTS):
            description = " ".join(_sentence(rng, 14) for _ in range(4))
            url = f"https://example.com/p{number}"
            writer.writerow(
                [f"p{number:04d}", f"Product {number}", description, "AI", url]
            )
    with (directory / "templates.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "prompt"])
        for number in range(TEMPLATES):
            prompt = " ".join(_sentence(rng, 16) for _ in range(10))
            writer.writerow([f"t{number:02d}", f"Template {number}", prompt])


def write_job(directory: Path) -> Path:
    """Write the synthetic job (inputs, template, job file) into `directory`."""
    rng = random.Random(62_000)
    _write_inputs(directory, rng)
    (directory / "user.j2").write_text(
        _USER_TEMPLATE.format(stage="{{ stage }}"), encoding="utf-8"
    )
    system = " ".join(_sentence(rng, 12) for _ in range(5))
    stages = "".join(
        _STAGE.format(name=f"stage{number}", system=system) for number in range(STAGES)
    )
    job = f"""
[job]
name = "bench"
run_dir = "run"

[inputs]
products = "products.csv"
templates = "templates.csv"

[items]
query = '''
SELECT p.id AS product_id, p.name AS product_name,
       p.description AS product_description, p.category AS product_category,
       p.url AS product_url, t.id AS template_id, t.name AS template_name,
       t.prompt AS template_prompt
FROM products p CROSS JOIN templates t
'''
key = ["product_id", "template_id"]

[provider]
model = "bench-model"
{stages}
[[prices]]
model = "bench-model"
since = 2025-01-01
input_miss = 0.5
output = 2.0
"""
    path = directory / "job.toml"
    path.write_text(job, encoding="utf-8")
    return path


def _time_run(job_path: Path, write_files: bool) -> tuple[float, PrepareSummary]:
    job = load_job(job_path)
    start = time.perf_counter()
    summary = prepare_job(job, write_files=write_files)
    return time.perf_counter() - start, summary


def _mean_line_bytes(job_path: Path) -> float:
    with connect(load_job(job_path), read_only=True) as connection:
        row = connection.execute("SELECT avg(line_bytes) FROM requests").fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _print(label: str, seconds: float) -> None:
    print(f"{label:<44} {seconds:6.2f} s  (target < {TARGET_SECONDS:.0f} s)")


def run() -> None:
    """Print the times of a first run, a rerun and a run with files, and the target."""
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-") as name:
        first_dir, second_dir = Path(name) / "a", Path(name) / "b"
        first_dir.mkdir()
        second_dir.mkdir()
        job_path = write_job(first_dir)
        seconds, summary = _time_run(job_path, write_files=False)
        added = sum(counts.added for counts in summary.stages.values())
        rerun, _ = _time_run(job_path, write_files=False)
        line_bytes = _mean_line_bytes(job_path)
        with_files, _ = _time_run(write_job(second_dir), write_files=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{PRODUCTS * TEMPLATES:,} items x {STAGES} stages, mean request line "
        f"{line_bytes:,.0f} bytes, {os.cpu_count()} cores"
    )
    _print(f"render and store {added:,} requests", seconds)
    _print("unchanged rerun (adds nothing)", rerun)
    _print("first run including batch files", with_files)
    print(f"peak memory of the benchmark process: {peak_mb:,.0f} MB")
