"""Files and batches through the official OpenAI SDK."""

import json

import openai
import pytest

from batchkit.simulate import SimulatorConfig
from batchkit.simulate.batches import parse_input_file
from tests.simulate.helpers import openai_client, wait_for

FINAL = ("completed", "failed", "expired", "cancelled")


def batch_line(custom_id: str, content: str | None = None, **body: object) -> str:
    """Return one batch input line as JSON text."""
    message = {"role": "user", "content": content or f"Write about {custom_id}."}
    return json.dumps(
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "deepseek-chat", "messages": [message], **body},
        }
    )


def batch_file(count: int) -> bytes:
    return "".join(batch_line(f"item-{i}") + "\n" for i in range(count)).encode()


def upload(client: openai.OpenAI, data: bytes) -> str:
    return client.files.create(file=("input.jsonl", data), purpose="batch").id


def run_batch(
    client: openai.OpenAI, data: bytes, metadata: dict[str, str] | None = None
):
    batch = client.batches.create(
        input_file_id=upload(client, data),
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata,
    )
    return wait_until_final(client, batch.id)


def wait_until_final(client: openai.OpenAI, batch_id: str):
    def final():
        batch = client.batches.retrieve(batch_id)
        return batch if batch.status in FINAL else None

    return wait_for(final)


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines()]


def test_batch_round_trip(simulator):
    with openai_client(simulator) as client:
        batch = run_batch(client, batch_file(30), metadata={"job": "demo"})
        lines = read_lines(client, batch.output_file_id)
    ids = [line["custom_id"] for line in lines]
    first = lines[0]
    assert batch.status == "completed"
    assert batch.request_counts.total == 30
    assert batch.request_counts.completed == 30
    assert batch.request_counts.failed == 0
    assert batch.error_file_id is None
    assert batch.metadata == {"job": "demo"}
    assert batch.in_progress_at is not None
    assert batch.finalizing_at is not None
    assert batch.completed_at is not None
    assert sorted(ids) == sorted(f"item-{i}" for i in range(30))
    assert ids != [f"item-{i}" for i in range(30)]
    assert first["response"]["status_code"] == 200
    assert first["response"]["request_id"].startswith("req_")
    assert first["error"] is None
    assert first["response"]["body"]["choices"][0]["message"]["content"]
    assert batch.usage.output_tokens > 0
    assert simulator.stats()["by_source"] == {"batch": 30}


def test_batch_line_matches_direct_answer(simulator):
    with openai_client(simulator) as client:
        batch = run_batch(client, (batch_line("one", "Say hello.") + "\n").encode())
        [line] = read_lines(client, batch.output_file_id)
        direct = client.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "Say hello."}]
        )
    body = line["response"]["body"]
    assert body["choices"][0]["message"]["content"] == direct.choices[0].message.content


def test_batch_statuses_progress(simulator):
    with openai_client(simulator) as client:
        batch = client.batches.create(
            input_file_id=upload(client, batch_file(6)),
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"sim_lines_per_second": "20"},
        )
        seen = {batch.status}

        def done():
            current = client.batches.retrieve(batch.id)
            seen.add(current.status)
            return current.status in FINAL

        wait_for(done)
    assert batch.status == "validating"
    assert "in_progress" in seen
    assert "completed" in seen


def test_batch_cancel_delivers_finished_lines(simulator):
    with openai_client(simulator) as client:
        batch = client.batches.create(
            input_file_id=upload(client, batch_file(50)),
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"sim_lines_per_second": "40"},
        )
        wait_for(
            lambda: client.batches.retrieve(batch.id).request_counts.completed >= 3
        )
        cancelling = client.batches.cancel(batch.id)
        final = wait_until_final(client, batch.id)
        done = read_lines(client, final.output_file_id)
        errors = read_lines(client, final.error_file_id)
    assert cancelling.status == "cancelling"
    assert final.status == "cancelled"
    assert final.cancelled_at is not None
    assert len(done) == final.request_counts.completed
    assert len(done) + len(errors) == 50
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    assert all(line["response"] is None for line in errors)


def test_cancel_finished_batch_is_409(simulator):
    with openai_client(simulator) as client:
        batch = run_batch(client, batch_file(1))
        with pytest.raises(openai.ConflictError):
            client.batches.cancel(batch.id)


def test_batch_expires_after_lines(simulator):
    with openai_client(simulator) as client:
        batch = run_batch(client, batch_file(10), metadata={"sim_expire_after": "4"})
        done = read_lines(client, batch.output_file_id)
        errors = read_lines(client, batch.error_file_id)
    assert batch.status == "expired"
    assert batch.expired_at is not None
    assert batch.request_counts.completed == 4
    assert len(done) == 4
    assert len(errors) == 6
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}


def test_batch_fails_given_lines(simulator):
    metadata = {"sim_fail_lines": "item-1, item-3"}
    with openai_client(simulator) as client:
        batch = run_batch(client, batch_file(5), metadata=metadata)
        errors = read_lines(client, batch.error_file_id)
    assert batch.status == "completed"
    assert batch.request_counts.failed == 2
    assert sorted(line["custom_id"] for line in errors) == ["item-1", "item-3"]
    assert errors[0]["response"]["status_code"] == 500
    assert errors[0]["error"]["code"] == "server_error"
    assert simulator.stats()["by_error"] == {"batch_failed_line": 2}


def test_all_failed_batch_has_no_output_file(simulator):
    metadata = {"sim_fail_lines": "item-0,item-1"}
    with openai_client(simulator) as client:
        batch = run_batch(client, batch_file(2), metadata=metadata)
    assert batch.status == "completed"
    assert batch.output_file_id is None
    assert batch.error_file_id is not None


def test_batch_marker_faults_per_line(simulator):
    data = (
        batch_line("bad", "[[sim:503]] hi")
        + "\n"
        + batch_line("cut", "[[sim:length]] hi", max_tokens=20)
        + "\n"
        + batch_line("fine", "hi")
        + "\n"
    ).encode()
    with openai_client(simulator) as client:
        batch = run_batch(client, data)
        done = {
            line["custom_id"]: line for line in read_lines(client, batch.output_file_id)
        }
        [error] = read_lines(client, batch.error_file_id)
    cut = done["cut"]["response"]["body"]["choices"][0]
    assert error["custom_id"] == "bad"
    assert error["response"]["status_code"] == 503
    assert cut["finish_reason"] == "length"
    assert set(done) == {"cut", "fine"}


def test_batch_whole_failure_token_limit(simulator):
    metadata = {"sim_fail_batch": "token_limit_exceeded"}
    with openai_client(simulator) as client:
        batch = run_batch(client, batch_file(3), metadata=metadata)
    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.errors.data[0].code == "token_limit_exceeded"
    assert batch.output_file_id is None


def test_enqueued_token_limit_fails_batch(simulator_factory):
    server = simulator_factory(batch_token_limit=50, batch_lines_per_second=1)
    data = "".join(batch_line(f"i{n}", max_tokens=20) + "\n" for n in range(3))
    with openai_client(server) as client:
        batch = run_batch(client, data.encode())
    assert batch.status == "failed"
    assert batch.errors.data[0].code == "token_limit_exceeded"


def test_dropped_line_missing_from_files(simulator):
    metadata = {"sim_drop_output_lines": "item-2"}
    with openai_client(simulator) as client:
        batch = run_batch(client, batch_file(4), metadata=metadata)
        ids = {line["custom_id"] for line in read_lines(client, batch.output_file_id)}
    assert batch.request_counts.completed == 4
    assert ids == {"item-0", "item-1", "item-3"}


def test_duplicate_custom_id_fails_validation(simulator):
    data = (batch_line("same") + "\n" + batch_line("same") + "\n").encode()
    with openai_client(simulator) as client:
        batch = run_batch(client, data)
    [error] = batch.errors.data
    assert batch.status == "failed"
    assert error.code == "duplicate_custom_id"
    assert error.line == 2


def test_line_limit_fails_validation(simulator_factory):
    server = simulator_factory(batch_max_lines=3)
    with openai_client(server) as client:
        batch = run_batch(client, batch_file(4))
    assert batch.status == "failed"
    assert batch.errors.data[0].code == "too_many_lines"


def test_byte_limit_fails_validation(simulator_factory):
    server = simulator_factory(batch_max_bytes=200)
    with openai_client(server) as client:
        batch = run_batch(client, batch_file(4))
    assert batch.status == "failed"
    assert batch.errors.data[0].code == "file_too_large"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("not json", "invalid_json_line"),
        ('{"method": "POST"}', "missing_custom_id"),
        (batch_line("x").replace('"POST"', '"GET"'), "invalid_method"),
        (
            batch_line("x").replace("/v1/chat/completions", "/v1/embeddings"),
            "invalid_url",
        ),
    ],
)
def test_invalid_line_codes(line, code):
    lines, errors, _ = parse_input_file(line.encode() + b"\n", SimulatorConfig())
    assert lines == []
    assert errors[0]["code"] == code
    assert errors[0]["line"] == 1


def test_mixed_models_fail_validation():
    data = batch_line("a") + "\n" + batch_line("b", model="other") + "\n"
    _, errors, _ = parse_input_file(data.encode(), SimulatorConfig())
    assert [error["code"] for error in errors] == ["mismatched_model"]


def test_batch_list_pages(simulator):
    with openai_client(simulator) as client:
        file_id = upload(client, batch_file(1))
        created = [
            client.batches.create(
                input_file_id=file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
            ).id
            for _ in range(3)
        ]
        first = client.batches.list(limit=2)
        rest = client.batches.list(limit=2, after=first.data[-1].id)
        every = [batch.id for batch in client.batches.list(limit=2)]
    assert [b.id for b in first.data] == created[::-1][:2]
    assert first.has_more is True
    assert rest.data[0].id == created[0]
    assert set(created) <= set(every)


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"completion_window": "1h"}, "completion_window"),
        ({"endpoint": "/v1/embeddings"}, "endpoint"),
        ({"input_file_id": "file-missing"}, "input_file_id"),
        ({"metadata": {"sim_expire_after": "soon"}}, "metadata.sim_expire_after"),
    ],
)
def test_batch_create_rejects_bad_params(simulator, changes, param):
    with openai_client(simulator) as client:
        params = {
            "input_file_id": upload(client, batch_file(1)),
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            **changes,
        }
        with pytest.raises(openai.BadRequestError) as caught:
            client.batches.create(**params)
    assert caught.value.body["param"] == param


def test_files_list_get_delete(simulator):
    with openai_client(simulator) as client:
        file_id = upload(client, b'{"a": 1}\n')
        listed = [f.id for f in client.files.list(purpose="batch")]
        fetched = client.files.retrieve(file_id)
        content = client.files.content(file_id).content
        deleted = client.files.delete(file_id)
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)
    assert file_id in listed
    assert fetched.bytes == 9
    assert fetched.purpose == "batch"
    assert fetched.filename == "input.jsonl"
    assert content == b'{"a": 1}\n'
    assert deleted.deleted is True


def test_upload_rejects_bad_purpose(simulator):
    with (
        openai_client(simulator) as client,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        client.files.create(file=("x.jsonl", b"{}"), purpose="batch_output")
    assert caught.value.body["param"] == "purpose"
