"""The expected daily P&L band of a paper session (`live.pnl_band`): the backtest of the same parameters on the
data the session replays (a replay file), else on the embedded synthetic data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def session_band(params: Any, feed: str, bar: str = "5min") -> Any:
    """The `PnlBand` of ``params`` (None when the backtest has fewer than 5 trading dates)."""
    from live.journal import trading_date
    from live.pnl_band import band_from_daily
    from research.pipeline import backtest_series, load_series

    feed = feed.strip()
    path = feed.split(":", 1)[1] if feed.startswith("replay:") else None
    series = load_series([path] if path else None, bar=None if path else bar)[0]
    bt = backtest_series(series, params, label="expected_band", store=False)
    frame = series.frame
    dates = sorted({trading_date(int(t)) for t in frame.index.asi8[:: max(1, len(frame) // 20_000)]} |
                   {trading_date(int(t)) for t in frame.index.asi8[-1:]})
    by_day = dict.fromkeys(dates, 0.0)
    trades = bt.result.trades
    if len(trades):
        for ts, pnl in zip(trades["exit_ts"].astype("int64"), trades["pnl_usd"]):
            d = trading_date(int(ts))
            by_day[d] = by_day.get(d, 0.0) + float(pnl)
    where = Path(path).name if path else "the embedded synthetic data"
    return band_from_daily(list(by_day.values()), f"backtest of the same parameters on {where}, "
                                                  f"{len(by_day)} trading dates")
