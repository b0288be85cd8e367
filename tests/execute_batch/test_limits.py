"""Line, byte and token limits of uploaded files, oversized requests, duplicates."""

import pytest

from batchkit.execute.batch.errors import BatchFileError
from batchkit.execute.batch.files import BatchFileWriter, line_size
from batchkit.execute.select import PendingRequest
from batchkit.job.model import BatchLimits


def _request(custom_id, model="m", text="x", tokens=10, max_tokens=100):
    line = (
        f'{{"custom_id": "{custom_id}", "body": {{"model": "{model}", "t": "{text}"}}}}'
    )
    return PendingRequest(
        custom_id=custom_id,
        request_hash="h" + custom_id,
        stage="doc",
        item_key=custom_id,
        model=model,
        line=line,
        prompt_tokens_est=tokens,
        max_tokens=max_tokens,
        attempts=0,
    )


def test_uploaded_files_respect_line_limit(make_env):
    env = make_env(11, max_lines=4)

    env.run(wait=True)

    sizes = [len(env.sim_file_lines(b["input_file_id"])) for b in env.sim_batches()]
    assert sorted(sizes) == [3, 4, 4]
    assert sorted(env.submitted_custom_ids()) == env.custom_ids()


def test_uploaded_files_respect_byte_limit(make_env):
    env = make_env(9, max_bytes=700)

    env.run(wait=True)

    batches = env.sim_batches()
    assert len(batches) > 1
    for batch in batches:
        content = env.sim_get(f"/files/{batch['input_file_id']}/content").content
        assert len(content) <= 700
    assert sorted(env.submitted_custom_ids()) == env.custom_ids()
    assert {a["status"] for a in env.attempts()} == {"ok"}


def test_oversized_request_fails_on_its_row(make_env):
    env = make_env(3, max_bytes=2_000, long_item=2)
    long_id = env.custom_ids()[1]

    summary = env.run(wait=True)

    assert long_id not in env.submitted_custom_ids()
    (row,) = [a for a in env.attempts() if a["custom_id"] == long_id]
    assert row["status"] == "failed"
    assert row["error_type"] == "too_large"
    assert "provider.batch.max_bytes = 2000" in row["error_message"]
    assert summary.too_large == 1
    assert sum(a["status"] == "ok" for a in env.attempts()) == 2


def test_token_budget_defers_requests(make_env):
    env = make_env(6, max_enqueued_tokens=1_300)

    first = env.run()

    assert first.deferred == 3  # about 420 tokens a request: 3 fit in 1,300
    assert first.submitted == 3
    env.run(poll_only=True, wait=True)
    second = env.run(wait=True)
    assert second.submitted == 3
    assert sorted(env.submitted_custom_ids()) == env.custom_ids()
    assert {a["status"] for a in env.attempts()} == {"ok"}


def test_writer_rejects_duplicate_custom_id(tmp_path):
    with BatchFileWriter(tmp_path, BatchLimits()) as writer:
        writer.add(_request("doc:1"))

        with pytest.raises(BatchFileError) as caught:
            writer.add(_request("doc:1"))

    assert "custom_id 'doc:1'" in str(caught.value)


def test_writer_keeps_one_model_per_file(tmp_path):
    writer = BatchFileWriter(tmp_path, BatchLimits())
    for number in range(4):
        writer.add(_request(f"doc:{number}", model="a" if number % 2 else "b"))

    files = writer.close()

    assert sorted(f.model for f in files) == ["a", "b"]
    for batch_file in files:
        lines = batch_file.path.read_text().splitlines()
        assert all(f'"model": "{batch_file.model}"' in line for line in lines)


@pytest.mark.parametrize(
    ("limits", "enqueued", "expected", "deferred"),
    [
        (BatchLimits(max_lines=2), {}, [2, 2, 1], 0),
        (BatchLimits(max_lines=3, max_enqueued_tokens=10_000), {}, [3, 2], 0),
        # The token budget covers every live batch of the model, not one file.
        (BatchLimits(max_enqueued_tokens=250), {}, [2], 3),
        (BatchLimits(max_enqueued_tokens=250), {"m": 100}, [1], 4),
        (BatchLimits(max_enqueued_tokens=250), {"other": 250}, [2], 3),
    ],
)
def test_writer_splits_at_limits(tmp_path, limits, enqueued, expected, deferred):
    writer = BatchFileWriter(tmp_path, limits, enqueued)
    for number in range(5):
        writer.add(_request(f"doc:{number}"))

    files = writer.close()

    assert [f.line_count for f in files] == expected
    assert writer.deferred == deferred


def test_writer_splits_at_byte_limit(tmp_path):
    size = line_size(_request("doc:0"))
    writer = BatchFileWriter(tmp_path, BatchLimits(max_bytes=size * 2))
    for number in range(5):
        writer.add(_request(f"doc:{number}"))

    files = writer.close()

    assert [f.line_count for f in files] == [2, 2, 1]
    for batch_file in files:
        assert batch_file.path.stat().st_size == batch_file.byte_count
        assert batch_file.byte_count <= size * 2


def test_writer_reports_oversized_tokens(tmp_path):
    writer = BatchFileWriter(tmp_path, BatchLimits(max_enqueued_tokens=50))

    writer.add(_request("doc:0"))

    assert writer.close() == []
    (oversized,) = writer.oversized
    assert "max_enqueued_tokens = 50" in oversized.reason
