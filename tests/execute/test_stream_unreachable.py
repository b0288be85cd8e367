"""A run whose every connection fails stops instead of retrying each request."""

from pathlib import Path

import pytest

from batchkit.execute.select import Selection
from batchkit.execute.stream import StreamOptions, run_stream
from batchkit.localpg import free_port
from batchkit.providers.errors import EndpointUnreachableError, InvalidBaseURLError
from tests.execute.jobfiles import KEY_ENV, prepared_job


def test_unreachable_endpoint_stops_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-unused")
    closed = f"http://127.0.0.1:{free_port()}/v1"
    job = prepared_job(tmp_path, [f"prompt {n}" for n in range(60)], base_url=closed)
    with pytest.raises(EndpointUnreachableError) as raised:
        run_stream(job, Selection(), StreamOptions(handle_signals=False))
    assert "connection attempts failed and none succeeded" in str(raised.value)
    assert closed in str(raised.value)


def test_base_url_without_scheme_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-unused")
    job = prepared_job(tmp_path, ["hello"])
    options = StreamOptions(base_url="127.0.0.1:8000/v1", handle_signals=False)
    with pytest.raises(InvalidBaseURLError) as raised:
        run_stream(job, Selection(), options)
    assert "'127.0.0.1:8000/v1'" in str(raised.value)
    assert "must start with http://" in str(raised.value)
