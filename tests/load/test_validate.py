"""Validation rules: each reason on its own, verdicts in the job database."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchkit.job.loader import load_job
from batchkit.job.model import ValidationRules
from batchkit.load.validate import (
    REASONS,
    check_result,
    count_headings,
    language_share,
    refresh_verdicts,
)
from batchkit.store.database import connect
from tests.load.conftest import add_results

EN_DOC = "# Title\n\nSome English text here.\n\n## Part\n\nMore words."
ZH_DOC = "# 标题\n\n一些中文内容。\n\n## 部分\n\n更多内容。"


def names(reasons: list[str]) -> list[str]:
    return [reason.split(":", 1)[0] for reason in reasons]


@pytest.mark.parametrize(
    ("rules", "content", "finish", "source", "expected"),
    [
        (ValidationRules(), EN_DOC, "stop", None, []),
        (ValidationRules(), None, "stop", None, ["empty"]),
        (ValidationRules(), "  \n\t", "stop", None, ["empty"]),
        (ValidationRules(enabled=False), "", "length", None, ["empty"]),
        (ValidationRules(enabled=False), "x", "length", None, []),
        (ValidationRules(), EN_DOC, "length", None, ["finish_reason"]),
        (ValidationRules(), EN_DOC, None, None, ["finish_reason"]),
        (ValidationRules(finish_reason=None), EN_DOC, "length", None, []),
        (ValidationRules(min_chars=1000), EN_DOC, "stop", None, ["too_short"]),
        (ValidationRules(max_chars=10), EN_DOC, "stop", None, ["too_long"]),
        (ValidationRules(language="en"), EN_DOC, "stop", None, []),
        (ValidationRules(language="zh"), EN_DOC, "stop", None, ["language"]),
        (ValidationRules(language="zh"), ZH_DOC, "stop", None, []),
        (ValidationRules(language="en"), ZH_DOC, "stop", None, ["language"]),
        (ValidationRules(language="zh"), "12345 !!!", "stop", None, ["language"]),
        (ValidationRules(min_headings=2), EN_DOC, "stop", None, []),
        (ValidationRules(min_headings=3), EN_DOC, "stop", None, ["headings"]),
        (
            ValidationRules(same_headings_as_source=True),
            ZH_DOC,
            "stop",
            EN_DOC,
            [],
        ),
        (
            ValidationRules(same_headings_as_source=True, heading_tolerance=0),
            "# 只有一个标题\n内容",
            "stop",
            EN_DOC,
            ["heading_structure"],
        ),
        (
            ValidationRules(same_headings_as_source=True, heading_tolerance=1),
            "# 只有一个标题\n内容",
            "stop",
            EN_DOC,
            [],
        ),
        (
            ValidationRules(same_headings_as_source=True),
            "no headings at all",
            "stop",
            None,
            [],
        ),
        (
            ValidationRules(forbidden=("as an AI language model",)),
            "As an AI Language Model, I write.",
            "stop",
            None,
            ["forbidden_phrase"],
        ),
        (
            ValidationRules(min_chars=1000, language="zh", min_headings=5),
            EN_DOC,
            "length",
            None,
            ["finish_reason", "too_short", "language", "headings"],
        ),
    ],
)
def test_check_result_reasons(
    rules: ValidationRules,
    content: str | None,
    finish: str | None,
    source: str | None,
    expected: list[str],
) -> None:
    assert names(check_result(rules, content, finish, source)) == expected


def test_every_reason_is_listed() -> None:
    rules = ValidationRules(
        min_chars=10_000, max_chars=10_001, language="zh", min_headings=9
    )
    reasons = check_result(rules, EN_DOC, "length")
    assert set(names(reasons)) <= set(REASONS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# A\n## B\n###### C", 3),
        ("#nospace", 0),
        ("####### seven", 0),
        ("   # three spaces", 1),
        ("    # four spaces is code", 0),
        ("```bash\n# install\nnpm i\n```\n# After", 1),
        ("~~~\n# inside\n~~~", 0),
        ("```\n# unclosed fence", 0),
        ("text # not at line start", 0),
        ("# 中文标题\n内容", 1),
    ],
)
def test_count_headings(text: str, expected: int) -> None:
    assert count_headings(text) == expected


def test_language_share_counts_words() -> None:
    mixed = "我们使用React和TypeScript构建前端界面"
    assert language_share(mixed, "zh") > 0.8
    assert language_share("Hello world", "en") == 1.0
    assert language_share("", "en") == 0.0


@given(st.text())
def test_language_share_is_a_share(text: str) -> None:
    for language in ("en", "zh"):
        share = language_share(text, language)
        assert 0.0 <= share <= 1.0


@given(st.text())
def test_shares_add_up(text: str) -> None:
    total = language_share(text, "en") + language_share(text, "zh")
    assert total == pytest.approx(1.0) or total == 0.0


@given(st.text(), st.sampled_from(["stop", "length", None]))
def test_check_result_reason_names(text: str, finish: str | None) -> None:
    rules = ValidationRules(min_chars=5, max_chars=50, language="en", min_headings=1)
    for reason in check_result(rules, text, finish):
        assert reason.split(":", 1)[0] in REASONS


@given(st.lists(st.sampled_from(["# H", "text", "```", "## H2", "    # code"])))
def test_count_headings_bounded(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert 0 <= count_headings(text) <= sum(line.startswith("#") for line in lines)


def test_refresh_verdicts_stores_rejects(make_job) -> None:
    job = make_job(3, zh=False, target="parquet")
    add_results(job, "doc_en", {"2": "short"})
    add_results(job, "doc_en", {"3": None})
    with connect(job) as connection:
        refresh_verdicts(connection, job)
        rows = connection.execute(
            "SELECT v.item_key, v.is_valid, v.reasons FROM results r "
            "JOIN verdicts v USING (attempt_id) ORDER BY v.item_key"
        ).fetchall()
        again = refresh_verdicts(connection, job)
    assert [row[1] for row in rows] == [True, False, False]
    assert names(rows[1][2]) == ["too_short"]
    assert names(rows[2][2]) == ["empty"]
    assert again == 0


def test_refresh_verdicts_sql_predicate(make_job, tmp_path) -> None:
    job = make_job(2, zh=False, target="parquet")
    text = (tmp_path / "job.toml").read_text()
    text = text.replace("min_chars = 10", "min_chars = 10\nsql = \"item_key <> '2'\"")
    (tmp_path / "job.toml").write_text(text)
    job = load_job(tmp_path / "job.toml")
    with connect(job) as connection:
        judged = refresh_verdicts(connection, job)
        rows = connection.execute(
            "SELECT r.item_key, v.reasons FROM results r JOIN stages s USING (stage) "
            "JOIN verdicts v ON v.attempt_id = r.attempt_id "
            "AND v.rules_hash = s.rules_hash WHERE NOT v.is_valid"
        ).fetchall()
    assert judged == 2
    assert [row[0] for row in rows] == ["2"]
    assert names(rows[0][1]) == ["sql_check"]
