"""The /_sim endpoints: statistics, log, settings at run time and reset."""

import json

import httpx
import openai
import pytest

from batchkit.simulate import SimulatorConfigError
from tests.simulate.helpers import chat_body, openai_client, raw_post, wait_for


def test_configure_changes_behaviour(simulator):
    with openai_client(simulator) as client:
        client.chat.completions.create(**chat_body("a"))
        config = simulator.configure(fault_rates={"500": 1.0})
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(**chat_body("b"))
    assert config["fault_rates"] == {"500": 1.0}
    assert simulator.stats()["by_status"] == {"200": 1, "500": 1}


def test_configure_rejects_bad_values(simulator):
    with pytest.raises(SimulatorConfigError, match="rpm"):
        simulator.configure(rpm=-1)
    with pytest.raises(SimulatorConfigError, match="only at start"):
        simulator.configure(port=1234)


def test_reset_clears_log_and_settings(simulator):
    simulator.configure(rpm=1)
    raw_post(simulator, "/v1/chat/completions", chat_body("[[sim:500 x1]]"))
    simulator.reset()
    reply = raw_post(simulator, "/v1/chat/completions", chat_body("[[sim:500 x1]]"))
    assert reply.status == 500
    assert simulator.log()[0]["status"] == 500
    assert len(simulator.log()) == 1
    assert simulator.stats()["requests"] == 1
    assert reply.header("x-ratelimit-limit-requests") is None


def test_log_offset(simulator):
    for text in ("a", "b", "c"):
        raw_post(simulator, "/v1/chat/completions", chat_body(text))
    with httpx.Client(trust_env=False) as http:
        entries = http.get(f"{simulator.root_url}/_sim/log?offset=2").json()
    assert len(entries) == 1
    assert entries[0] == simulator.log()[2]


def test_log_file_gets_every_entry(simulator_factory, tmp_path):
    path = tmp_path / "served.jsonl"
    server = simulator_factory(log_file=str(path), log_max_entries=2)
    for text in ("a", "b", "c"):
        raw_post(server, "/v1/chat/completions", chat_body(text))
    assert len(server.log()) == 2
    assert server.stats()["requests"] == 3

    def written() -> list[dict] | None:
        lines = path.read_text().splitlines()
        return [json.loads(line) for line in lines] if len(lines) == 3 else None

    # The server flushes the file every half second.
    entries = wait_for(written)
    assert [entry["status"] for entry in entries] == [200, 200, 200]


def test_stats_count_tokens(simulator):
    with openai_client(simulator) as client:
        response = client.chat.completions.create(**chat_body("hello"))
    tokens = simulator.stats()["tokens"]
    assert tokens["prompt"] == response.usage.prompt_tokens
    assert tokens["completion"] == response.usage.completion_tokens
