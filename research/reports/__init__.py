"""Notebook reports, one module per job:

- :mod:`research.reports.render`: execute a template with papermill, export standalone HTML
  (``navale report`` calls it);
- :mod:`research.reports.display`: the helpers the notebooks call to show figures and tables;
- :mod:`research.reports.performance`, :mod:`~research.reports.explore`,
  :mod:`~research.reports.sweep`: one context builder per notebook (data, backtest, tables);
- :mod:`research.reports.plots`: plotly figure builders (pure functions).

The ML validation report's context is :mod:`research.ml.workflow` and its figures
:mod:`research.ml.plots`.
"""
