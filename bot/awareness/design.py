"""Design-based awareness rates: intervals that respect how key-group monitoring draws its sample.

Why: bureaus sample enterprises first (stratified, often with probability proportional to size) and
then workers inside them. Workers of one enterprise answer alike, so n workers carry less
information than n independent ones and a Wilson interval on n is too narrow. Here the variance of
the (weighted) share of aware respondents is estimated from the enterprises (the primary sampling
units, PSUs), within optional strata, and the interval is built from the resulting effective
sample size.

Definitions (written plainly with numpy; checked against R's `survey` package, see
tests/awareness/fixtures/design_reference.R):
- rate: p = Σ w·y / Σ w over the respondents of a domain (a group), y = 1 when aware, w the weight
  (1 without post-stratification).
- variance: Taylor linearisation, with-replacement ("ultimate cluster") estimator, PSUs nested in
  strata: z_i = w_i·e_i / Σ_d w with e_i = 1[i in domain]·(y_i − p); PSU totals T_hc = Σ z_i;
  v = Σ_h n_h/(n_h − 1)·Σ_c (T_hc − mean_h T)². Every PSU of the design counts in n_h, also those
  without a member of the domain (their total is 0), as R's `svyby` does. A stratum with one PSU
  contributes T², its deviation from the overall mean (R: options(survey.lonely.psu = "adjust")).
  With post-stratification, e is first replaced by its residual from the post-stratum mean
  (R: `postStratify`).
- deff = v / (s²/n), s² = n/(n − 1)·Σ w (y − p)² / Σ w: R's svymean(..., deff = "replace").
  It is exactly 1 when every respondent is its own PSU and no weights are used.
- n_effective = n / deff.
- df = PSUs with a member of the domain − strata with a member of the domain (R: `degf`).
- interval: the Wilson score interval at the degrees-of-freedom-adjusted effective sample size
  n* = n_effective·(t_{n−1} / t_df)², the adjustment of Korn & Graubard (1998) that R's
  svyciprop(method = "beta") also applies. With one PSU per respondent and no weights it is the
  plain Wilson interval on n, so the two intervals agree when there is no clustering.
- extra sample to decide: the smallest number of additional enterprises (each with the mean
  number of respondents per enterprise, the rate and deff unchanged) whose interval lies wholly on
  one side of the target.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.awareness.stats import MAX_EXTRA_N, Z95, wilson_interval_rate

__all__ = ["Design", "DesignEstimate", "poststratify", "t_quantile"]

#: How far the search for extra enterprises goes before giving up.
MAX_EXTRA_PSUS: int = 100_000
_EQ_TOL = 1e-12
_ZERO_VARIANCE = 1e-12  # relative to the simple-random-sampling variance


@functools.lru_cache(maxsize=4096)
def t_quantile(df: float, p: float = 0.975) -> float:
    """The p quantile of Student's t with `df` degrees of freedom (scipy.special.stdtrit, imported
    here only: the plain reports never need scipy)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


@dataclass(frozen=True)
class DesignEstimate:
    """The design-based figures of one domain (overall, a group or a month).

    n: respondents of the domain in the design; rate: the (weighted) share aware, None when n = 0;
    se: standard error of rate; deff, n_effective: see the module docstring (None when they cannot
    be estimated: n < 2, p = 0 or 1, or a variance of 0); psus: PSUs (enterprises) with a member of
    the domain; strata: strata with a member; df = psus − strata; n_star: the df-adjusted effective
    sample size the interval uses; ci_low, ci_high: the interval ((0, 1) when df < 1: one
    enterprise cannot show how enterprises differ).
    """

    n: int
    rate: float | None
    se: float | None
    deff: float | None
    n_effective: float | None
    psus: int
    strata: int
    df: int
    n_star: float | None
    ci_low: float
    ci_high: float


def poststratify(cells: Sequence[Any], population: Mapping[Any, float]) -> tuple[list[float], dict[str, float]]:
    """Post-stratification weights: respondent i in cell g gets N_g / n_g.

    cells: each respondent's cell (None or a cell absent from `population`: weight 0, left out of
    the weighted figures); population: workers per cell. Cells of the population without a
    respondent are left out too, as R's postStratify(partial = TRUE) does: the weights then add up
    to the covered part of the population. Returns (weights, summary) with summary keys
    matched, unmatched (respondents), cells, covered_cells, population, covered_population.
    """
    counts: dict[Hashable, int] = {}
    for c in cells:
        if c is not None and c in population:
            counts[c] = counts.get(c, 0) + 1
    weights = [population[c] / counts[c] if c is not None and c in counts else 0.0 for c in cells]
    total = float(sum(population.values()))
    covered = float(sum(population[c] for c in counts))
    matched = sum(counts.values())
    summary = {"matched": matched, "unmatched": len(cells) - matched, "cells": len(population),
               "covered_cells": len(counts), "population": total, "covered_population": covered}
    return weights, summary


def _codes(labels: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Labels as dense integer codes 0..k−1 (first-seen order) and k."""
    seen: dict[Hashable, int] = {}
    out = np.fromiter((seen.setdefault(x, len(seen)) for x in labels), dtype=np.int64, count=len(labels))
    return out, len(seen)


class Design:
    """The respondents of one report as a sample design: aware flags, PSUs, strata, weights.

    aware: 1/0 (or bools) per respondent. clusters: each respondent's PSU label (an enterprise
    key); None (or a None entry) makes the respondent its own PSU, as under simple random sampling.
    strata: each respondent's stratum label, or None for one stratum. PSUs are nested in strata
    (an enterprise seen in two strata is two PSUs). weights: per respondent, 0 leaves the
    respondent out of the design (None: all 1). poststrata: each respondent's post-stratum when
    the weights came from `poststratify` (the variance then uses residuals from the post-stratum
    means).
    """

    def __init__(self, aware: Sequence[int | bool], clusters: Sequence[Hashable | None] | None = None,
                 strata: Sequence[Hashable] | None = None, weights: Sequence[float] | None = None,
                 poststrata: Sequence[Hashable | None] | None = None) -> None:
        n = len(aware)
        for name, seq in (("clusters", clusters), ("strata", strata), ("weights", weights),
                          ("poststrata", poststrata)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} entries for {n} respondents")
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite and not negative")
        self.size = n
        self.keep = np.flatnonzero(w > 0)  # positions (of the caller's sequences) in the design
        keep = self.keep.tolist()
        self.y = np.asarray(aware, dtype=float)[self.keep]
        self.w = w[self.keep]
        stratum_labels = [None] * len(keep) if strata is None else [strata[i] for i in keep]
        self.stratum, self.n_strata = _codes(stratum_labels)
        psu_labels = [(stratum_labels[j], ("psu", clusters[i]) if clusters is not None and clusters[i] is not None
                       else ("own", i)) for j, i in enumerate(keep)]
        self.psu, self.n_psus = _codes(psu_labels)
        # the stratum of each PSU, and the number of PSUs per stratum
        self.psu_stratum = np.zeros(self.n_psus, dtype=np.int64)
        self.psu_stratum[self.psu] = self.stratum
        self.psus_per_stratum = np.bincount(self.psu_stratum, minlength=self.n_strata)
        self.poststratum: np.ndarray | None = None
        if poststrata is not None:
            self.poststratum, self.n_post = _codes([poststrata[i] for i in keep])
            self.post_count = np.bincount(self.poststratum, minlength=self.n_post)
        self.clustered = clusters is not None and any(c is not None for c in clusters)

    def _mask(self, members: Sequence[int] | None) -> np.ndarray:
        """Boolean mask over the design's respondents for caller positions `members` (None: all)."""
        if members is None:
            return np.ones(len(self.keep), dtype=bool)
        full = np.zeros(self.size, dtype=bool)
        full[np.asarray(members, dtype=np.int64)] = True
        return full[self.keep]

    def estimate(self, members: Sequence[int] | None = None, z: float = Z95) -> DesignEstimate:
        """Design-based rate, variance, deff, effective n and interval of a domain.

        members: positions (in the sequences given to the constructor) of the domain's respondents;
        None for everybody. Respondents with weight 0 are ignored.
        """
        dom = self._mask(members)
        n = int(dom.sum())
        if n == 0:
            return DesignEstimate(0, None, None, None, None, 0, 0, 0, None, 0.0, 1.0)
        w_dom = self.w * dom
        total_w = float(w_dom.sum())
        p = float((w_dom * self.y).sum() / total_w)
        p = min(1.0, max(0.0, p))
        e = np.where(dom, self.y - p, 0.0)
        if self.poststratum is not None:
            sums = np.bincount(self.poststratum, weights=e, minlength=self.n_post)
            e = e - (sums / self.post_count)[self.poststratum]
        zvals = self.w * e / total_w
        totals = np.bincount(self.psu, weights=zvals, minlength=self.n_psus)
        n_h = self.psus_per_stratum[self.psu_stratum]
        means = np.bincount(self.psu_stratum, weights=totals, minlength=self.n_strata) / self.psus_per_stratum
        lonely = n_h == 1
        dev = np.where(lonely, totals, totals - means[self.psu_stratum])
        scale = np.where(lonely, 1.0, n_h / np.maximum(n_h - 1, 1))
        variance = float((scale * dev * dev).sum())
        psus = int(np.unique(self.psu[dom]).size)
        strata = int(np.unique(self.stratum[dom]).size)
        df = psus - strata
        se = math.sqrt(variance)
        deff = n_eff = None
        if n > 1:
            s2 = n / (n - 1) * float((w_dom * (self.y - p) ** 2).sum()) / total_w
            # a variance at rounding level (every PSU alike, e.g. one PSU) is 0: no deff then
            if s2 > 0 and variance > _ZERO_VARIANCE * s2 / n:
                deff = variance / (s2 / n)
                n_eff = n / deff
        if df < 1:
            return DesignEstimate(n, p, se, deff, n_eff, psus, strata, df, None, 0.0, 1.0)
        n_star = (n_eff if n_eff is not None else float(n)) * (t_quantile(n - 1) / t_quantile(df)) ** 2 \
            if n > 1 else float(n)
        low, high = wilson_interval_rate(p, n_star, z)
        return DesignEstimate(n, p, se, deff, n_eff, psus, strata, df, n_star, low, high)


def extra_to_decide(est: DesignEstimate, target: float, z: float = Z95,
                    max_psus: int = MAX_EXTRA_PSUS, max_n: int = MAX_EXTRA_N) -> tuple[int, int] | None:
    """(extra PSUs, extra respondents) that would decide the status of `est` against `target`.

    Assumes the rate and the design effect stay as observed and each new PSU brings the mean
    number of respondents per PSU of the domain; searches the smallest number k of extra PSUs
    whose interval (Wilson at the df-adjusted effective n) lies wholly at/above or below the
    target, by doubling then bisection (deciding is monotone in k). Returns (0, 0) when already
    decided; None without data, when the rate equals the target, when df < 1 (one PSU: nothing is
    known of how PSUs differ) or beyond `max_psus` / `max_n`.
    """
    if est.rate is None or est.n < 2 or est.df < 1 or est.psus < 1:
        return None
    p = est.rate
    if math.isclose(p, target, rel_tol=_EQ_TOL, abs_tol=_EQ_TOL):
        return None
    deff = est.deff if est.deff is not None else 1.0
    per_psu = est.n / est.psus
    n_strata = est.strata

    def decided(k: int) -> bool:
        total = est.n + k * per_psu
        n_star = total / deff * (t_quantile(total - 1) / t_quantile(est.psus + k - n_strata)) ** 2
        low, high = wilson_interval_rate(p, n_star, z)
        return low >= target or high < target

    if decided(0):
        return (0, 0)
    limit = min(max_psus, max(1, int(max_n / per_psu)))
    lo, hi = 0, 1
    while not decided(hi):
        if hi >= limit:
            return None
        lo, hi = hi, min(limit, 2 * hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if decided(mid):
            hi = mid
        else:
            lo = mid
    return hi, math.ceil(hi * per_psu - 1e-9)
