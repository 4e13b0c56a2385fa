"""Sharpe-ratio statistics (research.validation.sharpe): published examples, Monte Carlo, properties, library cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from research.validation.sharpe import (
    deflated_sharpe_ratio,
    dsr_from_moments,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_moments,
    sharpe_ratio,
)


def _returns(n: int = 500, mu: float = 0.0006, sd: float = 0.01, seed: int = 1) -> pd.Series:
    idx = pd.date_range("2020-01-01", periods=n, freq="B", tz="UTC")
    return pd.Series(np.random.default_rng(seed).normal(mu, sd, n), index=idx)


# ---- published examples --------------------------------------------------------------------------
def test_dsr_numerical_example_of_bailey_lopez_de_prado_2014():
    """"The Deflated Sharpe Ratio" (JPM 2014), section "A numerical example": N = 100 independent trials,
    V[SR_n] = 1/2 (annualised), T = 1250 daily observations (250 a year), skewness -3, kurtosis 10,
    best annualised SR 2.5 -> E[max SR] ≈ 0.1132 (non-annualised) and DSR ≈ 0.9004 (< 0.95: rejected).
    Numbers as quoted by several independent implementations that reproduce the paper."""
    sr = 2.5 / math.sqrt(250)
    var = 0.5 / 250
    assert expected_max_sharpe(100, var) == pytest.approx(0.1132, abs=5e-5)
    dsr = dsr_from_moments(sr, 1250, -3.0, 10.0, 100, var)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    assert dsr < 0.95
    # the DSR is the PSR against that benchmark
    assert dsr == pytest.approx(psr_from_moments(sr, 1250, -3.0, 10.0, expected_max_sharpe(100, var)))


def test_expected_max_sharpe_of_bailey_borwein_lopez_de_prado_zhu_2014():
    """"Pseudo-Mathematics and Financial Charlatanism" (Notices AMS 2014): with unit-variance Sharpe
    ratios, E[max] of N = 10 trials ≈ 1.57; and 45 trials over 5 years give an annualised max ≈ 1."""
    assert expected_max_sharpe(10, 1.0) == pytest.approx(1.57, abs=0.01)
    assert expected_max_sharpe(45, 1.0) / math.sqrt(5) == pytest.approx(1.0, abs=0.01)


def test_agrees_with_vectorbt_dsr_and_expected_max():
    from vectorbt.returns import metrics as vm

    for n, var, sr, t, g3, g4 in [(100, 0.002, 0.158, 1250, -3.0, 10.0), (7, 0.01, 0.05, 300, 0.4, 4.0)]:
        assert expected_max_sharpe(n, var) == pytest.approx(vm.approx_exp_max_sharpe(0.0, var, n), rel=1e-12)
        ref = vm.deflated_sharpe_ratio(est_sharpe=np.array([sr]), var_sharpe=var, nb_trials=n, backtest_horizon=t,
                                       skew=np.array([g3]), kurtosis=np.array([g4]))[0]
        assert dsr_from_moments(sr, t, g3, g4, n, var) == pytest.approx(ref, rel=1e-12)


def test_deflated_sharpe_ratio_of_returns_matches_vectorbt_accessor():
    import vectorbt  # noqa: F401

    r = _returns(400)
    var_annual = 0.8
    acc = r.vbt.returns(freq="1D", year_freq="252D")
    ref = acc.deflated_sharpe_ratio(var_sharpe=var_annual, nb_trials=20)
    assert deflated_sharpe_ratio(r, 20, var_annual / 252) == pytest.approx(float(ref), rel=1e-10)


# ---- Monte Carlo (no published PSR example could be retrieved: see the report) ----------------------
def test_psr_matches_monte_carlo_for_iid_normal_returns():
    """For iid Normal returns with true per-period Sharpe s, P(SR_hat > SR*) over many samples is the
    PSR formula evaluated at s: the formula's sampling distribution of SR_hat is right."""
    rng = np.random.default_rng(11)
    t, reps, s = 250, 10_000, 0.1
    r = s + rng.standard_normal((reps, t))
    sr_hat = r.mean(1) / r.std(1, ddof=1)
    for bench in (0.0, 0.05, 0.12):
        assert (sr_hat > bench).mean() == pytest.approx(psr_from_moments(s, t, 0.0, 3.0, bench), abs=0.012)


def test_sr_standard_error_matches_monte_carlo_for_skewed_returns():
    """The PSR denominator sqrt((1 - γ3·SR + (γ4-1)/4·SR²)/(T-1)) is the standard error of SR_hat under
    skewed, fat-tailed returns (centred exponential: skew ±2, kurtosis 9), unlike the Normal one."""
    rng = np.random.default_rng(5)
    t, reps, s = 500, 10_000, 0.1
    for sign in (-1, 1):
        x = sign * (rng.exponential(1.0, (reps, t)) - 1.0)
        r = s + x
        se_mc = (r.mean(1) / r.std(1, ddof=1)).std()
        g3, g4 = 2.0 * sign, 9.0
        se_formula = math.sqrt((1 - g3 * s + (g4 - 1) / 4 * s * s) / (t - 1))
        se_normal = math.sqrt((1 + s * s / 2) / (t - 1))
        assert se_mc == pytest.approx(se_formula, rel=0.03)
        assert abs(se_mc / se_normal - 1) > 0.08


# ---- properties ----------------------------------------------------------------------------------
def test_psr_increases_with_sharpe_and_track_record():
    srs = [psr_from_moments(s, 250, -0.5, 5.0, 0.02) for s in (0.0, 0.03, 0.06, 0.1)]
    assert all(a < b for a, b in zip(srs, srs[1:]))
    ts = [psr_from_moments(0.05, t, -0.5, 5.0, 0.0) for t in (30, 100, 250, 1000)]
    assert all(a < b for a, b in zip(ts, ts[1:]))
    assert psr_from_moments(0.05, 250, 0.0, 3.0, 0.05) == pytest.approx(0.5)
    # negative skew and fat tails lower the confidence in a positive Sharpe
    assert psr_from_moments(0.1, 250, -2.0, 9.0) < psr_from_moments(0.1, 250, 0.0, 3.0)


def test_dsr_at_most_psr_and_expected_max_increasing():
    r = _returns()
    psr0 = probabilistic_sharpe_ratio(r)
    assert deflated_sharpe_ratio(r, 1, 0.003) == pytest.approx(psr0)
    dsrs = [deflated_sharpe_ratio(r, n, 0.003) for n in (2, 10, 100, 1000)]
    assert all(d <= psr0 for d in dsrs) and all(a > b for a, b in zip(dsrs, dsrs[1:]))
    em = [expected_max_sharpe(n, 0.5) for n in (1, 2, 5, 10, 100, 1000, 10_000)]
    assert em[0] == 0.0 and all(a < b for a, b in zip(em, em[1:]))
    assert expected_max_sharpe(1, 0.5, sr_mean=0.3) == 0.3
    assert expected_max_sharpe(10, 0.0, sr_mean=0.3) == 0.3  # zero variance: no selection bias


def test_expected_max_sharpe_matches_simulation():
    """The approximation is close to the simulated mean of the maximum of N Normal Sharpe ratios."""
    rng = np.random.default_rng(3)
    for n in (10, 100):
        sim = rng.normal(0.0, 0.2, (20_000, n)).max(1).mean()
        assert expected_max_sharpe(n, 0.04) == pytest.approx(sim, rel=0.03)


def test_min_track_record_length_inverts_psr():
    for sr, g3, g4, bench, p in [(0.1, -1.0, 6.0, 0.02, 0.95), (0.05, 0.0, 3.0, 0.0, 0.9), (0.2, 1.0, 4.0, 0.1, 0.99)]:
        n = min_track_record_length(sr, g3, g4, bench, p)
        assert psr_from_moments(sr, n, g3, g4, bench) == pytest.approx(p)
    assert min_track_record_length(0.05, 0.0, 3.0, 0.05) == math.inf
    assert min_track_record_length(0.01, 0.0, 3.0, 0.05) == math.inf
    # longer track record needed for a benchmark closer to the observed Sharpe
    assert min_track_record_length(0.1, 0, 3, 0.05) > min_track_record_length(0.1, 0, 3, 0.0)


# ---- library cross-checks ------------------------------------------------------------------------
def test_sharpe_ratio_matches_empyrical_and_vectorbt():
    import empyrical
    import vectorbt  # noqa: F401

    r = _returns(300, mu=0.0004, sd=0.012, seed=9)
    for rf in (0.0, 0.04):
        ours = sharpe_ratio(r, risk_free=rf)
        assert ours == pytest.approx(empyrical.sharpe_ratio(r, risk_free=rf / 252), rel=1e-12)
        acc = r.vbt.returns(freq="1D", year_freq="252D")
        assert ours == pytest.approx(acc.sharpe_ratio(risk_free=rf / 252), rel=1e-12)
    assert sharpe_ratio(r, annualize=False) * math.sqrt(252) == pytest.approx(sharpe_ratio(r))
    assert sharpe_ratio(r, periods_per_year=52) == pytest.approx(sharpe_ratio(r, annualize=False) * math.sqrt(52))


def test_moments_are_scipy_biased_moments():
    from scipy import stats

    r = _returns(200).to_numpy()
    sr, n, g3, g4 = sharpe_moments(r)
    assert n == 200 and sr == pytest.approx(r.mean() / r.std(ddof=1))
    assert g3 == pytest.approx(stats.skew(r)) and g4 == pytest.approx(stats.kurtosis(r, fisher=False))
    assert probabilistic_sharpe_ratio(r, 0.01) == pytest.approx(psr_from_moments(sr, n, g3, g4, 0.01))


# ---- degenerate input ----------------------------------------------------------------------------
def test_degenerate_inputs_give_nan_without_raising():
    with np.errstate(all="raise"):
        for r in ([], [0.01], [0.01, 0.02], [0.1] * 50, [0.0] * 10, [np.nan, np.nan, np.nan]):
            assert math.isnan(probabilistic_sharpe_ratio(r))
            assert math.isnan(deflated_sharpe_ratio(r, 10, 0.01))
        for r in ([], [0.01], [0.1] * 50, [0.0] * 10):
            assert math.isnan(sharpe_ratio(r))
    assert not math.isnan(sharpe_ratio([0.01, 0.02]))
    assert sharpe_ratio([0.01, np.nan, 0.02, 0.03]) == pytest.approx(sharpe_ratio([0.01, 0.02, 0.03]))
    assert math.isnan(psr_from_moments(0.1, 2, 0.0, 3.0))
    assert math.isnan(psr_from_moments(float("nan"), 100, 0.0, 3.0))
    assert math.isnan(psr_from_moments(2.0, 100, 3.0, 3.0))  # variance term 1 - 6 + 2 < 0
    assert math.isnan(min_track_record_length(float("nan"), 0.0, 3.0))
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="sr_variance"):
        expected_max_sharpe(5, -0.1)
