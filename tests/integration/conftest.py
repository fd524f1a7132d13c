"""pytest wiring for levee's integration tests: the `h` fixture (see harness.py)."""

import pytest

from harness import Harness


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture
def h(tmp_path, request):
    """The scenario's harness: start levee, backends and clients through it;
    all of them are stopped at teardown, and levee's exit code and sanitizer
    output are checked there (a problem fails the test)."""
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(harness.stderr_tails())
        problems = harness.teardown()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
