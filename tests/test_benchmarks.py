"""The benchmark scripts are not run by the suite (they take minutes), but they must keep importing:
a renamed or moved function otherwise breaks them unnoticed."""
from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import REPO_ROOT

SCRIPTS = sorted((REPO_ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_benchmark_script_imports(script):
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # each script runs only under `if __name__ == "__main__"`
    assert callable(getattr(module, "main", None)) or script.name in ("run_all.py", "common.py")
