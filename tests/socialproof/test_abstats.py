"""The A/B statistics against scipy on fixed data (to 1e-9), and an A/A simulation for the false positive rate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, stats

from northstar.socialproof.abstats import (
    Arm,
    chance_to_beat,
    compare_with_control,
    holm,
    sample_ratio_mismatch,
    two_proportion_z_test,
    wilson_interval,
    z_quantile,
)

TOLERANCE = 1e-9
FIXED = [(0, 10), (3, 10), (10, 10), (48, 1000), (61, 1020), (512, 9876), (1, 3)]


def test_z_quantile_matches_scipy() -> None:
    for confidence in (0.9, 0.95, 0.99):
        assert z_quantile(confidence) == pytest.approx(stats.norm.ppf(1 - (1 - confidence) / 2), abs=TOLERANCE)


@pytest.mark.parametrize(("successes", "trials"), FIXED)
def test_wilson_interval_matches_scipy(successes: int, trials: int) -> None:
    ours = wilson_interval(successes, trials)
    theirs = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours is not None
    assert ours.low == pytest.approx(theirs.low, abs=TOLERANCE)
    assert ours.high == pytest.approx(theirs.high, abs=TOLERANCE)


def test_no_interval_without_trials() -> None:
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(FIXED[1:6], 2)))
def test_z_test_matches_the_uncorrected_chi_square_of_the_two_by_two_table(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    """A pooled two-proportion z-test is the 2x2 χ² test without continuity correction: z² = χ², same p."""
    result = two_proportion_z_test(a[0], a[1], b[0], b[1])
    chi2, p_value, _, _ = stats.chi2_contingency([[a[0], a[1] - a[0]], [b[0], b[1] - b[0]]], correction=False)
    assert result is not None
    assert result.z**2 == pytest.approx(chi2, abs=TOLERANCE)
    assert result.p_value == pytest.approx(p_value, abs=TOLERANCE)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(result.z)), abs=TOLERANCE)
    assert (result.z > 0) == (b[0] / b[1] > a[0] / a[1])


def test_z_test_is_undefined_when_both_groups_are_identical_or_empty() -> None:
    assert two_proportion_z_test(0, 100, 0, 50) is None
    assert two_proportion_z_test(100, 100, 50, 50) is None
    assert two_proportion_z_test(1, 0, 1, 10) is None


def _holm_by_definition(p_values: list[float]) -> list[float]:
    """Holm through the closed testing principle with Bonferroni tests of each intersection: an adjusted p-value is
    the largest Bonferroni p over every subset that contains the hypothesis (independent of the step-down code)."""
    count = len(p_values)
    adjusted = []
    for index in range(count):
        worst = 0.0
        for size in range(1, count + 1):
            for subset in itertools.combinations(range(count), size):
                if index in subset:
                    worst = max(worst, min(1.0, size * min(p_values[member] for member in subset)))
        adjusted.append(worst)
    return adjusted


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03], [0.001, 0.2, 0.04, 0.9], [0.5], [0.02, 0.02], [0.049, 0.0001, 0.3, 0.011]],
)
def test_holm_matches_closed_testing(p_values: list[float]) -> None:
    assert holm(p_values) == pytest.approx(_holm_by_definition(p_values), abs=TOLERANCE)


def test_holm_on_scipy_p_values_of_fixed_data() -> None:
    control = (48, 1000)
    variants = [(61, 1020), (75, 990), (50, 1010)]
    p_values = [
        stats.chi2_contingency([[control[0], control[1] - control[0]], [s, n - s]], correction=False)[1]
        for s, n in variants
    ]
    comparisons = compare_with_control(Arm(*control), [Arm(*variant) for variant in variants])
    expected = _holm_by_definition(p_values)
    for comparison, raw, adjusted in zip(comparisons, p_values, expected, strict=True):
        assert comparison.p_value == pytest.approx(raw, abs=TOLERANCE)
        assert comparison.adjusted_p_value == pytest.approx(adjusted, abs=TOLERANCE)
        assert comparison.significant == (adjusted < 0.05)
    assert [comparison.significant for comparison in comparisons] == [False, True, False]


def _chance_by_integration(a: tuple[int, int], b: tuple[int, int]) -> float:
    """P(p_B > p_A) = ∫ f_B(x) F_A(x) dx with scipy's Beta distributions, integrated numerically."""
    posterior_a = stats.beta(1 + a[0], 1 + a[1] - a[0])
    posterior_b = stats.beta(1 + b[0], 1 + b[1] - b[0])
    low, high = posterior_b.ppf(1e-15), posterior_b.ppf(1 - 1e-15)
    value, _ = integrate.quad(
        lambda x: posterior_b.pdf(x) * posterior_a.cdf(x), low, high, epsabs=1e-13, epsrel=1e-13, limit=500
    )
    return float(value)


@pytest.mark.parametrize(
    ("a", "b"),
    [((3, 10), (5, 10)), ((48, 1000), (61, 1020)), ((61, 1020), (48, 1000)), ((0, 20), (1, 20)), ((7, 7), (2, 9))],
)
def test_chance_to_beat_matches_integration_of_scipy_betas(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert chance_to_beat(a[0], a[1], b[0], b[1]) == pytest.approx(_chance_by_integration(a, b), abs=TOLERANCE)


def test_chance_to_beat_is_one_half_for_identical_arms_and_complementary() -> None:
    assert chance_to_beat(40, 1000, 40, 1000) == pytest.approx(0.5, abs=TOLERANCE)
    forward = chance_to_beat(48, 1000, 61, 1020)
    assert forward + chance_to_beat(61, 1020, 48, 1000) == pytest.approx(1.0, abs=TOLERANCE)


@pytest.mark.parametrize(
    ("observed", "weights"),
    [([5000, 5000], [50, 50]), ([5100, 4900], [50, 50]), ([3300, 3400, 3250], [1, 1, 1]), ([2100, 7900], [20, 80])],
)
def test_sample_ratio_mismatch_matches_scipy_chisquare(observed: list[int], weights: list[int]) -> None:
    total = sum(observed)
    expected = [total * weight / sum(weights) for weight in weights]
    theirs = stats.chisquare(observed, expected)
    ours = sample_ratio_mismatch(observed, weights)
    assert ours is not None
    assert ours.chi2 == pytest.approx(theirs.statistic, abs=TOLERANCE)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=TOLERANCE)
    assert ours.flagged == (theirs.pvalue < 0.001)


def test_a_broken_split_is_flagged() -> None:
    flagged = sample_ratio_mismatch([5300, 4700], [50, 50])
    assert flagged is not None and flagged.flagged
    fine = sample_ratio_mismatch([5030, 4970], [50, 50])
    assert fine is not None and not fine.flagged
    assert sample_ratio_mismatch([0, 0], [50, 50]) is None


def test_a_a_tests_are_significant_at_most_six_percent_of_the_time() -> None:
    """1,000 simulated A/A tests (same true rate in both arms, fixed seed): at alpha = 0.05 the z-test may call a
    difference significant about 5 % of the time, and must stay ≤ 6 %; the SRM check almost never fires."""
    rng = np.random.default_rng(20261209)
    false_positives = 0
    srm_flags = 0
    for _ in range(1000):
        visitors = rng.binomial(4000, 0.5)
        control, variant = 4000 - visitors, visitors
        clicks_control, clicks_variant = rng.binomial(control, 0.06), rng.binomial(variant, 0.06)
        (comparison,) = compare_with_control(Arm(int(clicks_control), control), [Arm(int(clicks_variant), variant)])
        false_positives += comparison.significant
        srm = sample_ratio_mismatch([control, variant], [50, 50])
        srm_flags += bool(srm and srm.flagged)
    assert false_positives / 1000 <= 0.06
    assert false_positives > 0  # the test can reject at all
    assert srm_flags <= 5


def test_a_a_a_family_wise_rate_with_holm() -> None:
    """Three arms with the same rate: with Holm, any of the two comparisons is significant ≤ 6 % of the time."""
    rng = np.random.default_rng(7)
    any_significant = 0
    for _ in range(1000):
        sizes = rng.multinomial(6000, [1 / 3] * 3)
        clicks = [int(rng.binomial(size, 0.05)) for size in sizes]
        comparisons = compare_with_control(
            Arm(clicks[0], int(sizes[0])), [Arm(clicks[1], int(sizes[1])), Arm(clicks[2], int(sizes[2]))]
        )
        any_significant += any(comparison.significant for comparison in comparisons)
    assert any_significant / 1000 <= 0.06


def test_a_real_difference_is_found() -> None:
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(200):
        control, variant = int(rng.binomial(5000, 0.05)), int(rng.binomial(5000, 0.07))
        (comparison,) = compare_with_control(Arm(control, 5000), [Arm(variant, 5000)])
        found += comparison.significant and (comparison.lift or 0) > 0
        assert comparison.chance_to_beat_control > 0.5 or not comparison.significant
    assert found / 200 > 0.8
