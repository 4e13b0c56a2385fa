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
# # Explore one session
# Bars of one trading date with the Battle Navale signals drawn on them: bases (green/red
# rectangles, a diamond at confirmation), balls (Vikings / Defenders), golden-rule breaks, entries,
# exits, stops and targets, and below the `bn_score` and the golden-rule state. The signals are
# computed over the whole file, so bases and windows carried from earlier days are right.
# Change the parameters cell and re-run (`navale lab` opens this folder in JupyterLab).

# %% tags=["parameters"]
data = []  # bar files, folders or globs; empty: the embedded synthetic data set
date = None  # trading date YYYY-MM-DD (default: the last one)
params_file = None  # parameters TOML (default: METHOD.md's table)
mode = None  # backtest | data_collection | paper | live
session = None  # rth | globex | all (default rth)
bar = None  # bar size for tick sources or resampling

# %%
from research.reports import display, plots
from research.reports import explore as report

display.setup(interactive=True)
ctx = report.explore_context(data, date, params_file, mode, session, bar)
display.banner(ctx.synthetic)
print(f"{ctx.series}: trading date {ctx.day} ({len(ctx.days)} dates available, {ctx.days[0]} .. {ctx.days[-1]}), "
      f"{int(ctx.signals['in_session'].sum())} in-session bars, {len(ctx.trades)} trades")

# %% [markdown]
# ## Chart

# %%
fig = plots.signal_chart(ctx.bars, ctx.signals, ctx.trades, base_window=ctx.params.base_window_bars,
                         threshold=ctx.params.entry_threshold, title=f"{ctx.series} {ctx.day}")
display.show(fig)

# %% [markdown]
# ## Trades

# %%
ctx.trades[["trade_id", "side", "signal_ts", "entry_ts", "entry_price", "stop_price", "target_price", "exit_ts",
            "exit_price", "exit_reason", "pnl_ticks", "pnl_usd", "r_multiple", "bn_score", "status", "q_ref"]]

# %% [markdown]
# ## Signal columns
# Every in-session bar of the date with the columns that explain a decision
# (`strategy/signals.py` lists all 54; `ctx.signals` holds them).

# %%
report.signal_table(ctx)
