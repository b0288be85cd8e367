"""Rate caps: 429s with their headers, the windows, and padding over a cap."""

import json
import threading

import openai
import pytest

from batchkit.simulate.limits import format_duration
from tests.simulate.helpers import chat_body, openai_client, raw_post, wait_for


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (0.0004, "1ms"),
        (6, "6s"),
        (5.2, "6s"),
        (90, "1m30s"),
        (89.998, "1m30s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_rpm_cap_429_with_headers(simulator_factory):
    server = simulator_factory(rpm=2)
    with openai_client(server) as client:
        first = client.chat.completions.with_raw_response.create(**chat_body("a"))
        client.chat.completions.create(**chat_body("b"))
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.with_raw_response.create(**chat_body("c"))
    headers = caught.value.response.headers
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert caught.value.status_code == 429
    assert 59 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] in ("59s", "1m0s")
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert caught.value.body["type"] == "requests"


def test_rejected_requests_not_counted(simulator_factory):
    server = simulator_factory(rpm=1)
    with openai_client(server) as client:
        client.chat.completions.create(**chat_body("a"))
        for _ in range(3):
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(**chat_body("b"))
    stats = server.stats()
    log = server.log()
    assert stats["admitted"] == 1
    assert stats["by_status"] == {"200": 1, "429": 3}
    assert stats["by_error"] == {"rate_limit_requests": 3}
    assert [entry["status"] for entry in log] == [200, 429, 429, 429]


def test_short_window_frees_requests(simulator_factory):
    server = simulator_factory(rpm=1, window_seconds=0.3)
    with openai_client(server) as client:
        client.chat.completions.create(**chat_body("a"))
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(**chat_body("b"))

        def is_admitted() -> bool:
            try:
                client.chat.completions.create(**chat_body("b"))
            except openai.RateLimitError:
                return False
            return True

        wait_for(is_admitted, timeout=5, interval=0.05)
    assert server.stats()["admitted"] == 2


def test_tpm_429_reset_tokens_only(simulator_factory):
    server = simulator_factory(tpm=100, window_seconds=90, retry_after=False)
    body = chat_body("hi", max_tokens=60)
    with openai_client(server) as client:
        client.chat.completions.create(**body)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(**body)
    headers = caught.value.response.headers
    assert "retry-after" not in headers
    assert "x-ratelimit-limit-requests" not in headers
    assert headers["x-ratelimit-reset-tokens"] == "1m30s"
    assert headers["x-ratelimit-limit-tokens"] == "100"
    assert int(headers["x-ratelimit-remaining-tokens"]) < 60
    assert caught.value.body["type"] == "tokens"
    assert server.stats()["by_error"] == {"rate_limit_tokens": 1}


def test_tpm_counts_answer_without_max_tokens(simulator_factory):
    server = simulator_factory(tpm=10_000)
    with openai_client(server) as client:
        response = client.chat.completions.with_raw_response.create(
            **chat_body("Write 2,000-3,000 characters.")
        )
    usage = response.parse().usage
    remaining = int(response.headers["x-ratelimit-remaining-tokens"])
    assert remaining == 10_000 - usage.total_tokens


def test_request_over_tpm_is_too_large(simulator_factory):
    server = simulator_factory(tpm=50)
    with (
        openai_client(server) as client,
        pytest.raises(openai.RateLimitError) as caught,
    ):
        client.chat.completions.create(**chat_body("hi", max_tokens=100))
    assert "too large" in caught.value.body["message"]


def test_concurrency_cap_429(simulator_factory):
    server = simulator_factory(concurrency=1)
    hung = threading.Thread(
        target=raw_post,
        args=(server, "/v1/chat/completions", chat_body("[[sim:hang 1s]]")),
        kwargs={"timeout": 5},
    )
    hung.start()
    try:
        wait_for(lambda: server.stats()["in_flight"] == 1)
        reply = raw_post(server, "/v1/chat/completions", chat_body("next"))
    finally:
        hung.join()
    assert reply.status == 429
    assert reply.header("Retry-After") == "1"
    assert server.stats()["by_error"] == {"fault": 1, "concurrency": 1}
    assert server.stats()["max_in_flight"] == 1


def test_over_cap_pads_until_room(simulator_factory):
    server = simulator_factory(
        rpm=1, window_seconds=0.5, over_cap="pad", pad_interval=0.05
    )
    raw_post(server, "/v1/chat/completions", chat_body("first"))
    reply = raw_post(server, "/v1/chat/completions", chat_body("second"))
    payload = reply.payload
    assert reply.status == 200
    assert payload.startswith(b"\n")
    assert json.loads(payload)["object"] == "chat.completion"
    assert server.stats()["by_status"] == {"200": 2}
    assert server.stats()["padded"] == 1


def test_pad_mode_still_rejects_too_large(simulator_factory):
    server = simulator_factory(tpm=50, over_cap="pad")
    reply = raw_post(server, "/v1/chat/completions", chat_body("hi", max_tokens=100))
    assert reply.status == 429
    assert "too large" in json.loads(reply.body)["error"]["message"]


def test_stats_windows(simulator_factory):
    server = simulator_factory()
    with openai_client(server) as client:
        for text in ("a", "b", "c"):
            client.chat.completions.create(**chat_body(text))
    stats = server.stats()
    assert stats["per_minute"] == [3]
    assert stats["max_per_60s"] == 3
    assert stats["max_per_second"] >= 1


def test_duplicate_bodies_counted(simulator):
    with openai_client(simulator) as client:
        for _ in range(3):
            client.chat.completions.create(**chat_body("same"))
        client.chat.completions.create(**chat_body("other"))
    assert simulator.stats()["duplicates_ok"] == 2
