"""The signal-quality filter in the live loop, with a real model trained on a synthetic backtest's snapshots.

- P(win) recorded live for every trade (real and shadow) equals what ``navale ml dataset`` + the model
  compute on the stored snapshots: same features, same values;
- skipped signals are followed as shadow trades: real + shadow = the backtest's trades of the same
  parameters; the journal's ``trades`` table, RunResult.trades and the store's default snapshots are the
  real ones only; nothing of a shadow trade reaches the real broker;
- a model that fails skips the signal (shadow) and journals a critical risk event;
- kill -9 inside a shadow trade resumes right;
- the bar context of a live run from a collector's bar partitions.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pandas as pd
import pytest
from paper_runs import assert_same_trades, run_session, synthetic_slice, wait_exit

from live.journal import Journal
from research.backtest import run as backtest
from research.data import SyntheticSpec, default_dataset, load_bars
from research.ml.dataset import MLDataProcessor, read_bar_partitions
from research.ml.model import SimpleLinearModel
from research.store import RunStore
from strategy import Params

MODE = "data_collection"
THRESHOLD = 0.3  # low enough that some signals are taken, high enough that some are skipped


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, data_dir):
    """A model trained with the library on a 30-day synthetic backtest (another seed than the session's)."""
    params = Params.for_mode(MODE)
    bars = load_bars(default_dataset(SyntheticSpec(days=30, seed=7, start="2024-04-01")), bar="5min")
    bt = backtest(bars, params)
    snaps = bt.snapshots().assign(run_id="train")
    ds = MLDataProcessor(check_causality=False).from_frame(
        snaps, manifests={"train": {"params": params.to_dict()}}, bars={"train": bars})
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    SimpleLinearModel().train(ds).save(path)
    return path


@pytest.fixture(scope="module")
def session(tmp_path_factory, model_file, data_dir):
    """A replayed 10-day session with the filter, its trades copied into a run store."""
    root = tmp_path_factory.mktemp("session")
    (root / "bars").mkdir()
    path, bars = synthetic_slice(10, root / "bars")
    store = root / "runs.duckdb"
    trader, res = run_session(f"replay:{path}", root / "state", Params.for_mode(MODE), ml_model=model_file,
                              ml_threshold=THRESHOLD, store_path=store, store_manifest={"collector": "test"})
    return {"trader": trader, "res": res, "bars": bars, "store": store, "state": root / "state", "path": path}


def test_live_p_win_equals_the_dataset(session, model_file):
    run_id = session["trader"].run_id
    ds = MLDataProcessor().from_store(run_id, store=session["store"])  # the bars from the replayed file
    model = SimpleLinearModel.load(model_file)
    assert ds.frame["shadow"].any() and (~ds.frame["shadow"]).any()
    assert len(ds) >= 20
    want = model.predict_signal_quality(ds)
    np.testing.assert_allclose(ds.frame["quality_p_win"].to_numpy(), want, rtol=0, atol=1e-11)  # measured: <= 3e-13 (pandas rolling vs the window)
    assert (ds.frame["quality_taken"] == (want >= THRESHOLD)).all()
    assert (ds.frame["shadow"] == ~ds.frame["quality_taken"]).all()
    assert (ds.frame["quality_threshold"] == THRESHOLD).all()
    # --no-shadow drops them
    nos = MLDataProcessor(shadow=False).from_store(run_id, store=session["store"])
    assert len(nos) == int((~ds.frame["shadow"]).sum()) and not nos.frame["shadow"].any()


def test_shadow_trades_kept_apart(session):
    trader, res = session["trader"], session["res"]
    params = Params.for_mode(MODE)
    want = backtest(session["bars"], params).trades
    with Journal(session["state"] / "journal.sqlite", readonly=True) as j:
        real, ghost = j.trades(trader.run_id), j.shadow_trades(trader.run_id)
        orders = j.orders()
        status = j.status()
    assert len(real) and len(ghost)
    assert not real["shadow"].any() and ghost["shadow"].all()
    # the engine took every signal: real + shadow = the backtest's trades (the filter fields aside)
    both = pd.concat([real, ghost]).sort_values("entry_ts", kind="stable").reset_index(drop=True)
    assert_same_trades(both.drop(columns=["quality_p_win", "quality_threshold", "quality_taken", "shadow"]),
                       want, "real + shadow")
    assert_same_trades(res.trades, real, "RunResult.trades = journal trades (real)")
    assert len(res.shadow_trades) == len(ghost)
    # no order of a shadow trade reached the real broker's journal
    entry_ids = {oid.split(":")[2] for oid in orders["order_id"] if oid.split(":")[1] == "E"}
    ghost_sig = {str(int(t.value)) for t in ghost["signal_ts"]}
    assert not entry_ids & ghost_sig
    assert status["trades_total"] == len(real)
    assert status["pnl_total_usd"] == pytest.approx(float(real["pnl_usd"].sum()))
    # the store: real by default, shadow on request
    with RunStore(session["store"], read_only=True) as s:
        assert len(s.snapshots(trader.run_id)) == len(real)
        assert len(s.snapshots(trader.run_id, shadow=True)) == len(real) + len(ghost)
        man = s.manifest(trader.run_id)
        assert man["collector"] == "test" and man["quality"]["threshold"] == THRESHOLD
    st = trader.status()
    assert st["trades"] == len(real) and st["position"] == 0
    q = st["quality"]
    assert q["taken"] == len(real) and q["skipped"] == len(ghost) and q["threshold"] == THRESHOLD
    # the real equity excludes the shadow P&L
    assert res.equity["equity"].iloc[-1] == pytest.approx(params.initial_capital_usd + float(real["pnl_usd"].sum()))


@pytest.mark.parametrize("broker_mode", ["bar", "tick"])
def test_model_failure_skips_the_signal(tmp_path, model_file, data_dir, monkeypatch, broker_mode):
    """A failing model: every signal skipped (a shadow trade on the bar-mode shadow book, whatever the real
    broker's mode), a critical risk event each time, nothing sent to the real broker."""
    from live.quality_filter import SignalQualityFilter

    def broken(self, x):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(SimpleLinearModel, "predict_signal_quality", broken)
    trader, res = run_session("synthetic", tmp_path, Params.for_mode(MODE), ml_model=model_file,
                              feed_kw={"spec": SyntheticSpec(days=2)}, broker_mode=broker_mode)
    assert res.reason == "replay_end"
    assert len(res.trades) == 0 and len(res.shadow_trades) >= 3
    assert trader.broker.order_history() == [] and trader.broker.positions().get(trader.cfg.symbol, 0) == 0
    with Journal(tmp_path / "journal.sqlite", readonly=True) as j:
        assert j.orders().empty and j.fills().empty
        ev = pd.DataFrame(j.risk_events())
    bad = ev[ev["kind"] == "quality_error"]
    assert len(bad) >= 3 and set(bad["level"]) == {"critical"} and bad["detail"].str.contains("model exploded").all()
    assert isinstance(trader.quality, SignalQualityFilter)


def test_kill_in_a_shadow_trade_resumes_right(tmp_path, model_file, data_dir):
    """kill -9 while a shadow trade is open, restart: the same trades as one uninterrupted session."""
    (tmp_path / "bars").mkdir()
    path, _ = synthetic_slice(3, tmp_path / "bars")
    feed = f"replay:{path}"
    params = Params.for_mode(MODE)
    _, whole = run_session(feed, tmp_path / "whole", params, ml_model=model_file, ml_threshold=1.0)
    assert len(whole.shadow_trades) >= 3 and len(whole.trades) == 0  # threshold 1: every signal is a shadow
    first = whole.shadow_trades.iloc[1]
    stop_at = int(first["entry_ts"].value)  # a bar inside the second shadow trade
    sd = tmp_path / "crash"
    pid = os.fork()
    if pid == 0:  # the child stops itself (SIGKILL) at the first bar after the shadow entry
        code = 4
        try:
            from live.session import open_session

            t = open_session(params, feed=feed, state_dir=sd, speed=None, unvalidated=True, ml_model=model_file,
                             ml_threshold=1.0)
            orig = t.persist

            def persist_then_die():
                orig()
                if t._last_ts > stop_at and t.eng.side != 0:
                    os.kill(os.getpid(), signal.SIGKILL)

            t.persist = persist_then_die
            t.run()
            code = 0
        finally:
            os._exit(code)
    assert wait_exit(pid) == -signal.SIGKILL
    _, res = run_session(feed, sd, params, ml_model=model_file, ml_threshold=1.0)
    assert res.restarts == 1 and res.reason == "replay_end"
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        ghost = j.shadow_trades()
        assert len(j.trades()) == 0
        assert "reconcile_mismatch" not in {e["kind"] for e in j.risk_events()}
    assert_same_trades(ghost, whole.shadow_trades, "shadow trades across a kill -9")


def test_bar_context_from_collected_partitions(tmp_path, data_dir):
    """A run whose manifest names a collector's bars partitions gets its bar context from there."""
    bars = load_bars(default_dataset(SyntheticSpec(days=3)), bar="5min")
    root = tmp_path / "parquet" / "bars"
    from strategy.market.sessions import session_id

    days = session_id(bars.index).astype(str)
    for d in np.unique(days):
        part = bars.loc[days == d]
        folder = root / "symbol=ES" / f"date={d}"
        folder.mkdir(parents=True)
        pd.DataFrame({"ts": part.index, **{c: part[c].to_numpy() for c in
                                           ("open", "high", "low", "close", "volume", "bid_volume", "ask_volume",
                                            "num_trades")}, "contract": "ESM24"}).to_parquet(folder / "part-0.parquet")
    got = read_bar_partitions(root, "ES")
    pd.testing.assert_frame_equal(got.drop(columns=["contract"]), bars.loc[:, got.columns.drop("contract")],
                                  check_freq=False)
    params = Params.for_mode(MODE)
    snaps = backtest(bars, params).snapshots().assign(run_id="coll")
    man = {"coll": {"kind": "paper", "params": params.to_dict(), "bars_partitions": str(root), "symbol": "ES"}}
    a = MLDataProcessor(check_causality=False).from_frame(snaps, manifests=man)
    b = MLDataProcessor(check_causality=False).from_frame(snaps, manifests={"coll": {"params": params.to_dict()}},
                                                          bars={"coll": bars})
    pd.testing.assert_frame_equal(a.frame, b.frame)
    with pytest.raises(ValueError, match="does not name"):
        MLDataProcessor(check_causality=False).from_frame(snaps, manifests={"coll": {"kind": "paper",
                                                                                     "params": params.to_dict()}})


def test_paper_cli_with_a_model_and_ml_dataset_of_the_run(tmp_path, model_file, monkeypatch, capsys):
    """`navale paper --ml-model` -> stats/status show the filter; `navale ml dataset --run` reads the run with
    its shadow trades (its bars from the replayed file), `--no-shadow` drops them."""
    from research.cli import main

    monkeypatch.setenv("NAVALE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NAVALE_LIVE_DIR", str(tmp_path / "live"))
    (tmp_path / "bars").mkdir()
    path, _ = synthetic_slice(4, tmp_path / "bars")
    out = tmp_path / "out"
    base = ["paper", "--unvalidated", "--mode", MODE, "--feed", f"replay:{path}", "--quiet"]
    assert main([*base, "--ml-threshold", "0.5"]) == 2
    assert "--ml-threshold needs --ml-model" in capsys.readouterr().err
    naked = tmp_path / "naked.joblib"
    naked.write_bytes(model_file.read_bytes())  # no sidecar: refused before unpickling
    assert main([*base, "--ml-model", str(naked)]) == 2
    err = capsys.readouterr().err
    assert "no metadata sidecar" in err and len(err.strip().splitlines()) == 1  # one line
    assert main([*base, "--ml-model", str(model_file), "--ml-threshold", str(THRESHOLD), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"signal quality: threshold {THRESHOLD:.2f}" in err
    stats = json.loads((out / "stats.json").read_text())
    q = stats["quality"]
    assert q["threshold"] == THRESHOLD and q["taken"] + q["skipped"] >= 5 and q["shadow_trades"] == q["skipped"]
    trades = pd.read_parquet(out / "trades.parquet")
    assert len(trades) == q["taken"] and not trades["shadow"].any()
    run_id = stats["run_id"]
    assert main(["status"]) == 0
    shown = capsys.readouterr().out
    assert "signal quality" in shown and f"{q['taken']} taken" in shown
    assert main(["ml", "dataset", "--run", run_id, "--out", str(tmp_path / "ds")]) == 0
    ds = pd.read_parquet(tmp_path / "ds" / "dataset.parquet")
    assert {"quality_p_win", "quality_threshold", "quality_taken", "shadow"} <= set(ds.columns)
    assert main(["ml", "dataset", "--run", run_id, "--no-shadow", "--out", str(tmp_path / "ds2")]) == 0
    ds2 = pd.read_parquet(tmp_path / "ds2" / "dataset.parquet")
    assert len(ds2) == int((~ds["shadow"]).sum()) and not ds2["shadow"].any()
    assert ds["shadow"].sum() >= 1


def test_bar_window_equals_research_bar_context(model_file, data_dir):
    """The filter's bounded bar window gives research's bar features at every in-session bar, across a
    contract change (the window restarts there as research's per-contract segments do)."""
    from live.quality_filter import WINDOW_BARS, SignalQualityFilter
    from research.ml.bars import bar_context_from_signals
    from strategy import compute_signals

    params = Params.for_mode(MODE)
    bars = load_bars(default_dataset(SyntheticSpec(days=3)), bar="5min")
    bars["contract"] = np.where(np.arange(len(bars)) < len(bars) // 2, "ESH24", "ESM24")
    sig = compute_signals(bars, params)
    want = bar_context_from_signals(bars, sig)
    f = SignalQualityFilter.load(model_file, params)
    got = []
    for t in want.index:
        f.observe_bar(bars.at[t, "close"], sig.at[t, "delta"], bars.at[t, "contract"])
        assert len(f.window_state()) <= WINDOW_BARS
        got.append(f.bar_features(sig.at[t, "delta"]))
    got = pd.DataFrame(got, index=want.index)
    assert want["rv12_ticks"].notna().sum() > 150
    first_m = int(np.argmax(bars.loc[want.index, "contract"].to_numpy() == "ESM24"))
    assert want["rv12_ticks"].iloc[first_m:first_m + 12].isna().all()  # the segment restarted there
    np.testing.assert_allclose(got["rv12_ticks"], want["rv12_ticks"], rtol=0, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["delta_z20"], want["delta_z20"], rtol=0, atol=1e-9, equal_nan=True)
