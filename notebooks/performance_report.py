# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# <!-- Performance report of one backtest. Rendered by `navale report performance` (papermill + nbconvert,
# code hidden); the logic lives in research/reports/, research/reports/plots.py and research/performance.py. -->

# %% tags=["parameters"]
data = []  # bar files, folders or globs; empty: the embedded synthetic data set
params_file = None  # parameters TOML (default: METHOD.md's table)
mode = None  # backtest | data_collection | paper | live (default: the file's mode, else backtest)
session = None  # rth | globex | all (default rth)
date_from = None  # first trading date kept, YYYY-MM-DD
date_to = None  # first trading date dropped, YYYY-MM-DD
bar = None  # bar size for tick sources or resampling
run_id = None  # store the run under this id (default: navale backtest's hash)
title = "Battle Navale performance report"
examples = 3  # trades drawn in "Signal examples"
store = False  # write the run to the run store, as `navale backtest` does (the command passes True)
trials_from = None  # sweep these parameters were chosen from (folder or id): deflates the DSR by its trials
allow_data_errors = False  # run even when the data check finds errors (recorded in the manifest)
symbol = None  # instrument or contract of the files (ES, ESH20), when their names do not say
paper_dir = None  # a paper session exported by `navale report performance --run`: report it instead of a backtest

# %%
from research.reports import display, plots
from research.reports import performance as report

display.setup()
if paper_dir:
    ctx = report.paper_context(paper_dir)
else:
    ctx = report.performance_context(data, params_file, mode, session, date_from, date_to, bar, run_id, store=store,
                                     trials_from=trials_from, allow_data_errors=allow_data_errors, symbol=symbol)
res, tracker, trades, params = ctx.result, ctx.tracker, ctx.result.trades, ctx.params
display.heading(title, 1, anchor="report-title")
display.banner(ctx.synthetic)
for warning in ctx.warnings:
    display.note(warning, "warn")
report.summary_line(ctx)
display.publish(run_id=ctx.run_id, synthetic=ctx.synthetic, series=ctx.series, trades=len(trades),
                store_error=ctx.store_error)

# %% [markdown]
# ## Headline
# Net of commissions and slippage. Ratios use daily P&L per trading session divided by the initial
# capital (fixed-size futures do not compound); `docs/performance.md` defines every line.

# %%
display.table(tracker.headline(), index=False)

# %% [markdown]
# ## Equity and drawdowns
# Account value at each in-session bar close (marked to market), the five deepest drawdown
# periods shaded; below, the distance to the running peak.

# %%
dd = tracker.drawdowns()
display.show(plots.equity_figure(tracker.equity_curve(), dd, tracker.underwater(), title="Equity ($)"))

# %% [markdown]
# ## Monthly returns
# Net P&L per calendar month of the trading date, in dollars.

# %%
display.show(plots.monthly_heatmap(tracker.monthly_returns()))

# %% [markdown]
# ## Drawdown periods
# The ten deepest: from the last peak, through the trough, to the first bar back at the peak
# (open periods have no recovery).

# %%
display.table(report.drawdown_table(dd, top=10), index=False)

# %% [markdown]
# ## Trade distribution
# Outcome of each trade in R (P&L ticks / stop ticks) and how far it went for and against the
# position before the exit (MFE / MAE, ticks), with the stop and target distances.

# %%
display.show(plots.r_histogram(trades["r_multiple"]))
display.show(plots.mfe_mae_scatter(trades, stop_ticks=params.stop_ticks, target_ticks=params.target_ticks))

# %% [markdown]
# ## Attribution
# Net P&L, trade count, win rate, expectancy and profit factor per group, for every key the
# trades support (decision time for hour, weekday and phase; exit session for month and year).

# %%
for key, tab in tracker.attribution_all().items():
    display.heading(f"By {key.replace('_', ' ')}", 3, anchor=f"attribution-{key}")
    display.table(tab, report.ATTRIBUTION_FORMATS)
    display.show(plots.attribution_bar(tab, by=key))

# %% [markdown]
# ## Fill audit
# The intrabar assumptions the results rest on: with stop and target inside one bar the stop is
# assumed first (pessimistic); the optimistic P&L resolves every such bar in the trade's favour.

# %%
display.table(report.fill_audit_summary(res))
display.table(report.audit_trades(res), index=False)

# %% [markdown]
# ## Signal examples
# A few trades drawn on their bars: green and red rectangles are the bases (from the first bar
# of their span to the end of their life as the last base of their colour; a diamond marks the
# confirmation, the first bar they can be used), circles the balls (Vikings green, Defenders red),
# crosses the bar that breaks the golden rule, triangles the entries, squares the exits, dashed
# lines the stop and target. Lower panel: `bn_score` with the entry threshold, and the golden-rule
# state (+ green reference intact, - red reference intact).

# %%
for w in plots.example_windows(trades, res.signals, n=examples):
    display.show(plots.signal_chart(ctx.bars, res.signals, trades, start=w["start"], end=w["end"],
                                    base_window=params.base_window_bars, threshold=params.entry_threshold,
                                    title=w["title"]))

# %% [markdown]
# ## Run manifest
# What produced these numbers: the run id in the store (`navale runs show RUN_ID`), the code
# commit, the data files with their sha256, the parameters and the library versions.

# %%
for name, tab in report.manifest_tables(ctx.manifest).items():
    display.table(tab, caption=name, index=name != "data")
display.publish(figures=display.figures_shown())
