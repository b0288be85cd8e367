"""The HTML report: self-contained, and rendered by a real headless Chromium."""

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from batchkit.analysis.report import write_report
from tests.analysis.runs import AnalysisRun, prepare_run, write_job

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep Chromium off the network and away from the user's profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
CHART_COUNT = 8  # 6 run charts + one output-length chart per stage (2 stages)
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs /usr/bin/chromium (Debian package chromium) to render the report",
)


@pytest.fixture(scope="module")
def report_path(
    analysis_run: AnalysisRun, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The scenario's report, written once for the module."""
    return write_report(analysis_run.job, tmp_path_factory.mktemp("report") / "r.html")


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium with a throwaway profile and return its output."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=120,
        check=True,
    )


def png_pixels(path: Path) -> bytes:
    """Return the decompressed image data of a PNG (filter bytes included)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    chunks = []
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return zlib.decompress(b"".join(chunks))


def test_report_is_self_contained(report_path: Path) -> None:
    page = report_path.read_text(encoding="utf-8")
    # Nothing is fetched when the page opens: no script or stylesheet by URL.
    # (plotly.js still names its CDN for map data, which these charts never load.)
    assert re.search(r"<script[^>]+src=", page) is None
    assert re.search(r"<link[^>]+href=", page) is None
    assert page.count('class="plotly-graph-div"') == CHART_COUNT
    assert '<table id="status">' in page


def test_report_tables(report_path: Path) -> None:
    page = report_path.read_text(encoding="utf-8")
    assert (
        "<tr><td>summary</td><td>4</td><td>0</td><td>1</td><td>1</td><td>1</td>"
        "<td>1</td>" in page
    )
    assert '<tr class="total"><td>total</td><td>8</td>' in page
    assert '<table id="latency">' in page
    for title in (
        "Attempts finished per",
        "Failed attempts by error type",
        "Latency of ok attempts",
        "Cost by stage",
        "Cost by day",
        "Rejects by reason",
        "Output length of summary results",
        "Output length of title results",
    ):
        assert title in page


def test_report_of_empty_run(tmp_path: Path) -> None:
    run = prepare_run(write_job(tmp_path))
    page = write_report(run.job, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert page.count('class="plotly-graph-div"') == CHART_COUNT
    assert "no data yet" in page


@needs_chromium
def test_report_renders_in_chromium(report_path: Path, tmp_path: Path) -> None:
    dom = run_chromium(tmp_path, "--dump-dom", report_path.as_uri()).stdout.decode(
        "utf-8"
    )
    # plotly.js adds js-plotly-plot and draws main-svg only when it runs.
    assert dom.count("plotly-graph-div js-plotly-plot") == CHART_COUNT
    assert dom.count('class="main-svg"') >= CHART_COUNT
    assert "Rejects by reason" in dom


@needs_chromium
def test_report_screenshot_not_blank(report_path: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    run_chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1400,2400",
        report_path.as_uri(),
    )
    pixels = png_pixels(shot)
    blank = tmp_path / "blank.png"
    blank_page = tmp_path / "blank.html"
    blank_page.write_text("<html><body></body></html>", encoding="utf-8")
    run_chromium(
        tmp_path,
        f"--screenshot={blank}",
        "--window-size=1400,2400",
        blank_page.as_uri(),
    )
    # A white page compresses to almost nothing and uses few byte values.
    assert len(set(pixels)) > 100
    assert shot.stat().st_size > 5 * blank.stat().st_size
