"""Faults, padding and latency as a client sees them on the wire."""

import contextlib
import json
import math
import time

import httpx
import openai
import pytest

from batchkit.simulate.faults import (
    Marker,
    MarkerError,
    parse_markers,
    plan_from_markers,
    plan_from_rates,
)
from tests.simulate.helpers import chat_body, openai_client, raw_post

CHAT = "/v1/chat/completions"


def test_parse_markers():
    prompt = "Text [[sim:500 x2]] more [[sim:pad 1.5s]] [[sim:hang forever x1]]"
    assert parse_markers(prompt) == [
        Marker("500", 2, None),
        Marker("pad", None, 1.5),
        Marker("hang", 1, math.inf),
    ]


@pytest.mark.parametrize(
    "marker", ["[[sim:]]", "[[sim:boom]]", "[[sim:500 2]]", "[[sim:500 3s]]"]
)
def test_parse_markers_rejects_bad(marker):
    with pytest.raises(MarkerError):
        parse_markers(marker)


def test_markers_take_turns():
    markers = parse_markers("[[sim:drop x1]][[sim:503 x2]][[sim:ok x1]][[sim:length]]")
    faults = [plan_from_markers(markers, arrival).fault for arrival in range(1, 7)]
    assert faults == ["drop", "503", "503", None, "length", "length"]


def test_counted_marker_ends_in_success():
    markers = parse_markers("[[sim:500 x2]]")
    faults = [plan_from_markers(markers, arrival).fault for arrival in range(1, 5)]
    assert faults == ["500", "500", None, None]


def test_rates_pick_each_kind_in_order():
    rates = {"500": 0.1, "drop": 0.2}
    assert plan_from_rates(rates, 0.0, 0.05, 0.9).fault == "500"
    assert plan_from_rates(rates, 0.0, 0.15, 0.9).fault == "drop"
    assert plan_from_rates(rates, 0.0, 0.5, 0.9).fault is None
    assert plan_from_rates(rates, 0.5, 0.5, 0.1).is_padded


def test_drop_sends_no_status_line(simulator):
    reply = raw_post(simulator, CHAT, chat_body("[[sim:drop]]"))
    assert reply.data == b""
    assert not reply.is_timed_out
    assert simulator.log()[0]["status"] is None
    assert simulator.stats()["by_fault"] == {"drop": 1}


def test_drop_through_sdk_is_connection_error(simulator):
    with openai_client(simulator) as client, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(**chat_body("[[sim:drop]]"))


def test_truncate_cuts_body_under_content_length(simulator):
    reply = raw_post(simulator, CHAT, chat_body("[[sim:truncate]]"))
    length = int(reply.header("Content-Length"))
    assert reply.status == 200
    assert 0 < len(reply.body) < length
    assert len(reply.body) == length // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)


def test_truncate_through_httpx_is_protocol_error(simulator):
    headers = {"Authorization": f"Bearer {simulator.api_key}"}
    with (
        httpx.Client(trust_env=False) as http,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        http.post(
            f"{simulator.base_url}/chat/completions",
            json=chat_body("[[sim:truncate]]"),
            headers=headers,
        )


def test_truncate_stream_has_no_done(simulator):
    reply = raw_post(simulator, CHAT, chat_body("[[sim:truncate]]", stream=True))
    assert reply.status == 200
    assert b"data: {" in reply.payload
    assert b"[DONE]" not in reply.payload


def test_hang_sends_nothing_until_timeout(simulator):
    started = time.monotonic()
    reply = raw_post(simulator, CHAT, chat_body("[[sim:hang]]"), timeout=0.5)
    assert reply.is_timed_out
    assert reply.data == b""
    assert time.monotonic() - started >= 0.5
    assert simulator.stats()["by_fault"] == {"hang": 1}


def test_hang_with_duration_closes_after_it(simulator):
    reply = raw_post(simulator, CHAT, chat_body("[[sim:hang 200ms]]"), timeout=5)
    assert not reply.is_timed_out
    assert reply.data == b""


def test_hang_through_sdk_times_out(simulator):
    with (
        openai_client(simulator, timeout=0.3) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(**chat_body("[[sim:hang]]"))


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        ("500", 500, "application/json"),
        ("502", 502, "text/html"),
        ("503", 503, "application/json"),
        ("429", 429, "application/json"),
    ],
)
def test_status_faults(simulator, fault, status, content_type):
    reply = raw_post(simulator, CHAT, chat_body(f"[[sim:{fault}]]"))
    assert reply.status == status
    assert reply.header("Content-Type").startswith(content_type)
    if content_type == "application/json":
        assert set(json.loads(reply.body)["error"]) == {
            "message",
            "type",
            "param",
            "code",
        }
    assert simulator.stats()["by_status"] == {str(status): 1}
    assert simulator.stats()["by_fault"] == {fault: 1}


@pytest.mark.parametrize(
    ("marker", "status"),
    [
        ("500", 500),
        ("502", 502),
        ("503", 503),
        ("429", 429),
        ("drop", None),
        ("truncate", 200),
        ("hang 50ms", None),
        ("length", 200),
        ("content_filter", 200),
        ("empty", 200),
    ],
)
def test_log_records_each_fault(simulator, marker, status):
    raw_post(simulator, CHAT, chat_body(f"[[sim:{marker}]]"))
    fault = marker.split()[0]
    [entry] = simulator.log()
    stats = simulator.stats()
    assert entry["fault"] == fault
    assert entry["status"] == status
    assert stats["by_fault"] == {fault: 1}
    assert stats["by_status"] == {str(status) if status else "none": 1}


def test_fault_429_not_counted(simulator_factory):
    server = simulator_factory(rpm=5)
    reply = raw_post(server, CHAT, chat_body("[[sim:429]]"))
    assert reply.status == 429
    assert reply.header("Retry-After") == "1"
    assert server.stats()["admitted"] == 0


def test_500_twice_then_success_through_sdk(simulator):
    with openai_client(simulator, max_retries=2) as client:
        response = client.chat.completions.create(**chat_body("[[sim:500 x2]] Hi"))
    statuses = [entry["status"] for entry in simulator.log()]
    assert response.choices[0].finish_reason == "stop"
    assert statuses == [500, 500, 200]
    assert len({entry["body_hash"] for entry in simulator.log()}) == 1


def test_length_fault_cuts_at_max_tokens(simulator):
    with openai_client(simulator) as client:
        response = client.chat.completions.create(
            **chat_body("[[sim:length]] Say hi.", max_tokens=300)
        )
    assert response.choices[0].finish_reason == "length"
    assert 295 <= response.usage.completion_tokens <= 300


def test_content_filter_fault_has_null_content(simulator):
    with openai_client(simulator) as client:
        response = client.chat.completions.create(**chat_body("[[sim:content_filter]]"))
    assert response.choices[0].finish_reason == "content_filter"
    assert response.choices[0].message.content is None


def test_empty_fault_has_empty_content(simulator):
    with openai_client(simulator) as client:
        response = client.chat.completions.create(**chat_body("[[sim:empty]]"))
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.content == ""
    assert response.usage.completion_tokens == 0


def test_pad_sends_blank_lines_then_json(simulator):
    reply = raw_post(simulator, CHAT, chat_body("[[sim:pad 300ms]]"))
    payload = reply.payload
    blank = len(payload) - len(payload.lstrip(b"\n"))
    assert reply.status == 200
    assert blank >= 1
    assert json.loads(payload)["choices"][0]["finish_reason"] == "stop"
    assert simulator.log()[0]["padded"] is True


def test_pad_through_sdk_still_parses(simulator_factory):
    server = simulator_factory(pad_interval=0.05)
    with openai_client(server) as client:
        response = client.chat.completions.create(**chat_body("[[sim:pad 200ms]] Hi"))
    assert response.choices[0].message.content


def test_pad_stream_sends_keep_alive_comments(simulator_factory):
    server = simulator_factory(pad_interval=0.05)
    reply = raw_post(server, CHAT, chat_body("[[sim:pad 200ms]]", stream=True))
    payload = reply.payload
    assert payload.startswith(b": keep-alive\n\n")
    assert payload.count(b": keep-alive") >= 2
    assert payload.endswith(b"data: [DONE]\n\n")


def test_pad_forever_never_sends_body(simulator_factory):
    server = simulator_factory(pad_interval=0.05)
    reply = raw_post(server, CHAT, chat_body("[[sim:pad forever]]"), timeout=0.6)
    assert reply.is_timed_out
    assert reply.status == 200
    assert reply.payload.strip(b"\n") == b""
    assert reply.payload.count(b"\n") >= 3


def test_pad_forever_setting_with_pad_rate(simulator_factory):
    # A read timeout never fires here, because every blank line resets it.
    # Only a deadline on the whole request ends it, as the raw client's does.
    server = simulator_factory(pad_rate=1.0, pad_forever=True, pad_interval=0.05)
    reply = raw_post(server, CHAT, chat_body("Hi"), timeout=0.5)
    assert reply.is_timed_out
    assert reply.status == 200
    assert server.stats()["padded"] == 1


def test_fault_rates_reproducible_with_seed(simulator_factory):
    outcomes = []
    for _ in range(2):
        server = simulator_factory(seed=7, fault_rates={"500": 0.3, "503": 0.2})
        with openai_client(server) as client:
            for index in range(40):
                with contextlib.suppress(openai.InternalServerError):
                    client.chat.completions.create(**chat_body(f"q{index}"))
        outcomes.append([entry["status"] for entry in server.log()])
    counts = {status: outcomes[0].count(status) for status in (200, 500, 503)}
    assert outcomes[0] == outcomes[1]
    assert counts[500] >= 4
    assert counts[503] >= 2
    assert counts[200] >= 12


def test_latency_and_time_scale(simulator_factory):
    server = simulator_factory(latency_ms=2000, latency_sigma=0, time_scale=0.1)
    with openai_client(server) as client:
        started = time.monotonic()
        client.chat.completions.create(**chat_body("Hi"))
        elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.5


def test_token_time_slows_stream(simulator_factory):
    server = simulator_factory(token_ms=1, stream_chunk_tokens=8)
    with openai_client(server) as client:
        started = time.monotonic()
        chunks = list(
            client.chat.completions.create(
                **chat_body("Write 2,000-2,400 characters."),
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        elapsed = time.monotonic() - started
    tokens = chunks[-1].usage.completion_tokens
    assert elapsed >= tokens * 0.001 * 0.9
