"""Shared fixtures: each real component's fixture lives in tests/fixtures/."""

pytest_plugins: list[str] = [
    "tests.fixtures.postgres",
    "tests.fixtures.postgrest",
    "tests.fixtures.simulator",
]
