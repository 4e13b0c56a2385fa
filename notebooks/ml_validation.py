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
# <!-- ML-validation report of the signal-quality model. Rendered by `navale report ml` (papermill + nbconvert,
# code hidden) from a validation saved by `navale ml validate`; the logic lives in research/ml/. -->

# %% tags=["parameters"]
validation_dir = ""  # folder written by ValidationReport.save (navale ml validate / navale report ml)
title = "Battle Navale signal-quality model: validation"

# %%
import pandas as pd

from research.ml import plots as mlplots
from research.ml.dataset import RULES
from research.ml.features import features_frame
from research.ml.validate import ValidationReport
from research.reports import display

display.setup()
rep = ValidationReport.load(validation_dir)
info = rep.dataset
synthetic = bool(info.get("synthetic"))
display.heading(title, 1, anchor="report-title")
display.banner(synthetic)
display.publish(synthetic=synthetic, adds_value=bool(rep.verdict.get("adds_value")), oos_auc=rep.oos_metrics.get("auc"))

# %% [markdown]
# ## Verdict
# Does the model add out-of-sample value? Every check below must pass:
# - `permutation_significant`: on the training period, the purged-CV AUC with the real labels beats shuffled
#   labels (p < 0.05), with at least 99 permutations (fewer cannot pass: 20 give p = 0.048 by construction);
# - `oos_auc_ok`: out of sample, AUC ≥ 0.55 and above chance (one-sided Mann-Whitney p < 0.05; the text gives
#   the bootstrap 95% interval);
# - `beats_constant`: the out-of-sample log loss is below that of a constant equal to the model's own mean
#   out-of-sample prediction (a model that only follows a drifting win rate does not pass);
# - `filter_improvement_significant`: the best filter variant (highest improvement Sharpe among those taking at
#   least the minimum number of out-of-sample trades) picks better trades than a random filter taking the same
#   share: its daily P&L minus share × the unfiltered daily P&L has a deflated Sharpe ratio above 0.95,
#   deflated over every variant tried for every `C` of the grid;
# - `filter_dsr_ok`: the same variant's own Sharpe ratio, deflated the same way, is above 0.95 (the filtered
#   strategy makes money);
# - `filter_enough_trades`: it takes at least the minimum number of out-of-sample trades.

# %%
display.note(rep.verdict["text"], "info" if rep.verdict.get("adds_value") else "warn")
checks = pd.DataFrame([{"check": k, "passed": bool(v)} for k, v in rep.verdict.get("checks", {}).items()])
display.table(checks, index=False)
for w in info.get("warnings", []):
    display.note(w, "warn")

# %% [markdown]
# ## Data set
# One row per trade of the source runs, features from the entry context only (values known at the signal
# bar's close), labels from the trade's outcome under the simulator's rules. Training period: trades whose
# label closed before the out-of-sample start minus the embargo; the out-of-sample period is never used to
# choose anything.

# %%
span_train, span_oos = info.get("span_train") or [None, None], info.get("span_oos") or [None, None]
facts = {"n_all": info.get("n_all"), "n_train": info.get("n_train"), "n_oos": info.get("n_oos"),
         "n_dropped": info.get("n_dropped"), "train_from": span_train[0], "train_to": span_train[1],
         "oos_from": info.get("oos_from"), "oos_to": span_oos[1], "oos_rule": info.get("oos_rule"),
         "base_rate_train": info.get("base_rate_train"), "base_rate_oos": info.get("base_rate_oos"),
         "embargo": info.get("embargo"), "source": (info.get("sources") or {}).get("source"),
         "data_hash": info.get("data_hash")}
display.table(display.dict_table({k: v for k, v in facts.items() if v is not None}, "data set"))
rules = info.get("rules") or RULES  # the labelling and cleaning rules of research.ml.dataset
if rules:
    display.table(pd.DataFrame({"rule": list(rules.values())}, index=list(rules.keys())), caption="rules")
rejected = info.get("rejected_by_reason") or {}
if rejected:
    display.table(pd.Series(rejected, name="rows").to_frame(), caption="rejected rows, by reason")

# %% [markdown]
# ### Features
# Each feature reads only the snapshot fields listed (the leakage guard refuses outcome, execution and audit
# fields by schema) and passed the look-ahead checks of the data set build: it depends on its own trade only
# (row locality), the same-day history counts only trades closed before the decision (checked at every row),
# and computed from what was known at sampled decision times it equals the value computed from the whole
# history (as-of prefix invariance).

# %%
used = set(rep.model.features) if rep.model is not None else None
feats = features_frame()
if used is not None:
    feats = feats[feats["feature"].isin(used)]
display.table(feats, index=False)

# %% [markdown]
# ## Model selection
# L2 strength `C` of the logistic regression, chosen by the purged cross-validated log loss on the training
# period only.

# %%
display.table(rep.selection, index=False)

# %% [markdown]
# ## Cross-validation (purged, embargoed)
# The training period cut into time-ordered blocks; each block is tested by a model trained on the others,
# minus every trade whose label window overlaps the block and those starting within the embargo after it.

# %%
display.table(rep.cv_folds, index=False)
display.table(rep.cv_summary, caption="mean and dispersion over the folds")
display.show(mlplots.cv_folds_figure(rep.cv_folds, oos_auc=rep.oos_metrics.get("auc"),
                                     train_auc=rep.train_metrics.get("auc")))

# %% [markdown]
# ## Out of sample
# The final model (trained on the whole training period with the chosen `C`) on the out-of-sample trades; the
# AUC with its one-sided Mann-Whitney p-value and bootstrap 95% interval. Two constant predictions for
# comparison: the training win rate, and the model's own mean out-of-sample prediction (the model's level
# without its ranking: the one the verdict compares with).

# %%
oos = pd.DataFrame({"in-sample": rep.train_metrics, "out-of-sample": rep.oos_metrics}).T
display.table(oos)
display.table(display.dict_table(rep.baseline, "constant predictors (OOS)"))
display.show(mlplots.probability_histogram(rep.oos_predictions, rep.config.get("thresholds", ())))

# %% [markdown]
# ## Overfitting checks
# Train vs CV vs out-of-sample gaps against stated thresholds; the label-permutation test (the same pipeline
# and folds on shuffled labels: a model that learns nothing real scores like these); the learning curve and
# the calibration curve.

# %%
display.table(rep.gaps, index=False)
perm = rep.permutation
display.show(mlplots.permutation_figure(perm["perm_scores"], perm["score"], perm["p_value"]))
display.note(f"CV AUC with the real labels {perm['score']:.3f}; with shuffled labels {perm['perm_mean']:.3f} ± "
             f"{perm['perm_std']:.3f} over {perm['n_permutations']} permutations; p-value {perm['p_value']:.3f}.")
display.show(mlplots.learning_curve_figure(rep.learning_curve))
display.show(mlplots.calibration_figure(rep.calibration))

# %% [markdown]
# ## Feature importance
# Permutation importance on the out-of-sample trades (what the ranking loses when one feature is shuffled),
# the Logit coefficients with their confidence intervals (statsmodels, unpenalised, on the standardised
# training design; Holm-adjusted p-values for the number of features), and their stability across folds.

# %%
display.show(mlplots.importance_figure(rep.importance))
display.show(mlplots.coefficient_figure(rep.coefficients))
display.table(rep.coefficients, caption="Logit coefficients (per std of the feature)")
display.show(mlplots.stability_figure(rep.stability))

# %% [markdown]
# ## Economic test
# The out-of-sample trades with and without the filter (the same trades: a skipped trade does not free the
# position for another signal). Variants: P(win) at or above each mode threshold, and at or above the cut that
# keeps the top 50% / 30% of the training predictions (`share_taken`: the share actually taken out of sample).
# Sharpe on daily P&L over the out-of-sample sessions, flat days included. Two questions per variant: does the
# filtered strategy make money (its own Sharpe, PSR and DSR against zero), and does the filter pick better than
# a random filter taking the same share of the trades (the `improvement_*` columns: filtered daily P&L minus
# share × unfiltered daily P&L; trading less is not skill). Every variant is computed for every `C` of the grid (the table shows the chosen `C`'s);
# both DSRs are deflated over all of them, empty variants counted as trials, with the Sharpe dispersion of the
# non-empty ones (the note below gives the counts).

# %%
ECON_COLUMNS = ["variant", "C", "trades", "share_taken", "net_pnl_usd", "win_rate", "sharpe", "max_drawdown_usd", "dsr",
                "improvement_usd", "improvement_sharpe", "improvement_dsr"]
ECON_FORMATS = {"C": "{:g}", "trades": "{:,.0f}", "share_taken": "{:.0%}", "net_pnl_usd": "{:,.0f}", "win_rate": "{:.1%}",
                "sharpe": "{:.2f}", "max_drawdown_usd": "{:,.0f}", "dsr": "{:.3f}", "improvement_usd": "{:+,.0f}",
                "improvement_sharpe": "{:.2f}", "improvement_dsr": "{:.3f}"}
display.table(rep.economic[ECON_COLUMNS], ECON_FORMATS, index=False)
display.show(mlplots.economic_equity_figure(rep.equity))
if rep.economic.attrs.get("note"):
    display.note(rep.economic.attrs["note"])
display.table(rep.economic_trials[["chosen", *ECON_COLUMNS]], ECON_FORMATS, index=False,
              caption="every filter variant tried (all C values of the grid): the trials the DSR deflates for")

# %% [markdown]
# ## Model and run manifest

# %%
meta = rep.model.metadata if rep.model is not None else {}
display.table(display.dict_table({k: meta.get(k) for k in ("estimator", "hyperparameters", "class_weight_rule",
                                                         "update_rule", "n_train", "train_from", "train_to",
                                                         "training_data_hash", "feature_schema_version",
                                                         "snapshot_schema_version", "params_hashes", "versions")},
                                 "model"))
display.table(display.dict_table(rep.config, "validation config"))
display.publish(figures=display.figures_shown())
