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
# <!-- Validation report of a saved sweep. Rendered by `navale report sweep` (papermill + nbconvert, code hidden);
# the logic lives in research/reports/, research/reports/plots.py, research/validation/walkforward.py, research/validation/overfitting.py
# and research/validation/promotion.py. -->

# %% tags=["parameters"]
sweep_dir = ""  # folder written by `navale sweep` (SweepResult.save)
objective = "sharpe"  # sharpe | sortino | net_pnl | profit_factor
scheme = "rolling"  # walk-forward in-sample scheme: rolling | anchored
is_periods = None  # in-sample periods per window (None: 4, or the largest the sweep's periods allow)
oos_periods = 1  # out-of-sample periods per window
boundaries = None  # walk-forward periods: a pandas frequency (QS, MS, W-MON, ...); None: the contract segments
n_splits = 16  # CSCV blocks for the PBO (even)
top_n = 10  # rows of "Top configurations"
title = "Battle Navale sweep report"

# %%
from research.reports import display, plots
from research.reports import sweep as report
from research.validation.overfitting import (
    dsr_of_best_from_sweep,
    pbo_from_sweep,
    plateau_score,
    stability_map,
)
from research.validation.promotion import evaluate_sweep
from research.validation.walkforward import walk_forward_from_sweep

display.setup()
ctx = report.sweep_context(sweep_dir)
res, metric, column = ctx.result, report.OVERFIT_METRIC[objective], report.OBJECTIVE_COLUMN[objective]
display.heading(title, 1, anchor="report-title")
display.banner(ctx.synthetic)
display.publish(sweep_id=ctx.sweep_id, synthetic=ctx.synthetic)

# %% [markdown]
# ## Sweep
# What was swept: every combination of the grid's values replaced the base parameters and was
# backtested on every data set; the per-session P&L of each combination feeds the sections below.

# %%
display.table(report.sweep_overview(ctx))
display.table(res.summary[["trades", "net_pnl_usd", "sharpe", "max_drawdown_usd"]].describe().T,
              caption="distribution over the configurations")

# %% [markdown]
# ## Top configurations
# Ranked by the objective over the whole sample. The best of many tries is biased upwards: the
# walk-forward, PBO and DSR below measure by how much.

# %%
display.table(report.top_configurations(ctx, objective, top_n), report.SUMMARY_FORMATS)

# %% [markdown]
# ## Parameter stability
# The objective over two parameters at a time (the others at their best for each cell). A broad
# plateau around the best cell is robust; an isolated spike is probably noise fitted by the search.

# %%
pairs = report.stability_pairs(ctx)
if not pairs:
    display.note("fewer than two parameters varied: no stability map")
for x, y in pairs:
    pivot = stability_map(ctx.table, x, y, column)
    display.show(plots.stability_heatmap(pivot, x=x, y=y, objective=column))
    plateau, err = display.attempt(plateau_score, pivot)
    display.note(f"{x} × {y}: " + (f"{plateau['verdict']}: {plateau['explanation']}" if plateau else err))

# %% [markdown]
# ## Walk-forward
# Each window chooses the best configuration in-sample and trades it on the next period(s); the
# out-of-sample pieces are stitched into one record no in-sample choice has seen.

# %%
wf_kw = dict(scheme=scheme, is_periods=is_periods, oos_periods=oos_periods, objective=objective)
wf, err = display.attempt(walk_forward_from_sweep, res, **wf_kw, **({"boundaries": boundaries} if boundaries else {}))
if wf is None:
    display.note(f"walk-forward not possible on this sweep: {err}", "warn")
else:
    display.note(wf.verdict)
    display.table(report.windows_table(wf, ctx.varying))
    display.show(plots.is_oos_bars(wf.windows, is_col="is_objective", oos_col="oos_objective",
                                   title=f"{objective}: chosen configuration in-sample vs out-of-sample"))
    display.show(plots.oos_equity_figure(wf.oos_equity, boundaries=list(wf.windows["oos_start"])))
    display.publish(verdict=wf.verdict)

# %% [markdown]
# ## PBO
# Probability of backtest overfitting (combinatorially symmetric cross-validation): how often the
# in-sample best configuration ranks at or below the median out-of-sample.

# %%
pbo, err = display.attempt(pbo_from_sweep, res, n_splits=n_splits, metric=metric)
if pbo is None:
    display.note(f"PBO not computed: {err}", "warn")
else:
    display.table(display.dict_table(pbo.summary(), "PBO"))
    display.show(plots.pbo_histogram(pbo.logits, pbo.pbo))

# %% [markdown]
# ## Deflated Sharpe ratio
# The full-sample best configuration's Sharpe ratio, deflated for the number of configurations tried.

# %%
dsr, err = display.attempt(dsr_of_best_from_sweep, res, metric)
display.table(display.dict_table(dsr, "DSR of the best")) if dsr else display.note(f"DSR not computed: {err}", "warn")

# %% [markdown]
# ## Promotion gate preview
# What `navale promote` would decide with the default thresholds (periods: the sweep's contract
# segments, else calendar quarters). Nothing is recorded or written here.

# %%
decision, err = display.attempt(evaluate_sweep, res, objective=objective, scheme=scheme, is_periods=is_periods,
                                oos_periods=oos_periods, n_splits=n_splits)
if decision is None:
    display.note(f"the gate cannot run on this sweep: {err}", "warn")
else:
    display.note(("PROMOTED to paper trading" if decision.passed else "REFUSED") + f" (combo {decision.combo})")
    display.table(report.checks_table(decision), index=False)

# %% [markdown]
# ## Proposed configuration in depth
# The configuration the gate proposes (else the full-sample best), backtested again on the sweep's
# own bars with the trade simulator and analysed with vectorbt: its equity, its headline figures
# (the DSR deflated by the sweep's trials) and vectorbt's portfolio statistics on the same clock (the
# Sharpe and Sortino there are the headline's: daily session returns, 252 sessions a year). For the full
# performance report: `navale report performance DATA --params reports/sweeps/SWEEP_ID/params.toml
# --trials-from SWEEP_ID` after `navale promote`.

# %%
combo = decision.combo if decision is not None and decision.combo is not None else \
    int(res.top(1, by=column).index[0])
deep, err = display.attempt(report.sweep_in_depth, ctx, combo)
if deep is None:
    display.note(f"combo {combo} not analysed in depth: {err}", "warn")
else:
    display.note(f"combo {combo}: {len(deep.result.trades):,} trades")
    display.table(deep.params, index=False, caption="parameters that differ from the base")
    display.table(deep.tracker.headline().loc[report.IN_DEPTH_METRICS], index=False)
    display.show(plots.equity_figure(deep.tracker.equity_curve(), deep.tracker.drawdowns(), deep.tracker.underwater(),
                                     title=f"Equity of combo {combo} ($)"))
    display.table(report.vbt_stats(deep.result), caption="vectorbt Portfolio.stats()")
    display.note(report.VBT_STATS_NOTE)

# %% [markdown]
# ## Sweep manifest

# %%
for name, tab in report.sweep_manifest_tables(ctx).items():
    display.table(tab, caption=name, index=name != "data")
display.publish(figures=display.figures_shown())
