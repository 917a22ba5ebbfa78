"""bot.awareness.design against R's survey package, and its reductions and edge cases.

The reference values (tests/awareness/fixtures/design_reference.csv) were computed by
design_reference.R with R's `survey` package on the synthetic respondents it draws (design_data.csv)
and the population counts it writes (design_population.csv). They are compared here always; when
Rscript with the survey package is installed the script is run again and its fresh output compared
too, so a change of R or of the fixtures cannot pass unnoticed.
"""
from __future__ import annotations

import csv
import math
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.awareness.design import Design, extra_to_decide, poststratify
from bot.awareness.stats import wilson_interval_rate
from tests.helpers import wilson_by_hand

FIXTURES = Path(__file__).parent / "fixtures"
FIELDS = ("n", "rate", "se", "deff", "n_effective", "df", "n_star", "ci_low", "ci_high")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def designs(data: list[dict[str, str]], population: list[dict[str, str]]) -> dict[str, Design]:
    """The five scenarios of design_reference.R, built from the same respondents."""
    aware = [int(r["aware"]) for r in data]
    enterprise = [r["enterprise"] for r in data]
    region = [r["region"] for r in data]
    cells = [(r["industry"], r["enterprise_size"], r["region"]) for r in data]
    counts = {(p["industry"], p["enterprise_size"], p["region"]): float(p["count"]) for p in population}
    weights, _ = poststratify(cells, counts)
    return {
        "srs": Design(aware),
        "cluster": Design(aware, enterprise),
        "stratified_cluster": Design(aware, enterprise, region),
        "poststratified_srs": Design(aware, weights=weights, poststrata=cells),
        "poststratified_cluster": Design(aware, enterprise, region, weights, cells),
    }


def compare(reference: list[dict[str, str]], data: list[dict[str, str]], built: dict[str, Design]) -> float:
    """Assert every reference row; return the largest relative difference seen."""
    worst = 0.0
    for row in reference:
        members = None if not row["by"] else [i for i, r in enumerate(data) if r[row["by"]] == row["value"]]
        est = built[row["scenario"]].estimate(members)
        where = f"{row['scenario']} {row['by']}={row['value']}"
        if int(row["df"]) < 1:  # one enterprise: R has no interval either, we say (0, 1)
            assert (est.n, est.df, est.deff, est.ci_low, est.ci_high) == (int(row["n"]), int(row["df"]), None, 0.0, 1.0)
            assert est.rate == pytest.approx(float(row["rate"]), rel=1e-12), where
            continue
        if math.isnan(float(row["deff"])):  # everybody aware (or nobody): no variance, R has no deff
            assert est.deff is None and est.n_effective is None and est.se == pytest.approx(0.0, abs=1e-15)
            assert (est.ci_low, est.ci_high) == pytest.approx(wilson_interval_rate(est.rate, est.n_star))
            continue
        for name in FIELDS:
            want, got = float(row[name]), getattr(est, name)
            assert got == pytest.approx(want, rel=1e-9, abs=1e-14), f"{where} {name}: {got} != R {want}"
            worst = max(worst, abs(got - want) / max(abs(want), 1e-300))
    return worst


def test_matches_r_survey_reference():
    data = read_csv(FIXTURES / "design_data.csv")
    reference = read_csv(FIXTURES / "design_reference.csv")
    assert len(reference) == 45 and {r["scenario"] for r in reference} == {
        "srs", "cluster", "stratified_cluster", "poststratified_srs", "poststratified_cluster"}
    deffs = [float(r["deff"]) for r in reference if r["scenario"] == "cluster" and not r["by"]]
    assert deffs[0] > 2  # the synthetic enterprises differ a lot: a clustered design worth testing
    assert compare(reference, data, designs(data, read_csv(FIXTURES / "design_population.csv"))) < 1e-9


def _r_has_survey() -> bool:
    if not shutil.which("Rscript"):
        return False
    probe = subprocess.run(["Rscript", "-e", "library(survey)"], capture_output=True, timeout=120)
    return probe.returncode == 0


@pytest.mark.skipif(not _r_has_survey(), reason="Rscript with the survey package is not installed")
def test_r_script_reproduces_the_fixtures(tmp_path):
    """Run design_reference.R again: same respondents, same reference values, and Python agrees."""
    result = subprocess.run(["Rscript", str(FIXTURES / "design_reference.R"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("design_data.csv", "design_population.csv"):
        assert read_csv(tmp_path / name) == read_csv(FIXTURES / name), name
    fresh = read_csv(tmp_path / "design_reference.csv")
    stored = read_csv(FIXTURES / "design_reference.csv")
    assert len(fresh) == len(stored)
    for a, b in zip(fresh, stored):
        for key in a:
            if key in ("scenario", "by", "value"):
                assert a[key] == b[key]
            elif a[key] != b[key]:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-12), (key, a, b)
    data = read_csv(tmp_path / "design_data.csv")
    assert compare(fresh, data, designs(data, read_csv(tmp_path / "design_population.csv"))) < 1e-9


def test_one_psu_per_respondent_without_weights_is_the_wilson_interval():
    rng = random.Random(11)
    aware = [int(rng.random() < 0.83) for _ in range(257)]
    est = Design(aware).estimate()
    x, n = sum(aware), len(aware)
    assert est.deff == pytest.approx(1.0, abs=1e-12) and est.n_effective == pytest.approx(n)
    assert est.df == n - 1 and est.psus == n
    assert (est.ci_low, est.ci_high) == pytest.approx(wilson_by_hand(x, n), abs=1e-12)
    # a respondent without an enterprise code is a PSU of their own: the same as no clusters at all
    assert Design(aware, [None] * n).estimate() == est


def test_cluster_variance_by_hand():
    """The ultimate-cluster estimator written out for one stratum: v = m/(m−1)·Σ(T_c − mean T)²,
    T_c = Σ_{i in c}(y_i − p)/n."""
    rng = random.Random(5)
    clusters, aware = [], []
    for c in range(12):
        p = rng.choice([0.55, 0.8, 0.97])
        for _ in range(rng.randint(3, 25)):
            clusters.append(f"E{c}")
            aware.append(int(rng.random() < p))
    n, m = len(aware), 12
    p = sum(aware) / n
    totals = {}
    for c, y in zip(clusters, aware):
        totals[c] = totals.get(c, 0.0) + (y - p) / n
    mean = sum(totals.values()) / m
    v = m / (m - 1) * sum((t - mean) ** 2 for t in totals.values())
    s2 = n / (n - 1) * p * (1 - p)
    est = Design(aware, clusters).estimate()
    assert est.se == pytest.approx(math.sqrt(v), rel=1e-12)
    assert est.deff == pytest.approx(v / (s2 / n), rel=1e-12)
    assert (est.psus, est.strata, est.df) == (12, 1, 11)
    # the same enterprise code in two strata is two PSUs
    strata = ["A" if i % 2 else "B" for i in range(n)]
    assert Design(aware, clusters, strata).estimate().psus == 24


def test_poststratify_weights_and_summary():
    cells = ["a", "a", "b", None, "c", "a"]
    weights, summary = poststratify(cells, {"a": 300.0, "b": 50.0, "d": 1000.0})
    assert weights == [100.0, 100.0, 50.0, 0.0, 0.0, 100.0]
    assert summary == {"matched": 4, "unmatched": 2, "cells": 3, "covered_cells": 2, "population": 1350.0,
                       "covered_population": 350.0}
    est = Design([1, 0, 1, 1, 1, 1], weights=weights, poststrata=cells).estimate()
    assert est.n == 4 and est.rate == pytest.approx((100 + 50 + 100) / 350)


def test_extra_enterprises_is_the_smallest_that_decides():
    from scipy.stats import t

    rng = random.Random(3)
    clusters, aware = [], []
    for c in range(15):
        p = rng.choice([0.7, 0.95, 1.0])
        for _ in range(20):
            clusters.append(c)
            aware.append(int(rng.random() < p))
    est = Design(aware, clusters).estimate()
    assert est.ci_low < 0.85 < est.ci_high  # undecided
    k, extra_n = extra_to_decide(est, 0.85)
    assert extra_n == math.ceil(k * est.n / est.psus)

    def decided(j: int) -> bool:  # the projection written out with scipy's t directly
        total = est.n + j * est.n / est.psus
        n_star = total / est.deff * (t.ppf(0.975, total - 1) / t.ppf(0.975, est.psus + j - 1)) ** 2
        low, high = wilson_interval_rate(est.rate, n_star)
        return low >= 0.85 or high < 0.85

    assert decided(k) and not decided(k - 1)
    assert extra_to_decide(est, est.rate) is None  # the rate is the target: never decided


def test_one_enterprise_gives_no_interval_and_no_projection():
    est = Design([1, 1, 0, 1], ["E1"] * 4).estimate()
    assert (est.df, est.ci_low, est.ci_high, est.deff) == (0, 0.0, 1.0, None)
    assert extra_to_decide(est, 0.85) is None
    empty = Design([1, 0], ["E1", "E2"]).estimate([])
    assert (empty.n, empty.rate, empty.ci_low, empty.ci_high) == (0, None, 0.0, 1.0)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        Design([1, 0, 1], ["E1", "E2"])
    with pytest.raises(ValueError):
        Design([1, 0], weights=[1.0, -2.0])
