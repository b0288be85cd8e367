"""Row shaping: NUL removal, hashes, chunking, and the secret redaction helper."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchkit.load.ledger import postgres_identity, rest_identity
from batchkit.load.rows import chunk_rows, content_hash, row_bytes, strip_nul
from batchkit.load.targets import redact


@pytest.mark.parametrize(
    ("value", "expected", "removed"),
    [
        ("plain", "plain", 0),
        ("a\x00b\x00", "ab", 2),
        ("\x00", "", 1),
        (42, 42, 0),
        (None, None, 0),
    ],
)
def test_strip_nul(value, expected, removed) -> None:
    assert strip_nul(value) == (expected, removed)


@given(st.text())
def test_strip_nul_leaves_no_nul(text: str) -> None:
    cleaned, removed = strip_nul(text)
    assert "\x00" not in cleaned
    assert len(cleaned) + removed == len(text)


def test_content_hash_is_sha256() -> None:
    assert content_hash("") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_row_bytes_counts_utf8() -> None:
    assert row_bytes(("ab", "中")) == 2 + 3
    assert row_bytes((1, None)) == 16


@given(
    st.lists(st.text(max_size=50), max_size=60),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=1, max_value=200),
)
def test_chunk_rows_bounds(texts: list[str], max_rows: int, max_bytes: int) -> None:
    rows = [(text,) for text in texts]
    chunks = list(chunk_rows(iter(rows), max_rows, max_bytes))
    assert [row for chunk in chunks for row in chunk] == rows
    for chunk in chunks:
        assert 1 <= len(chunk) <= max_rows
        if len(chunk) > 1:
            assert sum(row_bytes(row) for row in chunk) <= max_bytes


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://user:pa55word@db.example.com:5432/postgres", "pa55word"),
        ("host=db password=pa55word user=x", "pa55word"),
        ("password='pa 55'", "pa 55"),
        ("key sb-service-key-123 leaked", "sb-service-key-123"),
    ],
)
def test_redact_hides_secret(text: str, secret: str) -> None:
    assert secret not in redact(text, ["sb-service-key-123"])


def test_identities_have_no_credentials() -> None:
    url = "postgresql://postgres.abc:pw@aws-0.pooler.supabase.com:5432/postgres"
    assert postgres_identity(url, "docs") == (
        "postgres://aws-0.pooler.supabase.com:5432/postgres/docs"
    )
    assert rest_identity("https://abc.supabase.co", "docs") == (
        "rest://abc.supabase.co/docs"
    )
    assert "pw" not in postgres_identity("not a url pw", "docs")
