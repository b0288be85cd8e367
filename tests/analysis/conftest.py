"""The shared analysis run of the tests in this folder."""

import pytest

from tests.analysis.runs import AnalysisRun, build_analysis_run


@pytest.fixture(scope="module")
def analysis_run(tmp_path_factory: pytest.TempPathFactory) -> AnalysisRun:
    """A prepared job with the scenario's attempts, verdicts and ledger row.

    Shared by a module's tests, so they must only read it.
    """
    return build_analysis_run(tmp_path_factory.mktemp("analysis"))
