"""Sharpe-ratio statistics of Bailey & López de Prado: PSR, expected maximum Sharpe, DSR, MinTRL.

Every function here works on *per-period* (not annualised) Sharpe ratios unless it says
otherwise: the statistics depend on the number of return observations, so an annual Sharpe
must be divided by ``sqrt(periods_per_year)`` first (and a variance of annual Sharpe ratios
by ``periods_per_year``). Kurtosis is always the non-excess (Pearson) kurtosis, 3 for
Normal returns.

References:

- D. H. Bailey, M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier",
  Journal of Risk 15(2): the probabilistic Sharpe ratio (PSR) and the minimum track
  record length (MinTRL).
- D. H. Bailey, M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
  Management 40(5): the expected maximum Sharpe ratio of N trials and the DSR.

Degenerate inputs (fewer than 3 observations for the moment-based statistics, constant
returns, non-finite values) give NaN; nothing here raises on zero variance.

Why written here: vectorbt has the expected maximum Sharpe and the DSR (``vectorbt.returns.metrics``;
``tests/research/validation/test_sharpe.py`` checks ours equal them to 1e-12) but no PSR and no MinTRL, gives -inf/NaN
for a single trial, and importing it costs ~3 s, which ``navale promote`` and the sweep report's
statistics would pay for three one-line formulas. empyrical has none of them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st

__all__ = [
    "EULER_GAMMA",
    "sharpe_ratio",
    "sharpe_moments",
    "psr_from_moments",
    "probabilistic_sharpe_ratio",
    "expected_max_sharpe",
    "dsr_from_moments",
    "deflated_sharpe_ratio",
    "min_track_record_length",
]

EULER_GAMMA = 0.5772156649015329  # Euler-Mascheroni constant
NAN = float("nan")


def _clean(returns) -> np.ndarray:
    """Returns as a float array without NaNs."""
    r = np.asarray(returns, dtype=np.float64).ravel()
    return r[~np.isnan(r)]


def _per_period_sr(r: np.ndarray) -> float:
    """mean / std (ddof=1), NaN for fewer than 2 values, constant or non-finite returns."""
    # np.std of a constant array can come out as 1e-19 rather than 0 (the mean is rounded), which
    # would make a huge Sharpe: constant inputs are detected exactly with the range instead.
    if len(r) < 2 or not np.isfinite(r).all() or np.ptp(r) == 0:
        return NAN
    return float(r.mean() / r.std(ddof=1))


def sharpe_ratio(returns, *, risk_free: float = 0.0, periods_per_year: int = 252, annualize: bool = True) -> float:
    """Sharpe ratio of periodic returns: mean(r - rf) / std(r - rf, ddof=1), times sqrt(periods_per_year)
    when ``annualize``.

    ``risk_free`` is an annual rate, converted to ``risk_free / periods_per_year`` per period (simple,
    not compounded, like the fixed-size P&L / capital returns it is used with). Same definition as
    vectorbt's returns accessor and ``empyrical.sharpe_ratio`` given that per-period rate
    (checked in ``tests/research/validation/test_sharpe.py``); hand-written so that constant or too-short inputs give
    NaN without numpy warnings. NaNs in ``returns`` are dropped.
    """
    r = _clean(returns) - risk_free / periods_per_year
    sr = _per_period_sr(r)
    return sr * math.sqrt(periods_per_year) if annualize else sr


def sharpe_moments(returns) -> tuple[float, int, float, float]:
    """(per-period Sharpe ratio, number of observations, skewness, non-excess kurtosis) of ``returns``.

    Skewness and kurtosis are the biased sample moments (``scipy.stats.skew``, ``kurtosis(fisher=False)``),
    as in Bailey & López de Prado and vectorbt's DSR. NaN moments for fewer than 3 observations or
    constant returns.
    """
    r = _clean(returns)
    n = len(r)
    sr = _per_period_sr(r)
    if n < 3 or math.isnan(sr):
        return sr if n >= 2 else NAN, n, NAN, NAN
    return sr, n, float(st.skew(r)), float(st.kurtosis(r, fisher=False))


def psr_from_moments(sr: float, n_obs: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0) -> float:
    """Probabilistic Sharpe ratio: the probability that the true Sharpe ratio exceeds ``sr_benchmark``,

        PSR = Φ( (SR - SR*) · sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4 · SR²) )

    with SR the observed per-period Sharpe ratio over T = ``n_obs`` returns, γ3 their skewness and
    γ4 their non-excess kurtosis (3 for Normal returns). Bailey & López de Prado (2012).
    NaN when T < 3, an input is not finite, or the variance term is not positive.
    """
    vals = (sr, skew, kurtosis, sr_benchmark)
    if n_obs < 3 or not all(math.isfinite(v) for v in vals):
        return NAN
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0:
        return NAN
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)
    return float(st.norm.cdf(z))


def probabilistic_sharpe_ratio(returns, sr_benchmark: float = 0.0) -> float:
    """PSR of ``returns`` (taken as excess returns) against the per-period benchmark Sharpe ratio
    ``sr_benchmark``; moments from :func:`sharpe_moments`. NaN for degenerate input."""
    sr, n, g3, g4 = sharpe_moments(returns)
    return psr_from_moments(sr, n, g3, g4, sr_benchmark)


def expected_max_sharpe(n_trials: int, sr_variance: float, sr_mean: float = 0.0) -> float:
    """Expected maximum of ``n_trials`` independent Sharpe-ratio estimates under the null of no skill,

        E[max SR] ≈ sr_mean + sqrt(V) · ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))

    with V = ``sr_variance`` the variance of the trials' Sharpe ratios and γ the Euler-Mascheroni
    constant (Bailey & López de Prado 2014, after the false strategy theorem). ``n_trials == 1``
    gives ``sr_mean``. Per-period Sharpe units in and out.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, not {n_trials}")
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, not {sr_variance}")
    if n_trials == 1:
        return float(sr_mean)
    if not (math.isfinite(sr_variance) and math.isfinite(sr_mean)):
        return NAN
    z = (1 - EULER_GAMMA) * st.norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * st.norm.ppf(1 - 1 / (n_trials * math.e))
    return float(sr_mean + math.sqrt(sr_variance) * z)


def dsr_from_moments(sr: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, sr_variance: float) -> float:
    """Deflated Sharpe ratio: the PSR against the expected maximum Sharpe ratio of ``n_trials``
    zero-skill trials whose per-period Sharpe ratios have variance ``sr_variance``
    (Bailey & López de Prado 2014). With ``n_trials == 1`` it is PSR(0)."""
    return psr_from_moments(sr, n_obs, skew, kurtosis, expected_max_sharpe(n_trials, sr_variance))


def deflated_sharpe_ratio(returns, n_trials: int, sr_variance: float) -> float:
    """DSR of the selected trial's ``returns`` (excess returns); ``sr_variance`` is the variance of the
    per-period Sharpe ratios across all ``n_trials`` trials. NaN for degenerate input."""
    sr, n, g3, g4 = sharpe_moments(returns)
    return dsr_from_moments(sr, n, g3, g4, n_trials, sr_variance)


def min_track_record_length(sr: float, skew: float, kurtosis: float, sr_benchmark: float = 0.0,
                            prob: float = 0.95) -> float:
    """Minimum track record length (number of observations) for PSR(``sr_benchmark``) to reach ``prob``,

        MinTRL = 1 + (1 - γ3·SR + (γ4 - 1)/4 · SR²) · (Φ⁻¹(prob) / (SR - SR*))²

    (Bailey & López de Prado 2012; per-period SR, non-excess kurtosis γ4). ``inf`` when SR <= SR*
    (no track record is long enough); NaN for non-finite input or a non-positive variance term.
    """
    vals = (sr, skew, kurtosis, sr_benchmark)
    if not all(math.isfinite(v) for v in vals) or not 0 < prob < 1:
        return NAN
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0:
        return NAN
    if sr <= sr_benchmark:
        return math.inf
    return float(1.0 + var * (st.norm.ppf(prob) / (sr - sr_benchmark)) ** 2)
