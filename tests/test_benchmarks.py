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


def test_calibration_fits_a_separating_feature_and_chooses_a_threshold_without_wrong_answers():
    # benchmarks/calibrate_answers.py on made-up rows: one feature separates right from wrong drafts; the
    # fit weighs it up, the chosen threshold shows the right drafts and none of the wrong ones, and a
    # question without a topic word needs decide.WITHOUT_TOPIC whatever the threshold
    import numpy as np

    from bot.answering.decide import WITHOUT_TOPIC

    spec = importlib.util.spec_from_file_location("bench_calibrate", REPO_ROOT / "benchmarks" / "calibrate_answers.py")
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    rows = [cal.Row("s", {"good": g, "noise": (i % 3) / 3}, float(g > 0.5), True, True)
            for i, g in enumerate([0.1, 0.2, 0.3, 0.4] * 3 + [0.7, 0.8, 0.9, 1.0] * 3)]
    model = cal.fit_model(rows, ["good", "noise"], cost=2.0)
    assert model.coefficients["good"] > abs(model.coefficients["noise"])
    p = cal.confidences(model, rows)
    y = np.array([r.y for r in rows])
    shown = cal.shown_at(p, np.ones(len(rows), bool), model.threshold)
    assert shown[y == 1].all() and not shown[y == 0].any()
    assert not cal.shown_at(np.array([WITHOUT_TOPIC - 0.01]), np.array([False]), 0.1).any()
    assert cal.set_path("real-a") == REPO_ROOT / "tests" / "eval" / "real-a.jsonl"
