"""The PostgreSQL fixture's contract: unreachable → skip with a one-line reason, but under CI=true a failure."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

NOWHERE = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1


@pytest.mark.parametrize("ci", ["", "true"])
def test_unreachable_postgresql_skips_except_under_ci(ci: str) -> None:
    env = {**os.environ, "OHBOT_TEST_DATABASE_URL": NOWHERE, "CI": ci}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/storage/test_db.py::test_pre_ping_replaces_a_connection_killed_while_idle"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    reason = f"PostgreSQL not reachable at {NOWHERE}"
    if ci:
        assert run.returncode == 1, run.stdout
        assert "1 error" in run.stdout and "CI=true: PostgreSQL is required" in run.stdout
    else:
        assert run.returncode == 0, run.stdout
        assert "1 skipped" in run.stdout
        skip_lines = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
        assert len(skip_lines) == 1 and reason in skip_lines[0]
