"""Base URL precedence and API key lookup, with the key kept out of repr."""

from pathlib import Path

import pytest

from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.providers.endpoint import BASE_URL_ENV, resolve_endpoint
from batchkit.providers.errors import MissingAPIKeyError
from tests.execute.jobfiles import KEY_ENV, write_job

JOB_URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return load_job(write_job(tmp_path / "job", ["a"], base_url=JOB_URL))


def test_base_url_precedence(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-x")
    assert resolve_endpoint(job).base_url == JOB_URL
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:7/v1/")
    assert resolve_endpoint(job).base_url == "http://127.0.0.1:7/v1"
    argument = resolve_endpoint(job, "http://127.0.0.1:8/v1")
    assert argument.base_url == "http://127.0.0.1:8/v1"


def test_key_from_environment(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-from-env")
    endpoint = resolve_endpoint(job)
    assert endpoint.api_key == "sk-from-env"
    assert endpoint.key_env == KEY_ENV


def test_key_from_dotenv_beside_job(job: Job) -> None:
    (job.path.parent / ".env").write_text(f'{KEY_ENV}="sk-from-dotenv"\n')
    assert resolve_endpoint(job).api_key == "sk-from-dotenv"


@pytest.mark.parametrize("value", [None, ""])
def test_missing_key_names_variable(
    job: Job, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(MissingAPIKeyError) as caught:
        resolve_endpoint(job)
    message = str(caught.value)
    assert KEY_ENV in message
    assert f"export {KEY_ENV}=" in message
    assert ".env" in message
    assert not caught.value.is_retryable


def test_key_not_in_repr_or_str(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-secret-value-123")
    endpoint = resolve_endpoint(job)
    assert "sk-secret-value-123" not in repr(endpoint)
    assert "sk-secret-value-123" not in str(endpoint)
    assert "sk-secret-value-123" not in f"{endpoint}"
