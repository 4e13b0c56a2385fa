"""research.validation.overfitting: PBO by CSCV, DSR of the best, stability map and plateau score."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from research.validation.overfitting import (
    block_stats,
    column_metric,
    dsr_of_best,
    dsr_of_combo,
    metric_from_stats,
    pbo_cscv,
    plateau_score,
    stability_map,
)
from research.validation.sharpe import (
    dsr_from_moments,
    psr_from_moments,
    sharpe_moments,
    sharpe_ratio,
)


def _brute_force_pbo(x: np.ndarray, s: int, metric) -> tuple[np.ndarray, np.ndarray]:
    """Literal CSCV: loop over splits, concatenate rows, scipy average ranks."""
    from scipy.stats import rankdata

    blocks = np.array_split(np.arange(x.shape[0]), s)
    logits, best = [], []
    for comb in itertools.combinations(range(s), s // 2):
        rest = [b for b in range(s) if b not in comb]
        is_rows = np.concatenate([blocks[b] for b in comb])
        oos_rows = np.concatenate([blocks[b] for b in rest])
        mi = np.nan_to_num(metric(x[is_rows]), nan=-np.inf)
        mo = np.nan_to_num(metric(x[oos_rows]), nan=-np.inf)
        k = int(np.argmax(mi))
        omega = rankdata(mo, method="average")[k] / (x.shape[1] + 1)
        logits.append(math.log(omega / (1 - omega)))
        best.append(k)
    return np.array(logits), np.array(best)


def _sharpe_cols(m: np.ndarray) -> np.ndarray:
    sd = m.std(axis=0, ddof=1)
    return np.where(sd > 0, m.mean(axis=0) / np.where(sd > 0, sd, 1), np.nan)


# ---------------------------------------------------------------- PBO


def test_pbo_hand_case_s4_three_columns():
    # 4 blocks of 2 equal rows; block means: A = 3,1,0,2  B = 1,2,3,0  C = 2,0,1,1
    means = np.array([[3, 1, 2], [1, 2, 0], [0, 3, 1], [2, 0, 1]], float)
    x = np.repeat(means, 2, axis=0)
    res = pbo_cscv(pd.DataFrame(x, columns=list("ABC")), n_splits=4, metric="mean")
    # splits in itertools order: IS {0,1} {0,2} {0,3} {1,2} {1,3} {2,3}
    # IS {0,1}: A 2, B 1.5, C 1 -> A; OOS {2,3}: A 1, B 1.5, C 1 -> A ties C at the bottom, rank 1.5
    #   omega = 1.5 / 4 = 0.375, lambda = ln(0.375 / 0.625) = ln 0.6
    # IS {0,2}: B (2); OOS {1,3}: A 1.5, B 1, C 0.5 -> rank 2, omega 0.5, lambda 0
    # IS {0,3}: A (2.5); OOS {1,2}: A 0.5, B 2.5, C 0.5 -> rank 1.5 -> ln 0.6
    # IS {1,2}: B (2.5); OOS {0,3}: A 2.5, B 0.5, C 1.5 -> rank 1, omega 0.25 -> ln(1/3)
    # IS {1,3}: A (1.5); OOS {0,2}: A 1.5, B 2, C 1.5 -> rank 1.5 -> ln 0.6
    # IS {2,3}: B (1.5); OOS {0,1}: A 2, B 1.5, C 1 -> rank 2 -> 0
    ln6, third = math.log(0.6), math.log(1 / 3)
    np.testing.assert_allclose(res.logits, [ln6, 0.0, ln6, third, ln6, 0.0], atol=1e-12)
    assert list(res.is_best) == ["A", "B", "A", "B", "A", "B"]
    np.testing.assert_allclose(res.oos_rank, [0.375, 0.5, 0.375, 0.25, 0.375, 0.5])
    assert res.pbo == 1.0  # every lambda <= 0
    assert res.prob_oos_loss == 0.0  # every OOS mean is positive
    assert res.n_combinations == 6 and res.n_splits == 4 and res.dropped_rows == 0
    np.testing.assert_allclose(res.is_metric, [2, 2, 2.5, 2.5, 1.5, 1.5])
    np.testing.assert_allclose(res.oos_metric, [1, 1, 0.5, 0.5, 1.5, 1.5])


def test_pbo_matches_brute_force_sharpe():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, (120, 7))
    x[:, 2] += 0.1
    res = pbo_cscv(x, n_splits=6, metric="sharpe")
    logits, best = _brute_force_pbo(x, 6, _sharpe_cols)
    np.testing.assert_allclose(res.logits, logits, atol=1e-9)
    np.testing.assert_array_equal(res.is_best.astype(int), best)
    # a callable metric gives the same answer through the slow path
    res_c = pbo_cscv(x, n_splits=6, metric=_sharpe_cols)
    np.testing.assert_allclose(res_c.logits, logits, atol=1e-9)


def test_pbo_planted_edge_is_near_zero():
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 1.0, (800, 40))
    x[:, 17] += 0.5  # a genuine edge present in every block
    res = pbo_cscv(x, n_splits=16)
    assert res.n_combinations == 12_870
    assert res.pbo < 0.02
    assert (res.is_best == 17).mean() > 0.98
    assert res.prob_oos_loss < 0.02


def test_pbo_pure_noise_is_near_half():
    rng = np.random.default_rng(2024)
    x = rng.normal(0.0, 1.0, (960, 50))
    res = pbo_cscv(pd.DataFrame(x), n_splits=16)
    assert 0.35 <= res.pbo <= 0.65
    assert np.isfinite(res.degradation["slope"])
    assert res.degradation["slope"] < 0.5  # IS success does not carry OOS


def test_pbo_large_grid_runs():
    rng = np.random.default_rng(0)
    res = pbo_cscv(rng.normal(size=(512, 1000)), n_splits=16)
    assert res.logits.shape == (12_870,) and res.n_configs == 1000


def test_pbo_drops_oldest_remainder_rows():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(103, 4))
    res = pbo_cscv(x, n_splits=10)
    assert res.dropped_rows == 3 and res.n_obs == 100 and res.notes
    ref = pbo_cscv(x[3:], n_splits=10)
    np.testing.assert_array_equal(res.logits, ref.logits)


def test_pbo_zero_variance_columns_rank_worst_and_ties_average():
    rng = np.random.default_rng(9)
    good = rng.normal(0.3, 1.0, 160)
    x = np.column_stack([np.zeros(160), good, good, np.full(160, 2.0)])  # flat, twin, twin, constant
    res = pbo_cscv(x, n_splits=8)
    assert set(res.is_best.astype(int)) == {1}  # first of the tied twins; flat columns never chosen
    # OOS: two flat columns tie at the bottom (ranks 1, 2), the twins tie at the top (3.5 each)
    np.testing.assert_allclose(res.oos_rank, 3.5 / 5)
    assert res.pbo == 0.0


def test_pbo_input_errors():
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(np.zeros((40, 3)), n_splits=5)
    with pytest.raises(ValueError, match="at least 2 configurations"):
        pbo_cscv(np.zeros((40, 1)), n_splits=4)
    with pytest.raises(ValueError, match="too few"):
        pbo_cscv(np.zeros((10, 3)), n_splits=8)
    with pytest.raises(ValueError, match="NaN"):
        pbo_cscv(np.full((40, 3), np.nan), n_splits=4)
    with pytest.raises(ValueError, match="unknown metric"):
        pbo_cscv(np.ones((40, 3)), n_splits=4, metric="calmar")


# ---------------------------------------------------------------- block statistics


@pytest.mark.parametrize("metric", ["sharpe", "mean", "sortino", "profit_factor"])
def test_block_stat_metrics_equal_direct(metric):
    rng = np.random.default_rng(1)
    x = rng.normal(50.0, 400.0, (96, 5))  # $ P&L with a large mean: checks the centring
    st = block_stats(x, 8)
    pick = [0, 3, 4, 7]
    summed = {k: st[k][pick].sum(axis=0) for k in ("s1", "s2", "pos", "neg", "down2")}
    got = metric_from_stats(metric, st["n"] * 4, st["centre"], scale=st["scale"], **summed)
    rows = np.concatenate([np.arange(b * 12, (b + 1) * 12) for b in pick])
    sub = x[rows]
    direct = {
        "sharpe": np.array([sharpe_ratio(sub[:, j], annualize=False) for j in range(5)]),
        "mean": sub.mean(axis=0),
        "sortino": sub.mean(axis=0) / np.sqrt((np.minimum(sub, 0) ** 2).mean(axis=0)),
        "profit_factor": np.maximum(sub, 0).sum(axis=0) / -np.minimum(sub, 0).sum(axis=0),
    }[metric]
    np.testing.assert_allclose(got, direct, rtol=1e-10)


def test_column_metric_undefined_is_nan():
    x = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    sr = column_metric(x, "sharpe")
    assert np.isnan(sr[0]) and np.isfinite(sr[1])
    assert np.isnan(column_metric(x, "profit_factor")[0])  # no losing day


# ---------------------------------------------------------------- DSR of the best


def test_dsr_of_best_falls_with_more_noise_trials():
    rng = np.random.default_rng(7)
    t = 750
    z = rng.normal(size=t)
    edge = 150.0 + 1000.0 * (z - z.mean()) / z.std(ddof=1)  # realised Sharpe exactly 0.15 per day
    dsr = []
    for n_noise in (10, 100, 1000):
        cols = np.column_stack([edge, rng.normal(0.0, 1000.0, (t, n_noise))])
        out = dsr_of_best(pd.DataFrame(cols), capital=100_000.0)
        dsr.append(out["dsr"])
        assert out["best"] == 0 and out["sharpe_per_period"] == pytest.approx(0.15)
        assert out["n_trials"] == n_noise + 1 and out["n_obs"] == t
        assert out["psr"] >= out["dsr"]
        assert out["sharpe"] == pytest.approx(out["sharpe_per_period"] * math.sqrt(252))
    assert dsr[0] > dsr[1] > dsr[2]


def test_dsr_of_best_fields_and_trials_override():
    rng = np.random.default_rng(8)
    df = pd.DataFrame(rng.normal(10.0, 100.0, (300, 5)), columns=[10, 11, 12, 13, 14])
    out = dsr_of_best(df, capital=50_000.0, n_trials=40)
    best = df.mean().div(df.std()).idxmax()
    assert out["best"] == best and out["n_trials"] == 40
    assert out["sr_variance"] == pytest.approx(np.var((df / 50_000).mean() / (df / 50_000).std(), ddof=1))
    assert out["expected_max_sharpe"] > 0
    with pytest.raises(ValueError, match="below"):
        dsr_of_best(df, capital=50_000.0, n_trials=2)


def _edge(t: int = 500, sr: float = 0.12, seed: int = 9) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=t)
    return 1000.0 * sr + 1000.0 * (z - z.mean()) / z.std(ddof=1)  # realised per-session Sharpe exactly `sr`


def test_dsr_of_best_counts_undefined_sharpe_as_zero():
    # one configuration traded, nine never did (zero P&L: Sharpe undefined). Leaving the nine out of
    # the SR variance gave variance 0, E[max SR] 0 and DSR == PSR whatever the number of trials.
    cols = np.column_stack([_edge(), np.zeros((500, 9))])
    out = dsr_of_best(pd.DataFrame(cols), capital=100_000.0)
    assert out["best"] == 0 and out["n_undefined_sharpe"] == 9
    assert out["sr_variance"] == pytest.approx(np.var([0.12] + [0.0] * 9, ddof=1))
    assert out["expected_max_sharpe"] > 0.05
    assert out["dsr"] < 0.95 < out["psr"] and out["note"] == ""  # was DSR == PSR > 0.95
    more = dsr_of_best(pd.DataFrame(cols), capital=100_000.0, n_trials=1000)
    assert more["dsr"] < out["dsr"]  # more trials deflate more


def test_dsr_of_best_without_sr_variance_is_undefined_not_psr():
    one = pd.DataFrame({"a": _edge()})
    out = dsr_of_best(one, capital=100_000.0, n_trials=50)  # 49 other trials, but no variance to scale them
    assert math.isnan(out["dsr"]) and math.isnan(out["expected_max_sharpe"]) and out["psr"] > 0.99
    assert "cannot be estimated" in out["note"]
    alone = dsr_of_best(one, capital=100_000.0)  # a single trial: nothing to deflate, DSR = PSR(0)
    assert alone["dsr"] == pytest.approx(alone["psr"]) and alone["note"] == ""
    with pytest.raises(ValueError, match="no column has a defined sharpe"):
        dsr_of_best(pd.DataFrame(np.zeros((50, 3))), capital=100_000.0)


def test_dsr_of_combo_uses_the_searchs_trials_and_variance():
    rng = np.random.default_rng(10)
    df = pd.DataFrame(rng.normal(0.0, 1000.0, (400, 8)))
    df[3] += 150.0
    best = dsr_of_best(df, capital=100_000.0, n_trials=30)
    for combo in (3, 6):
        out = dsr_of_combo(df, 100_000.0, combo, n_trials=30, sr_variance=best["sr_variance"])
        sr, n, g3, g4 = sharpe_moments(df[combo] / 100_000.0)
        assert out["combo"] == combo and out["n_obs"] == 400
        assert out["dsr"] == pytest.approx(dsr_from_moments(sr, n, g3, g4, 30, best["sr_variance"]))
        assert out["psr"] == pytest.approx(psr_from_moments(sr, n, g3, g4))
    assert best["best"] == 3 and best["dsr"] == dsr_of_combo(df, 100_000.0, 3, n_trials=30,
                                                              sr_variance=best["sr_variance"])["dsr"]


# ---------------------------------------------------------------- stability map / plateau


def _grid_table() -> pd.DataFrame:
    rows = []
    for stop, target, width in itertools.product([5, 7, 9], [10, 14], [8, 10]):
        rows.append({"stop_ticks": stop, "target_ticks": target, "base_max_width_ticks": width,
                     "sharpe": stop / 10 + target / 100 + (0.5 if width == 10 else 0.0)})
    return pd.DataFrame(rows).rename_axis("combo")


def test_stability_map_pivot():
    table = _grid_table()
    pv = stability_map(table, "stop_ticks", "target_ticks", "sharpe", agg="max")
    assert pv.shape == (2, 3)
    assert list(pv.columns) == [5, 7, 9] and list(pv.index) == [10, 14]
    assert pv.loc[14, 9] == pytest.approx(0.9 + 0.14 + 0.5)
    med = stability_map(table, "stop_ticks", "target_ticks", "sharpe", agg="median")
    assert med.loc[10, 5] == pytest.approx(0.5 + 0.1 + 0.25)
    with pytest.raises(KeyError, match="nope"):
        stability_map(table, "nope", "target_ticks")


def test_plateau_verdicts():
    plateau = pd.DataFrame([[0.8, 0.9, 0.85], [0.9, 1.0, 0.95], [0.85, 0.9, 0.8]])
    out = plateau_score(plateau)
    assert out["verdict"] == "plateau" and not out["on_edge"]
    assert out["best"] == 1.0 and out["n_neighbours"] == 8
    assert out["ratio"] == pytest.approx(np.mean([0.8, 0.9, 0.85, 0.9, 0.95, 0.85, 0.9, 0.8]))
    assert out["share_near_best"] == 1.0  # every cell >= 0.8

    spike = pd.DataFrame([[0.0, 0.1, 0.0], [0.1, 1.0, 0.0], [0.0, 0.1, 0.1]])
    out = plateau_score(spike)
    assert out["verdict"] == "spike" and out["ratio"] == pytest.approx(0.05)
    assert out["share_near_best"] == pytest.approx(1 / 9)

    shoulder = pd.DataFrame([[0.6] * 3, [0.6, 1.0, 0.6], [0.6] * 3])
    assert plateau_score(shoulder)["verdict"] == "shoulder"

    corner = pd.DataFrame([[1.0, 0.9], [0.9, 0.95]], index=[1, 2], columns=[5, 6])
    out = plateau_score(corner)
    assert out["verdict"] == "plateau" and out["on_edge"] and "edge of the grid" in out["explanation"]
    assert (out["best_x"], out["best_y"]) == (5, 1)

    assert plateau_score(pd.DataFrame([[-0.2, -0.1]]))["verdict"] == "no edge"
    assert plateau_score(pd.DataFrame([[0.5, np.nan], [np.nan, np.nan]]))["verdict"] == "undetermined"
