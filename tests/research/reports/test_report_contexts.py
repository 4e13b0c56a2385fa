"""Report building blocks without a kernel: vectorbt's statistics on the project's clock, tables (counts as
integers, wide tables that scroll), the top-configurations values, and the page's CSS."""

from __future__ import annotations

import re

import nbformat
import numpy as np
import pandas as pd
import pytest

from research.reports import display
from research.reports.render import export_html
from research.reports.sweep import SweepContext, top_configurations, vbt_stats


@pytest.fixture(scope="module")
def backtest(tmp_path_factory):
    from research.backtest import run
    from research.data import SyntheticSpec, default_dataset, load_bars
    from strategy import Params

    path = default_dataset(SyntheticSpec(days=6), directory=tmp_path_factory.mktemp("synth6"))
    res = run(load_bars(path), Params())
    assert len(res.trades) >= 5
    return res


def test_vbt_stats_share_the_projects_clock_and_sharpe(backtest):
    tab = vbt_stats(backtest)["value"]
    st = backtest.stats()
    # ratios: vectorbt's returns accessor on the daily session returns = the project's Sharpe / Sortino
    assert tab["Sharpe Ratio (daily, 252)"] == f"{st['sharpe_daily']:,.4g}"
    assert tab["Sortino Ratio (daily, 252)"] == f"{st['sortino_daily']:,.4g}"
    # the span is the bars' own: first bar start, last bar's close, calendar days and sessions
    first, last = backtest.equity.index[0], backtest.equity.index[-1] + pd.Timedelta(backtest.meta["bar_ns"], "ns")
    assert tab["Start (first bar)"] == f"{first:%Y-%m-%d %H:%M} UTC"
    assert tab["End (last bar's close)"] == f"{last:%Y-%m-%d %H:%M} UTC"
    assert tab["Period"] == f"{(last - first).days} calendar days, {int(st['sessions'])} sessions"
    assert not any(".999" in v for v in tab)
    # row-count durations and synthetic-price figures are not shown
    for gone in ("Sharpe Ratio", "Calmar Ratio", "Omega Ratio", "Max Drawdown Duration", "Benchmark Return [%]",
                 "Max Gross Exposure [%]", "Best Trade [%]", "Avg Winning Trade Duration"):
        assert gone not in tab.index
    assert tab["Total Trades"] == f"{len(backtest.trades):,}"
    assert tab["End Value [$]"] == f"{st['final_equity_usd']:,.0f}"
    assert tab["Best Trade [$]"] == f"{backtest.trades['pnl_usd'].max():,.0f}"


def test_table_shows_counts_as_integers_and_scrolls():
    df = pd.DataFrame({"n": [2335.0, 120.0], "auc": [0.5512, 0.5], "trades": [np.nan, 7.0],
                       "pnl": [1000.0, 2000.0]}, index=["train", "oos"])
    html = display.table_html(df, {"pnl": "{:,.1f}"})
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells == ["2,335", "0.551", "-", "1,000.0", "120", "0.500", "7", "2,000.0"]
    assert html.startswith('<div class="navale-table">') and html.endswith("</div>")
    assert display.integral_columns(df) == ["n", "trades", "pnl"]
    assert display.table_html(df.iloc[:0]) == "<p><em>none</em></p>"


def test_top_configurations_values_as_in_a_grid_file():
    table = pd.DataFrame({"stop_ticks": [5, 7, 9], "target_r": [2.0, 1.5, 3.0], "sharpe": [0.1, 0.9, 0.5],
                          "trades": [10, 20, 30]}, index=pd.Index([0, 1, 2], name="combo"))
    ctx = SweepContext(result=None, table=table, sweep_dir=None, sweep_id="s", synthetic=True,
                       varying=["stop_ticks", "target_r"])
    top = top_configurations(ctx, "sharpe", 2)
    assert list(top.index) == [1, 2]
    assert top["stop_ticks"].tolist() == ["7", "9"] and top["target_r"].tolist() == ["1.5", "3"]


def test_profit_factor_without_losses_reads_no_losses_not_inf():
    from research.reports.sweep import SUMMARY_FORMATS

    df = pd.DataFrame({"trades": [1, 4, 0], "profit_factor": [np.inf, 1.234, np.nan]})
    html = display.table_html(df, SUMMARY_FORMATS, index=False)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells == ["1", "no losses", "4", "1.23", "0", "-"]
    assert "inf" not in html


def test_page_css_lets_wide_tables_scroll():
    nb = nbformat.v4.new_notebook()
    wide = pd.DataFrame([range(40)], columns=[f"a_rather_long_column_name_{i}" for i in range(40)])
    nb.cells.append(nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/html": display.table_html(wide)})]))
    page = export_html(nb, title="t")
    assert re.search(r"\.navale-table\s*\{\s*overflow-x:\s*auto;\s*max-width:\s*100%;", page)
    assert page.count('<div class="navale-table">') == 1 and "a_rather_long_column_name_39" in page
