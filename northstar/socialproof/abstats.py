"""The statistics of A/B test results, as plain functions of counts (no database), so they are tested on their own.

* Rates get **Wilson score** intervals (better than the normal approximation near 0 and with small samples).
* Each variant is compared with the control by a **pooled two-proportion z-test** (two-sided), and the p-values
  of the k - 1 comparisons are adjusted with **Holm**'s step-down method, so the chance of any false "significant"
  across the variants stays at alpha.
* The **Bayesian chance to beat control** is P(p_variant > p_control) with independent Beta(1 + successes,
  1 + failures) posteriors (uniform priors), computed exactly with Evan Miller's closed form (no simulation).
* The **sample-ratio mismatch** check is Pearson's χ² goodness of fit of the exposures against the configured
  split; p < 0.001 means the assignment or the counting is broken, and the results must not be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

ALPHA = 0.05
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def z_quantile(confidence: float) -> float:
    """The two-sided standard-normal quantile of a confidence level (1.959963… for 95 %)."""
    return float(-special.ndtri((1 - confidence) / 2))


def wilson_interval(successes: int, trials: int, *, confidence: float = 1 - ALPHA) -> Interval | None:
    """Wilson score interval of ``successes / trials``; None without trials."""
    if trials <= 0:
        return None
    z = z_quantile(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float


def two_proportion_z_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> ZTest | None:
    """Pooled two-proportion z-test of B against A, two-sided; None when it is undefined (no trials, or a pooled
    rate of 0 or 1, where both groups are identical)."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return None
    z = (successes_b / trials_b - successes_a / trials_a) / math.sqrt(variance)
    return ZTest(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given): reject where adjusted < alpha controls the
    family-wise error rate at alpha."""
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def chance_to_beat(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float:
    """P(p_B > p_A) for Beta(1 + s, 1 + n - s) posteriors, exact:

    Σ_{i=0}^{a_B-1} B(a_A + i, b_A + b_B) / ((b_B + i) · B(1 + i, b_B) · B(a_A, b_A)),

    summed in logs (vectorised; a_B terms, so it costs the variant's successes, not its trials)."""
    alpha_a, beta_a = 1 + successes_a, 1 + trials_a - successes_a
    alpha_b, beta_b = 1 + successes_b, 1 + trials_b - successes_b
    i = np.arange(alpha_b, dtype=np.float64)
    terms = (
        special.betaln(alpha_a + i, beta_a + beta_b)
        - np.log(beta_b + i)
        - special.betaln(1 + i, beta_b)
        - special.betaln(alpha_a, beta_a)
    )
    return float(min(1.0, max(0.0, np.exp(special.logsumexp(terms)))))


@dataclass(frozen=True)
class SrmTest:
    chi2: float
    p_value: float
    flagged: bool


def sample_ratio_mismatch(observed: Sequence[int], weights: Sequence[float]) -> SrmTest | None:
    """Pearson χ² of the exposures against the split (k - 1 degrees of freedom); None without exposures."""
    total = sum(observed)
    if total <= 0 or len(observed) < 2:
        return None
    weight_sum = sum(weights)
    chi2 = 0.0
    for count, weight in zip(observed, weights, strict=True):
        expected = total * weight / weight_sum
        chi2 += (count - expected) ** 2 / expected
    p_value = float(special.chdtrc(len(observed) - 1, chi2))
    return SrmTest(chi2=chi2, p_value=p_value, flagged=p_value < SRM_ALPHA)


@dataclass(frozen=True)
class Arm:
    """One variant's counts for the metric being judged: ``successes`` of ``trials``."""

    successes: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None


@dataclass(frozen=True)
class Comparison:
    """A variant against the control on one metric."""

    z: float | None
    p_value: float | None
    adjusted_p_value: float | None
    significant: bool
    chance_to_beat_control: float
    lift: float | None


def compare_with_control(control: Arm, variants: Sequence[Arm], *, alpha: float = ALPHA) -> list[Comparison]:
    """Each variant against the control: z-test, Holm across the variants, chance to beat control, relative lift.

    A comparison whose test is undefined (no trials, identical pools) counts as p = 1 in Holm's family."""
    tests = [two_proportion_z_test(control.successes, control.trials, arm.successes, arm.trials) for arm in variants]
    adjusted = holm([test.p_value if test else 1.0 for test in tests])
    comparisons = []
    for arm, test, adjusted_p in zip(variants, tests, adjusted, strict=True):
        lift = None
        if control.rate and arm.rate is not None:
            lift = arm.rate / control.rate - 1
        comparisons.append(
            Comparison(
                z=test.z if test else None,
                p_value=test.p_value if test else None,
                adjusted_p_value=adjusted_p if test else None,
                significant=test is not None and adjusted_p < alpha,
                chance_to_beat_control=chance_to_beat(control.successes, control.trials, arm.successes, arm.trials),
                lift=lift,
            )
        )
    return comparisons
