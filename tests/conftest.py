"""Shared fixtures: each real component's fixture lives in tests/fixtures/."""

pytest_plugins: list[str] = []
