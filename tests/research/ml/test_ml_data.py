"""ML data layer (research.ml): purged splits, leakage guard, as-of causality, bar features, cleaning, processor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import es5m_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ml_fixtures import fake_bar_context, fake_snapshots

from research.ml import features as F
from research.ml.bars import DELTA_Z_BARS, RV_BARS, BarContext, bar_context
from research.ml.clean import clean_snapshots
from research.ml.dataset import MLDataProcessor, MLDataset
from research.ml.features import (
    FEATURES,
    Feature,
    LeakageError,
    build_features,
    check_inputs,
    prior_day_outcomes,
)
from research.ml.splits import PurgedKFold, overlapping_pairs, time_split
from research.store import RunStore, build_manifest
from research.store import snapshots as snap
from research.store.snapshots import SnapshotError
from research.validation.causality import prefix_violations
from strategy.market.sessions import session_id

T = pd.Timestamp("2024-03-04 00:00", tz="UTC")
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ts(minutes) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T + pd.Timedelta(minutes=float(m)) for m in minutes])


@pytest.fixture(scope="module")
def snaps() -> pd.DataFrame:
    return fake_snapshots(240, seed=7)


@pytest.fixture(scope="module")
def ctx(snaps) -> BarContext:
    return fake_bar_context(snaps)


@pytest.fixture(scope="module")
def ds(snaps, ctx) -> MLDataset:
    return MLDataProcessor().from_frame(snaps, bars=ctx)


def _feature_frame(s: pd.DataFrame, ctx: BarContext) -> pd.DataFrame:
    """What the processor feeds the features: snapshots + decision_ts, session_date, labels, bar features, in time order."""
    f = s.copy()
    f["decision_ts"] = f["signal_ts"] + pd.Timedelta("5min")
    f["session_date"] = pd.Series(session_id(pd.DatetimeIndex(f["signal_ts"]))).astype(str).to_numpy()
    risk = (f["entry_price"] - f["stop_price"]).abs() / 0.25 * 12.5 * f["contracts"]
    f["y_win"] = ((f["exit_reason"] == "target") & (f["pnl_usd"] > 0)).astype(np.int64)
    f["y_r"] = f["pnl_usd"] / risk
    joined = ctx.frame.reindex(pd.DatetimeIndex(f["signal_ts"]))
    for c in F.BAR_COLUMNS:
        f[c] = joined[c].to_numpy()
    return f.sort_values(["decision_ts", "run_id", "trade_id"], kind="stable").reset_index(drop=True)


# ================================================================ PurgedKFold

def _check_folds(t0, t1, cv: PurgedKFold, embargo) -> None:
    n = len(t0)
    tests = []
    for train, test in cv.split():
        assert overlapping_pairs(t0, t1, train, test, embargo) == 0
        assert not set(train) & set(test)
        assert np.all(np.diff(test) == 1)  # a contiguous block
        # purging is not over-eager: every sample left out of both is an overlap or inside the embargo
        left_out = np.setdiff1d(np.arange(n), np.concatenate([train, test]))
        for i in left_out:
            assert overlapping_pairs(t0, t1, np.array([i]), test, embargo) > 0, i
        tests.append(test)
    assert np.array_equal(np.concatenate(tests), np.arange(n))  # a partition, in time order


def test_purged_kfold_on_fake_trades(ds):
    cv = PurgedKFold(5, t0=ds.t0, t1=ds.t1, embargo=ds.embargo)
    assert cv.get_n_splits() == 5
    _check_folds(ds.t0, ds.t1, cv, ds.embargo)
    # something was purged or embargoed (the label windows do reach into neighbouring blocks)
    assert sum(len(tr) + len(te) for tr, te in cv.split()) < 5 * len(ds)


@PROPS
@given(data=st.data(), n=st.integers(4, 60), k=st.integers(2, 6), emb=st.integers(0, 300))
def test_purged_kfold_property(data, n, k, emb):
    k = min(k, n)
    starts = data.draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    durs = data.draw(st.lists(st.integers(0, 600), min_size=n, max_size=n))
    order = np.argsort(starts, kind="stable")
    s = np.asarray(starts)[order]
    d = np.asarray(durs)[order]
    t0, t1 = _ts(s), _ts(s + d)
    embargo = pd.Timedelta(minutes=emb)
    _check_folds(t0, t1, PurgedKFold(k, t0=t0, t1=t1, embargo=embargo, min_train=0), embargo)


def test_purged_kfold_hand_built():
    # 9 samples an hour apart lasting 10 min; sample 1 is a long trade reaching into the second test block
    start = np.array([0, 60, 120, 180, 240, 300, 360, 360 + 1 / 60, 480], dtype=float)
    end = start + 10
    end[1] = 210  # 03:30, inside block 2 (03:00 .. 05:10)
    t0, t1 = _ts(start), _ts(end)
    cv = PurgedKFold(3, t0=t0, t1=t1, embargo="50min")
    folds = list(cv.split())
    assert [list(te) for _, te in folds] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    # block 1 ends at 03:30 (sample 1's exit): 3 overlaps it, 4 (04:00) is inside the embargo, 5 (05:00) is not
    assert list(folds[0][0]) == [5, 6, 7, 8]
    # block 2 spans 03:00 .. 05:10: the long trade 1 is purged; the embargo ends at 06:00 exactly:
    # sample 6 starting at 06:00 is dropped, sample 7 one second later is kept
    assert list(folds[1][0]) == [0, 2, 7, 8]
    assert list(folds[2][0]) == [0, 1, 2, 3, 4, 5]
    for tr, te in folds:
        assert overlapping_pairs(t0, t1, tr, te, "50min") == 0
    # the checker itself sees the leak an unpurged split would have
    assert overlapping_pairs(t0, t1, np.array([1, 6]), np.array([3, 4, 5]), "50min") == 2
    # no embargo: sample 6 comes back, the long trade stays purged
    assert list(list(PurgedKFold(3, t0=t0, t1=t1, embargo="0min").split())[1][0]) == [0, 2, 6, 7, 8]


def test_purged_kfold_errors():
    t0 = _ts([0, 10, 20, 30])
    t1 = _ts([5, 15, 25, 35])
    with pytest.raises(ValueError, match="ordered by t0"):
        PurgedKFold(2, t0=_ts([10, 0, 20, 30]), t1=_ts([15, 5, 25, 35]))
    with pytest.raises(ValueError, match="sample 2: label end t1 is before its start"):
        PurgedKFold(2, t0=t0, t1=_ts([5, 15, 19, 35]))
    with pytest.raises(ValueError, match="n_splits must be >= 2"):
        PurgedKFold(1, t0=t0, t1=t1)
    with pytest.raises(ValueError, match="differ in length"):
        PurgedKFold(2, t0=t0, t1=t1[:3])
    with pytest.raises(ValueError, match="embargo must be >= 0"):
        PurgedKFold(2, t0=t0, t1=t1, embargo="-5min")
    with pytest.raises(ValueError, match="4 samples cannot make 5 folds"):
        list(PurgedKFold(5, t0=t0, t1=t1).split())
    with pytest.raises(ValueError, match="X has 3 rows"):
        list(PurgedKFold(2, t0=t0, t1=t1).split(np.zeros((3, 1))))
    # everything purged: a clear error rather than an empty fit
    with pytest.raises(ValueError, match="training samples"):
        list(PurgedKFold(2, t0=t0, t1=_ts([100, 100, 100, 100])).split())


def test_purged_kfold_in_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    s = fake_snapshots(400, seed=11, signal=2.0)
    d = MLDataProcessor().from_frame(s, bars=fake_bar_context(s))
    cv = PurgedKFold(4, t0=d.t0, t1=d.t1, embargo=d.embargo)
    X = d.X[["battle_with", "side_sign", "atr_log", "tod_sin"]].to_numpy()
    scores = cross_val_score(LogisticRegression(max_iter=2000), X, d.y, cv=cv, scoring="roc_auc")
    assert scores.shape == (4,)
    assert np.all(np.isfinite(scores))
    assert scores.mean() > 0.6  # the planted battle effect is learnt across purged folds


# ================================================================ time_split

def test_time_split_hand_built():
    oos = pd.Timestamp("2021-01-01", tz="UTC")
    m = lambda s: oos + pd.Timedelta(s)
    t0 = pd.DatetimeIndex([m("-3D"), m("-1D"), m("-6h"), m("-2h"), m("0min"), m("1D")])
    t1 = pd.DatetimeIndex([m("-2D"), m("-250min") - pd.Timedelta("1s"), m("-250min"), m("2h"), m("30min"), m("25h")])
    # 0: closed long before; 1: closed one second before the embargo; 2: closed exactly at oos - embargo;
    # 3: open across the boundary; 4: decided exactly at oos_from; 5: later
    train, test = time_split(t0, t1, "2021-01-01", embargo="250min")
    assert list(train) == [0, 1]
    assert list(test) == [4, 5]
    # an unembargoed split still drops the trade open across the boundary
    train, test = time_split(t0, t1, oos, embargo="0min")
    assert list(train) == [0, 1, 2]
    assert 3 not in train and 3 not in test


def test_split_oos_on_dataset():
    s = fake_snapshots(500, seed=3, start="2020-09-01")
    d = MLDataProcessor().from_frame(s, bars=fake_bar_context(s))
    start = pd.Timestamp("2021-01-05 18:00", tz="UTC")  # mid-session: trades near the boundary exist
    tr, te = d.split_oos(start)
    assert len(tr) > 50 and len(te) > 50
    assert (te.t0 >= start).all()
    assert (tr.t1 < start - d.embargo).all()
    # the trades around the boundary (decided before it, label ending inside the embargo or later) are in neither
    near = (d.t0 < start) & (d.t1 >= start - d.embargo)
    assert near.sum() > 0 and len(tr) + len(te) + near.sum() == len(d)
    assert set(d.frame.loc[near, "trade_id"]).isdisjoint(set(tr.frame["trade_id"]) | set(te.frame["trade_id"]))
    # the default boundary is 2021-01-01 and a naive one is read as UTC
    assert d.split_oos()[1].t0.min() >= pd.Timestamp("2021-01-01", tz="UTC")
    assert len(d.split_oos("2021-01-05 18:00")[1]) == len(te)
    assert set(tr.frame["trade_id"]).isdisjoint(te.frame["trade_id"])
    assert tr.features == te.features == d.features
    assert te.t0.is_monotonic_increasing and tr.t0.is_monotonic_increasing


# ================================================================ leakage guard

def _const(d: pd.DataFrame) -> np.ndarray:
    return np.zeros(len(d))


@pytest.mark.parametrize("col, what", [
    ("pnl_usd", "outcome field"),
    ("exit_reason", "outcome field"),
    ("entry_price", "execution field"),
    ("commission_usd", "execution field"),
    ("intrabar_ambiguous", "audit field"),
    ("pnl_usd_optimistic", "audit field"),
    ("future_return", "not a snapshot context field"),
    ("y_win", "not a snapshot context field"),
    ("exit_ts", "key field"),
    ("entry_ts", "key field"),
])
def test_leaky_feature_refused(col, what, snaps, ctx):
    sneaky = Feature("sneaky", ("delta", col), "reads what it must not", _const)
    with pytest.raises(LeakageError, match=f"'sneaky' reads.*{col}.*{what}" if what != "key field" else "key field"):
        check_inputs(sneaky)
    frame = _feature_frame(snaps, ctx).assign(future_return=0.0)
    with pytest.raises(LeakageError, match="sneaky"):
        build_features(frame, FEATURES + (sneaky,), prior_day=False)
    with pytest.raises(LeakageError, match="sneaky"):
        MLDataProcessor(features=FEATURES + (sneaky,))


def test_undeclared_read_refused(snaps, ctx):
    cheat = Feature("cheat", ("delta",), "declares delta, reads the P&L", lambda d: d["pnl_usd"].to_numpy())
    check_inputs(cheat)  # its declaration is clean ...
    frame = _feature_frame(snaps, ctx)
    with pytest.raises(LeakageError, match="'cheat' reads column 'pnl_usd' it did not declare"):
        build_features(frame, (cheat,), prior_day=False)
    with pytest.raises(LeakageError, match="did not declare"):  # ... but the processor never lets it see it
        MLDataProcessor(features=FEATURES + (cheat,)).from_frame(snaps, bars=ctx)
    with pytest.raises(LeakageError, match="did not declare"):
        MLDataProcessor(features=FEATURES + (cheat,), check_causality=False).from_frame(snaps, bars=ctx)


def test_feature_without_inputs_refused():
    with pytest.raises(LeakageError, match="declares no inputs"):
        check_inputs(Feature("empty", (), "", _const))


def test_registry_reads_only_entry_context():
    forbidden = set(snap.names("outcome")) | set(snap.names("execution")) | set(snap.names("audit"))
    allowed = set(snap.names("context")) | F.ALLOWED_KEYS | set(F.BAR_COLUMNS) | set(F.DERIVED_COLUMNS)
    assert not forbidden & allowed
    assert not {"entry_ts", "exit_ts", "trade_id", "run_id"} & allowed
    assert len(FEATURES) > 20
    for f in FEATURES:
        assert f.inputs, f.name
        assert not set(f.inputs) & forbidden, f.name
        assert set(f.inputs) <= allowed, (f.name, set(f.inputs) - allowed)
    names = [f.name for f in FEATURES]
    assert len(set(names)) == len(names)
    assert F.feature_names() == tuple(names) + ("day_prior_trades", "day_prior_net_r", "day_prior_last")
    assert F.feature_names(prior_day=False) == tuple(names)


def test_registry_blind_to_outcomes(snaps, ctx):
    """Scrambling every outcome, execution and audit field (and the exit time) leaves the registry's features unchanged."""
    frame = _feature_frame(snaps, ctx)
    X = build_features(frame, prior_day=False)
    rng = np.random.default_rng(0)
    poisoned = frame.copy()
    for col in (*snap.names("outcome"), *snap.names("execution"), *snap.names("audit"), "exit_ts", "entry_ts",
                "y_win", "y_r"):
        poisoned[col] = poisoned[col].to_numpy()[rng.permutation(len(poisoned))]
    pd.testing.assert_frame_equal(build_features(poisoned, prior_day=False), X)
    assert np.isfinite(X.to_numpy()).all()


def test_build_features_errors(snaps, ctx):
    frame = _feature_frame(snaps, ctx)
    dup = (FEATURES[0], FEATURES[0])
    with pytest.raises(ValueError, match="duplicate feature names"):
        build_features(frame, dup, prior_day=False)
    with pytest.raises(KeyError, match="absent from the frame"):
        build_features(frame.drop(columns=["battle"]), prior_day=False)
    bad_shape = Feature("short", ("delta",), "", lambda d: np.zeros(3))
    with pytest.raises(ValueError, match="returned shape"):
        build_features(frame, (bad_shape,), prior_day=False)


# ================================================================ as-of causality

def _overlapping(s: pd.DataFrame, hours: float = 3) -> pd.DataFrame:
    """The same trades, each held ``hours``: the same day's trades overlap (the as-of rule then matters)."""
    out = s.copy()
    out["exit_ts"] = out["entry_ts"] + pd.Timedelta(hours=hours)
    return out


def _leaky_started_earlier(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts every earlier-decided same-day trade, whatever its exit time (a planted look-ahead)."""
    out = _HONEST(frame)
    key = (frame["run_id"].astype(str) + "|" + frame["session_date"].astype(str)).to_numpy()
    dec = pd.DatetimeIndex(frame["decision_ts"])
    known = frame["y_win"].notna().to_numpy() & frame["y_r"].notna().to_numpy()
    out["day_prior_trades"] = [float(((key == key[i]) & (dec < dec[i]) & known).sum()) for i in range(len(frame))]
    return out


def _leaky_exit_le_exit(frame: pd.DataFrame) -> pd.DataFrame:
    """Compares the other trades' exits with this trade's exit instead of its decision (a planted look-ahead)."""
    out = _HONEST(frame)
    key = (frame["run_id"].astype(str) + "|" + frame["session_date"].astype(str)).to_numpy()
    ext = pd.DatetimeIndex(frame["exit_ts"])
    r = frame["y_r"].to_numpy(np.float64)
    known = ~np.isnan(r) & frame["y_win"].notna().to_numpy()
    idx = np.arange(len(frame))
    out["day_prior_trades"] = [float(((key == key[i]) & (ext <= ext[i]) & known & (idx != i)).sum())
                               for i in range(len(frame))]
    out["day_prior_net_r"] = [float(r[(key == key[i]) & (ext <= ext[i]) & known & (idx != i)].sum())
                              for i in range(len(frame))]
    return out


_HONEST = prior_day_outcomes


def test_causality_clean_on_fake(snaps, ctx):
    assert F.causality_violations(_feature_frame(snaps, ctx)) == []
    # overlapping trades: the as-of rule is what keeps the prior-day family causal
    over = _feature_frame(_overlapping(snaps), ctx)
    assert F.causality_violations(over, cuts=12) == []
    assert F.causality_violations(over, cuts=list(range(1, 60))) == []


@pytest.mark.parametrize("leaky", [_leaky_started_earlier, _leaky_exit_le_exit])
def test_causality_catches_planted_prior_day_leak(leaky, snaps, ctx, monkeypatch):
    s = _overlapping(snaps)
    frame = _feature_frame(s, ctx)
    monkeypatch.setattr(F, "prior_day_outcomes", leaky)
    bad = F.causality_violations(frame, cuts=12)
    assert bad and all("day_prior" in b for b in bad), bad
    with pytest.raises(LeakageError, match="information after the decision"):
        MLDataProcessor(cuts=12).from_frame(s, bars=ctx)
    # without the check the leak goes through silently (which is why the check is on by default)
    MLDataProcessor(check_causality=False).from_frame(s, bars=ctx)


def test_causality_catches_future_bar_feature(snaps, ctx):
    """A registry-style feature that is fine row by row but built from the next trade's context is caught."""
    frame = _feature_frame(snaps, ctx)
    peek = Feature("next_delta", ("delta",), "the next trade's delta", lambda d: d["delta"].shift(-1).fillna(0).to_numpy())
    assert F.causality_violations(frame, (peek,), prior_day=False)


def _day_frame(rows) -> pd.DataFrame:
    cols = ["run_id", "session_date", "decision_ts", "exit_ts", "y_win", "y_r"]
    f = pd.DataFrame(rows, columns=cols)
    f["decision_ts"] = pd.to_datetime(f["decision_ts"], utc=True)
    f["exit_ts"] = pd.to_datetime(f["exit_ts"], utc=True)
    return f


def test_prior_day_outcomes_hand_built():
    d1, d2 = "2024-03-04", "2024-03-05"
    f = _day_frame([
        ("A", d1, "2024-03-04 15:00", "2024-03-04 15:30", 1, 2.0),    # 0
        ("A", d1, "2024-03-04 15:10", "2024-03-04 17:00", 0, -1.0),   # 1: closes after 2's decision
        ("A", d1, "2024-03-04 16:00", "2024-03-04 16:30", 0, -0.5),   # 2: sees 0 only
        ("A", d1, "2024-03-04 17:00", "2024-03-04 17:40", 1, 1.5),    # 3: 1 exits exactly at its decision: not yet
        ("B", d1, "2024-03-04 17:30", "2024-03-04 17:45", 0, -1.0),   # 4: other run: nothing
        ("A", d1, "2024-03-04 17:35", "2024-03-04 18:30", np.nan, np.nan),  # 5: unknown outcome; 3 still open
        ("A", d1, "2024-03-04 19:00", "2024-03-04 19:10", 1, 2.0),    # 6: all before, 5's unknown does not count
        ("A", d2, "2024-03-05 15:00", "2024-03-05 15:30", 1, 2.0),    # 7: other session: nothing
    ])
    out = prior_day_outcomes(f)
    assert list(out.columns) == ["day_prior_trades", "day_prior_net_r", "day_prior_last"]
    # strictly before the decision: an exit stamped at the decision instant (a fill at that bar's open) is not known
    assert out["day_prior_trades"].tolist() == [0, 0, 1, 2, 0, 3, 4, 0]
    np.testing.assert_allclose(out["day_prior_net_r"], [0, 0, 2.0, 1.5, 0, 0.5, 2.0, 0])
    # last outcome by exit time: at 17:00 it is trade 2 (16:30, lost); at 17:35 trade 1 (17:00, lost; 3 is still
    # open); at 19:00 trade 3 (17:40, won): trade 5 exited later but its outcome is unknown
    assert out["day_prior_last"].tolist() == [0, 0, 1, -1, 0, -1, 1, 0]
    pd.testing.assert_frame_equal(out, F._prior_day_reference(f))  # the loop-based second implementation agrees
    # index kept (not reset): aligns with the frame it came from
    g = f.set_index(pd.Index(range(100, 108)))
    assert list(prior_day_outcomes(g).index) == list(range(100, 108))
    with pytest.raises(KeyError, match="y_r"):
        prior_day_outcomes(f.drop(columns=["y_r"]))


def test_prior_day_never_counts_own_trade():
    """A trade whose exit stamp equals its own decision time must not see its own outcome."""
    f = _day_frame([
        ("A", "2024-03-04", "2024-03-04 15:00", "2024-03-04 15:00", 1, 2.0),  # degenerate: exit == decision
        ("A", "2024-03-04", "2024-03-04 15:00", "2024-03-04 15:20", 0, -1.0),
        ("A", "2024-03-04", "2024-03-04 16:00", "2024-03-04 16:00", 0, -1.0),
    ])
    out = prior_day_outcomes(f)
    # exits strictly before the decision: rows 0 and 1 see nothing (row 0's exit is at 15:00, not before);
    # row 2 sees rows 0 and 1, never itself
    assert out["day_prior_trades"].tolist() == [0, 0, 2]
    np.testing.assert_allclose(out["day_prior_net_r"], [0.0, 0.0, 1.0])
    assert out["day_prior_last"].tolist() == [0, 0, -1]


def test_asof_view_blanks_open_trades(snaps, ctx):
    frame = _feature_frame(_overlapping(snaps), ctx)
    t = frame["decision_ts"].iloc[40]
    v = F.asof_view(frame, t)
    assert (v["decision_ts"] <= t).all() and len(v) >= 41
    still_open = frame.loc[v.index, "exit_ts"] >= t
    assert still_open.any() and (~still_open).any()
    assert v.loc[still_open, "y_r"].isna().all() and v.loc[still_open, "pnl_usd"].isna().all()
    assert (v.loc[still_open, "exit_ts"] > frame["exit_ts"].max()).all()
    pd.testing.assert_series_equal(v.loc[~still_open, "y_r"], frame.loc[v.index[~still_open], "y_r"])
    # context untouched
    pd.testing.assert_series_equal(v["battle"], frame.loc[v.index, "battle"])


# ================================================================ bar features

@pytest.fixture(scope="module")
def synth_bars() -> pd.DataFrame:
    from research.pipeline import load_series

    return load_series(None)[0].frame


@pytest.fixture(scope="module")
def params():
    from strategy import Params

    return Params.for_mode("backtest")


def test_bar_context_prefix_invariant(synth_bars, params):
    bars = synth_bars.iloc[:4000]
    ctx = bar_context(bars, params)
    assert list(ctx.columns) == ["rv12_ticks", "delta_z20"]
    assert ctx.index.isin(bars.index).all() and len(ctx) < len(bars)  # in-session bars only
    assert ctx.notna().all(axis=1).sum() > 0.9 * len(ctx)

    def transform(part: pd.DataFrame) -> pd.DataFrame:
        return bar_context(part, params).reindex(part.index)

    cuts = [37, 500, 1234, 1999, 2000, 2718, 3333, 3999]
    assert prefix_violations(transform, bars, cuts) == []

    # negative control: the same check catches a look-ahead of one bar
    def peeking(part: pd.DataFrame) -> pd.DataFrame:
        return bar_context(part, params).shift(-1).reindex(part.index)

    assert prefix_violations(peeking, bars, cuts)


def test_bar_context_values(synth_bars, params):
    from strategy import compute_signals

    bars = synth_bars.iloc[:3000]
    ctx = bar_context(bars, params)
    sig = compute_signals(bars, params)
    ins = sig["in_session"].to_numpy(bool)
    close = bars.loc[ins, "close"].to_numpy() / 0.25
    delta = sig.loc[ins, "delta"].to_numpy()
    i = 500
    want_rv = np.std(np.diff(close[i - RV_BARS:i + 1]), ddof=1)
    prev = delta[i - DELTA_Z_BARS:i]
    want_z = (delta[i] - prev.mean()) / prev.std(ddof=1)
    assert ctx["rv12_ticks"].iloc[i] == pytest.approx(want_rv)
    assert ctx["delta_z20"].iloc[i] == pytest.approx(want_z)
    assert ctx["rv12_ticks"].iloc[:RV_BARS].isna().all() and np.isfinite(ctx["rv12_ticks"].iloc[RV_BARS])
    assert ctx["delta_z20"].iloc[:DELTA_Z_BARS].isna().all() and np.isfinite(ctx["delta_z20"].iloc[DELTA_Z_BARS])


def test_bar_context_does_not_cross_contract_change(synth_bars, params):
    bars = synth_bars.iloc[:4000].copy()
    plain = bar_context(bars, params)
    bars["contract"] = np.where(np.arange(len(bars)) < 2000, "ESH24", "ESM24")
    seg = bar_context(bars, params)
    assert seg.index.equals(plain.index)
    new = seg.index >= bars.index[2000]
    first = np.flatnonzero(new)[0]
    # the first bars of the new contract: warm-up again (no window reaches back into the old contract)
    assert seg["rv12_ticks"].iloc[first:first + RV_BARS].isna().all()
    assert np.isfinite(seg["rv12_ticks"].iloc[first + RV_BARS])
    assert seg["delta_z20"].iloc[first:first + DELTA_Z_BARS].isna().all()
    assert np.isfinite(seg["delta_z20"].iloc[first + DELTA_Z_BARS])
    # without the contract column the same bars have values (the NaN above comes from the segment cut)
    assert plain["rv12_ticks"].iloc[first:first + RV_BARS].notna().all()
    # the old contract is unchanged; the new one equals the new contract computed alone
    pd.testing.assert_frame_equal(seg.loc[~new], plain.loc[~new])
    alone = bar_context(bars.iloc[2000:], params)
    pd.testing.assert_frame_equal(seg.loc[new], alone)


def test_bar_context_from_signals_alignment(synth_bars, params):
    from research.ml.bars import bar_context_from_signals
    from strategy import compute_signals

    bars = synth_bars.iloc[:500]
    sig = compute_signals(bars, params)
    with pytest.raises(ValueError, match="not aligned"):
        bar_context_from_signals(bars, sig.iloc[1:])


# ================================================================ cleaning

def test_clean_snapshots_rejects_exactly_the_bad_rows(snaps):
    df = snaps.iloc[:60].copy()
    df["battle"] = df["battle"].astype(object)
    df["exit_reason"] = df["exit_reason"].astype(object)
    plant = {
        3: ("battle", "not a finite number"),
        7: ("confidence", "not a finite number"),
        11: ("delta", "null in a non-nullable field"),
        15: ("side", "not +1 or -1"),
        19: ("exit_reason", "unknown exit reason"),
        23: ("exit_ts", "before entry_ts"),
        27: ("trade_id", "duplicate"),
        31: ("stop_price", "not on the losing side"),
        35: ("status", "null in a non-nullable field"),
        39: ("entry_ts", "not after the signal bar"),
    }
    df.loc[3, "battle"] = "abc"
    df.loc[7, "confidence"] = np.inf
    df.loc[11, "delta"] = np.nan
    df.loc[15, "side"] = 0
    df.loc[19, "exit_reason"] = "moon"
    df.loc[23, "exit_ts"] = df.loc[23, "entry_ts"] - pd.Timedelta("1min")
    df.loc[27, "trade_id"] = df.loc[2, "trade_id"]
    df.loc[31, "stop_price"] = df.loc[31, "entry_price"] + df.loc[31, "side"] * 1.75
    df.loc[35, "status"] = None
    df.loc[39, "entry_ts"] = df.loc[39, "signal_ts"]
    valid, rejected = clean_snapshots(df, source="planted.parquet")
    assert list(rejected.columns) == ["source", "stage", "row", "run_id", "trade_id", "reason"]
    assert (rejected["stage"] == "schema").all()
    assert rejected["row"].tolist() == sorted(plant)
    assert (rejected["source"] == "planted.parquet").all()
    for row, reason in zip(rejected["row"], rejected["reason"]):
        field, words = plant[row]
        assert f"'{field}'" in reason or field in reason, (row, reason)
        assert words in reason, (row, reason)
    # the valid rows survive unchanged, in order, in the schema's canonical form
    keep = [i for i in range(len(df)) if i not in plant]
    pd.testing.assert_frame_equal(valid, snap.validate(snaps.iloc[keep].reset_index(drop=True)))
    # the duplicate keeps its first occurrence
    assert df.loc[2, "trade_id"] in set(valid["trade_id"])


def test_clean_snapshots_more_types(snaps):
    df = snaps.iloc[:12].copy()
    df["ball"] = df["ball"].astype(object)
    df["signal_ts"] = df["signal_ts"].astype(object)
    df["ldu"] = df["ldu"].astype(object)
    df.loc[1, "ball"] = 0.5             # not a whole number
    df.loc[2, "ball"] = 300             # out of int8
    df.loc[3, "signal_ts"] = pd.Timestamp("2019-01-02 15:00")  # naive
    df.loc[4, "ldu"] = "yes"
    df.loc[5, "contracts"] = 0
    df.loc[6, "atr14_ticks"] = np.nan   # nullable: fine here (the processor's warm-up rule handles it)
    valid, rejected = clean_snapshots(df, source="src")
    assert rejected["row"].tolist() == [1, 2, 3, 4, 5]
    reasons = rejected["reason"].tolist()
    assert "'ball'" in reasons[0] and "whole number" in reasons[0]
    assert "'ball'" in reasons[1] and "int8" in reasons[1]
    assert "'signal_ts'" in reasons[2] and "tz-aware" in reasons[2]
    assert "'ldu'" in reasons[3] and "boolean" in reasons[3]
    assert "'contracts'" in reasons[4]
    assert len(valid) == 7 and np.isnan(valid["atr14_ticks"].iloc[1])


def test_clean_snapshots_missing_column(snaps):
    with pytest.raises(SnapshotError, match=r"exports/a\.parquet: missing snapshot column\(s\): pnl_usd"):
        clean_snapshots(snaps.drop(columns=["pnl_usd"]), source="exports/a.parquet")


def test_clean_snapshots_all_good_and_extra_columns(snaps):
    valid, rejected = clean_snapshots(snaps.assign(extra_col=1), source="x")
    assert rejected.empty
    pd.testing.assert_frame_equal(valid, snaps)


# ================================================================ MLDataProcessor

def test_processor_end_to_end(ds, snaps, ctx):
    assert len(ds) == len(snaps) and ds.rejected.empty
    assert ds.features == F.feature_names()
    assert list(ds.X.columns) == list(ds.features)
    assert ds.X.dtypes.eq(np.float64).all() and np.isfinite(ds.X.to_numpy()).all()
    assert ds.t0.is_monotonic_increasing
    assert (ds.t0 == pd.DatetimeIndex(ds.frame["signal_ts"]) + pd.Timedelta("5min")).all()
    assert (ds.t1 >= ds.t0).all()
    # labels
    by_id = snaps.set_index("trade_id").loc[ds.frame["trade_id"]]
    want_win = ((by_id["exit_reason"] == "target") & (by_id["pnl_usd"] > 0)).astype(int).to_numpy()
    risk = (by_id["entry_price"] - by_id["stop_price"]).abs() / 0.25 * 12.5 * by_id["contracts"]
    np.testing.assert_array_equal(ds.y, want_win)
    np.testing.assert_allclose(ds.r, (by_id["pnl_usd"] / risk).to_numpy())
    assert 0.1 < ds.y.mean() < 0.6
    # a stop with 7 ticks of risk on 2 contracts: -8 ticks x 12.5 x 2 - 4 over 175 $
    assert ds.r[ds.y == 0] == pytest.approx(np.full((ds.y == 0).sum(), (-8 * 25 - 4) / 175))
    # outcomes are kept for the economic test but never in X
    for col in ("pnl_usd", "exit_reason", "exit_ts", "y_win", "y_r"):
        assert col in ds.frame.columns and col not in ds.X.columns
    # bar features joined at the signal bar
    j = ctx.frame.reindex(pd.DatetimeIndex(ds.frame["signal_ts"]))
    np.testing.assert_allclose(ds.X["rv12_log"], np.log1p(j["rv12_ticks"].to_numpy()))
    np.testing.assert_allclose(ds.X["delta_z_with"], ds.frame["side"].to_numpy() * j["delta_z20"].to_numpy())
    # the processor's features equal the registry built on the processor's input
    X = build_features(_feature_frame(snaps, ctx))
    np.testing.assert_allclose(ds.X.to_numpy(), X.to_numpy())
    # meta
    assert ds.meta["embargo"] == str(pd.Timedelta("250min")) and ds.embargo == pd.Timedelta("250min")
    assert ds.meta["feature_schema_version"] == F.FEATURE_SCHEMA_VERSION
    assert ds.meta["bar"] == str(pd.Timedelta("5min"))
    summ = ds.summary()
    assert summ["trades"] == len(ds) and summ["runs"] == ["fake-run"]


def test_processor_rejects_warmup_and_bad_rows(snaps, ctx):
    s = snaps.copy()
    s["side"] = s["side"].astype(np.int64)
    warm = [4, 40, 90]
    s.loc[warm, "atr14_ticks"] = np.nan
    s.loc[120, "rel_volume"] = np.nan
    s.loc[7, "side"] = 0  # rejected by the cleaning
    c = ctx.frame.copy()
    c.loc[s.loc[150, "signal_ts"], "rv12_ticks"] = np.nan
    d = MLDataProcessor().from_frame(s, bars=BarContext(c), source="planted")
    rej = d.rejected.set_index("trade_id")["reason"]
    ids = s["trade_id"]
    assert len(d) == len(s) - 6 and len(rej) == 6
    for i in warm:
        assert rej[ids[i]] == "warm-up: atr14_ticks is null"
    assert rej[ids[120]] == "warm-up: rel_volume is null"
    assert rej[ids[150]] == "warm-up: rv12_ticks is null"
    assert "'side'" in rej[ids[7]]
    assert (d.rejected["source"] == "planted").all()
    assert set(d.frame["trade_id"]).isdisjoint(rej.index)
    assert np.isfinite(d.X.to_numpy()).all()


def test_processor_needs_bars_or_opt_out(snaps):
    with pytest.raises(ValueError, match="run fake-run: the bar features need the bars"):
        MLDataProcessor().from_frame(snaps)
    proc = MLDataProcessor(bar_features=False)
    d = proc.from_frame(snaps)
    assert "rv12_log" not in d.features and "delta_z_with" not in d.features
    assert d.features == F.feature_names(proc.features)
    assert len(d.features) == len(F.feature_names()) - 2
    assert len(d) == len(snaps) and d.rejected.empty
    assert d.meta["bar_features"] is False
    assert not {"rv12_ticks", "delta_z20"} & set(d.frame.columns)
    # prior_day=False drops the as-of family
    d2 = MLDataProcessor(bar_features=False, prior_day=False).from_frame(snaps)
    assert d2.features == F.feature_names(proc.features, prior_day=False)


def test_from_parquet_round_trip(tmp_path, snaps, ctx, ds):
    p = tmp_path / "run.parquet"
    pq.write_table(snap.to_arrow(snaps), p)
    d = MLDataProcessor().from_parquet(p, bars={"fake-run": ctx})
    assert d.data_hash() == ds.data_hash()
    pd.testing.assert_frame_equal(d.X, ds.X)
    assert str(p) in d.meta["source"]


def test_from_parquet_rejects_rows_with_file_name(tmp_path, snaps, ctx):
    bad = snaps.copy()
    bad["side"] = bad["side"].astype(np.int64)
    bad.loc[5, "side"] = 0
    p = tmp_path / "dirty.parquet"
    bad.to_parquet(p, index=False)
    d = MLDataProcessor().from_parquet([p], bars=ctx)
    assert len(d) == len(snaps) - 1
    (row,) = d.rejected.itertuples()
    assert row.source == str(p) and row.row == 5 and "'side'" in row.reason


def test_from_parquet_schema_version_mismatch(tmp_path, snaps, ctx):
    table = snap.to_arrow(snaps)
    table = table.replace_schema_metadata({b"navale_snapshot_version": b"99"})
    p = tmp_path / "old.parquet"
    pq.write_table(table, p)
    with pytest.raises(SnapshotError, match=rf"{p.name}: snapshot schema version 99, this code reads {snap.SCHEMA_VERSION}"):
        MLDataProcessor().from_parquet(p, bars=ctx)
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        MLDataProcessor().from_parquet(tmp_path / "nope.parquet", bars=ctx)
    # a missing column names the file
    pq.write_table(snap.to_arrow(snaps).drop(["pnl_usd"]), tmp_path / "cut.parquet")
    with pytest.raises(SnapshotError, match=r"cut\.parquet: missing snapshot column"):
        MLDataProcessor().from_parquet(tmp_path / "cut.parquet", bars=ctx)


def test_from_store_two_runs(tmp_path):
    data = tmp_path / "bars.txt"
    data.write_bytes(b"Date,Time,Open\n2019-01-02,09:30,4000\n")
    s1 = fake_snapshots(120, seed=1, run_id="run-1")
    s2 = fake_snapshots(100, seed=2, run_id="run-2")
    db = tmp_path / "db" / "t.duckdb"
    with RunStore(db) as st:
        for rid, s, tsb in (("run-1", s1, 40), ("run-2", s2, 30)):
            man = build_manifest(params={"time_stop_bars": tsb}, params_hash=rid, data_files=[data], mode="backtest",
                                 session="rth")
            st.write_run(man, s, run_id=rid)
    bars = {"run-1": fake_bar_context(s1), "run-2": fake_bar_context(s2, seed=5)}
    d = MLDataProcessor().from_store(["run-1", "run-2"], store=db, bars=bars)
    assert len(d) == 220 and d.rejected.empty
    assert d.t0.is_monotonic_increasing
    assert sorted(d.summary()["runs"]) == ["run-1", "run-2"]
    assert set(d.meta["runs"]) == {"run-1", "run-2"}
    assert d.meta["horizon_bars"] == 40  # the longest time stop of the runs
    # each run's trades get the same features as that run alone: the prior-day family never mixes runs
    for rid, s in (("run-1", s1), ("run-2", s2)):
        alone = MLDataProcessor().from_frame(s, bars=bars[rid])
        part = d.frame.loc[d.frame["run_id"] == rid].reset_index(drop=True)
        pd.testing.assert_frame_equal(part.loc[:, list(d.features)], alone.frame.loc[:, list(d.features)])
    # a single run id as a string, through an open store
    with RunStore(db, read_only=True) as st:
        one = MLDataProcessor().from_store("run-2", store=st, bars=bars)
    assert len(one) == 100
    with pytest.raises(ValueError, match="no run ids"):
        MLDataProcessor().from_store([], store=db)


def test_from_parquet_export_carries_manifests(tmp_path):
    """A store export keeps the runs' manifests: the data set knows the sessions and the synthetic flag."""
    data = tmp_path / "bars.txt"
    data.write_bytes(b"x")
    s1 = fake_snapshots(80, seed=3, run_id="run-x")
    db = tmp_path / "t.duckdb"
    sessions = sorted({str(d)[:10] for d in pd.DatetimeIndex(s1["signal_ts"]).tz_convert("America/New_York").date})
    with RunStore(db) as st:
        man = build_manifest(params={"time_stop_bars": 30}, params_hash="h", data_files=[data], mode="backtest",
                             session="rth", extra={"synthetic": True})
        man["sessions"] = sessions
        st.write_run(man, s1, run_id="run-x")
        out = st.export_parquet(tmp_path / "x.parquet")
    d = MLDataProcessor(bar_features=False).from_parquet(out)
    assert len(d) == 80
    assert d.meta["synthetic"] is True and d.meta["sessions"] == sessions and d.meta["horizon_bars"] == 30
    assert "run-x" in d.meta["runs"]


def test_from_store_reloads_missing_bar_file(tmp_path, snaps):
    data = tmp_path / "bars.txt"
    data.write_bytes(b"x")
    db = tmp_path / "t.duckdb"
    with RunStore(db) as st:
        man = build_manifest(params={}, params_hash="h", data_files=[data], mode="backtest", session="rth")
        st.write_run(man, snaps, run_id="fake-run")
    data.write_bytes(b"changed")
    with pytest.raises(ValueError, match="changed since the run"):
        MLDataProcessor().from_store("fake-run", store=db)
    data.unlink()
    with pytest.raises(FileNotFoundError, match="is gone"):
        MLDataProcessor().from_store("fake-run", store=db)
    assert len(MLDataProcessor(bar_features=False).from_store("fake-run", store=db)) == len(snaps)


def test_from_backtest_on_synthetic(synth_bars, params):
    from research.pipeline import Series, backtest_series

    sb = backtest_series(Series("synth", synth_bars), params, label="synth", store=False)
    d = MLDataProcessor().from_backtest(sb, synth_bars)
    assert len(d) + len(d.rejected) == len(sb.result.snapshots()) > 10
    assert np.isfinite(d.X.to_numpy()).all()
    assert d.meta["bar"] == str(pd.Timedelta("1min"))
    # bar features are those of bar_context at each trade's signal bar
    ctx = bar_context(synth_bars, params).reindex(pd.DatetimeIndex(d.frame["signal_ts"]))
    np.testing.assert_allclose(d.X["rv12_log"], np.log1p(ctx["rv12_ticks"].to_numpy()))
    # decision = signal bar close = entry (next bar open)
    assert (d.t0 == pd.DatetimeIndex(d.frame["entry_ts"])).all()


def test_supplied_bar_feature_columns_are_recomputed(synth_bars, params):
    """Bars carrying their own rv12_ticks/delta_z20 (here: a planted look-ahead) are recomputed, never trusted."""
    from research.pipeline import Series, backtest_series

    sb = backtest_series(Series("synth", synth_bars), params, label="synth", store=False)
    clean = MLDataProcessor().from_backtest(sb, synth_bars)
    planted = synth_bars.copy()
    planted["delta_z20"] = planted["close"].shift(-6) - planted["close"]  # the next 6 bars' move
    planted["rv12_ticks"] = 1.0
    d = MLDataProcessor().from_backtest(sb, planted)
    pd.testing.assert_frame_equal(d.X, clean.X)
    # a context frame (even research.ml.bars' own, shifted: pandas keeps attrs) is refused unless wrapped on purpose
    shifted = bar_context(synth_bars, params).shift(-3)
    with pytest.raises(ValueError, match="no open/high/low/close"):
        MLDataProcessor().from_frame(sb.result.snapshots(), bars=shifted)


def test_sparse_cross_row_leak_caught(snaps, ctx):
    """A feature looking at the next trade's decision time (true for ~3% of rows) fails the row-locality check."""
    def next_soon(d: pd.DataFrame) -> np.ndarray:
        t = pd.DatetimeIndex(d["decision_ts"]).as_unit("ns").asi8
        order = np.argsort(t, kind="stable")
        nxt = np.full(len(t), np.iinfo(np.int64).max // 2)
        nxt[order[:-1]] = t[order][1:]
        return ((nxt - t) < 45 * 60 * 10**9).astype(float)

    leak = Feature("next_soon", ("decision_ts",), "leak", next_soon)
    with pytest.raises(LeakageError, match="row locality"):
        MLDataProcessor(features=FEATURES + (leak,)).from_frame(snaps, bars=ctx)


def test_no_usable_trades_is_an_error(snaps, ctx):
    bad = snaps.copy()
    bad["side"] = 0
    with pytest.raises(ValueError, match="no usable trades.*side"):
        MLDataProcessor().from_frame(bad, bars=ctx)


def test_duplicate_runs_warned(snaps, ctx):
    twice = pd.concat([snaps, snaps.assign(run_id="copy", trade_id=snaps["trade_id"] + "c")], ignore_index=True)
    d = MLDataProcessor().from_frame(twice, bars=ctx)
    assert any("not independent" in w for w in d.meta["warnings"])
    assert not MLDataProcessor().from_frame(snaps, bars=ctx).meta["warnings"]


def test_dataset_hash_covers_outcomes_and_settings(tmp_path, ds):
    folder = ds.save(tmp_path / "d1")
    frame = pd.read_parquet(folder / "dataset.parquet")
    frame.loc[0, "pnl_usd"] += 5000.0  # not a feature nor a label, but the economic test reads it
    frame.to_parquet(folder / "dataset.parquet", index=False)
    with pytest.raises(ValueError, match="changed since written"):
        MLDataset.load(folder)
    folder = ds.save(tmp_path / "d2")
    info = json.loads((folder / "dataset.json").read_text())
    info["meta"]["embargo"] = "0 days 00:00:00"
    (folder / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="changed since written"):
        MLDataset.load(folder)


def test_dataset_save_load(tmp_path, ds):
    folder = ds.save(tmp_path / "ds")
    info = json.loads((folder / "dataset.json").read_text())
    assert info["data_hash"] == ds.data_hash() and info["features"] == list(ds.features)
    back = MLDataset.load(folder)
    assert back.data_hash() == ds.data_hash()
    assert back.features == ds.features and len(back) == len(ds)
    pd.testing.assert_frame_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.y, ds.y)
    assert back.embargo == ds.embargo
    assert (back.t0 == ds.t0).all()
    # a changed label is refused
    frame = pd.read_parquet(folder / "dataset.parquet")
    frame.loc[0, "y_win"] = 1 - frame.loc[0, "y_win"]
    frame.to_parquet(folder / "dataset.parquet", index=False)
    with pytest.raises(ValueError, match="changed since written"):
        MLDataset.load(folder)
    with pytest.raises(FileNotFoundError, match="no dataset.json"):
        MLDataset.load(tmp_path / "empty")


def test_dataset_save_load_with_rejections(tmp_path, snaps, ctx):
    s = snaps.copy()
    s.loc[[3, 9], "atr14_ticks"] = np.nan
    d = MLDataProcessor().from_frame(s, bars=ctx)
    back = MLDataset.load(d.save(tmp_path / "ds"))
    assert back.data_hash() == d.data_hash()
    assert back.rejected["reason"].tolist() == d.rejected["reason"].tolist()


def test_data_hash_sensitive(ds):
    h = ds.data_hash()
    assert len(h) == 16
    assert ds.subset(np.arange(len(ds))).data_hash() == h
    assert ds.subset(np.arange(len(ds) - 1)).data_hash() != h
    other = MLDataset(ds.frame.copy(), ds.features, meta=dict(ds.meta))
    other.frame.loc[5, "battle_with"] += 1e-6
    assert other.data_hash() != h


# ================================================================ real data

@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One continuous backtest of the 32 ES contracts, stored in the isolated data dir."""
    files = es5m_files()
    from research.pipeline import backtest_series, load_params, load_series

    with pytest.MonkeyPatch.context() as mp:
        # conftest's isolated NAVALE_DATA_DIR (its autouse fixture is function-scoped: too late for this one)
        mp.setenv("NAVALE_DATA_DIR", str(tmp_path_factory.getbasetemp() / "navale-data"))
        (series,) = load_series(files)
        stored = backtest_series(series, load_params(), label="continuous", store=True, margin_floor=False)  # as the ML data set builds it
        yield stored


@pytest.mark.realdata
def test_real_data_from_store(real_run):
    d = MLDataProcessor().from_store(real_run.run_id)
    assert len(d) > 2000
    years = d.t0.year
    assert ((years >= 2015) & (years <= 2020)).sum() > 500
    assert ((years >= 2021) & (years <= 2022)).sum() > 100
    n_in = len(d) + len(d.rejected)
    assert n_in == len(real_run.result.snapshots())
    assert len(d.rejected) < 0.01 * n_in, d.rejected["reason"].value_counts()
    assert not d.X.isna().any().any() and np.isfinite(d.X.to_numpy()).all()
    assert d.t0.is_monotonic_increasing
    assert d.meta["synthetic"] is False and d.meta["sessions"]
    tr, te = d.split_oos()
    assert len(tr) > 1000 and len(te) > 100
    cv = PurgedKFold(5, t0=d.t0, t1=d.t1, embargo=d.embargo)
    for train, test in cv.split(d.X):
        assert overlapping_pairs(d.t0, d.t1, train, test, d.embargo) == 0
