"""Notebook reports: execute a parameterised notebook (papermill), export standalone HTML (nbconvert).

Two halves:

- **Rendering** (called by ``navale report``): :func:`render_notebook` runs a template notebook
  from ``notebooks/`` with papermill in a kernel that is this interpreter (``sys.executable``),
  keeps the executed ``.ipynb`` beside an HTML file with the code hidden and plotly.js inlined
  once (the page needs no network), both written atomically.
- **In-notebook helpers** (called by the notebooks, so the notebooks stay small):
  :func:`setup`, :func:`show`, :func:`banner`, :func:`publish`, :func:`performance_context`,
  :func:`explore_context`, :func:`sweep_context`, :func:`manifest_tables`.

A notebook hands facts back to the renderer (the run id, the number of figures) through
:func:`publish`: a display output of mimetype :data:`REPORT_MIME`, read from the executed
notebook by :func:`notebook_info` and left out of the HTML.
"""

from __future__ import annotations

import contextlib
import copy
import html as _html
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay inside the functions: `navale --help` stays fast
    import nbformat
    import pandas as pd
    import plotly.graph_objects as go

__all__ = [
    "NOTEBOOK_DIR",
    "REPORT_MIME",
    "ReportPaths",
    "ReportError",
    "template_path",
    "render_notebook",
    "export_html",
    "notebook_info",
    "setup",
    "show",
    "banner",
    "publish",
    "figures_shown",
    "heading",
    "PerformanceContext",
    "performance_context",
    "summary_line",
    "drawdown_table",
    "audit_trades",
    "ATTRIBUTION_FORMATS",
    "table",
    "manifest_tables",
    "fill_audit_summary",
    "ExploreContext",
    "explore_context",
    "signal_table",
    "SweepContext",
    "sweep_context",
    "sweep_overview",
    "IN_DEPTH_METRICS",
    "InDepth",
    "sweep_in_depth",
    "vbt_stats",
    "top_configurations",
    "stability_pairs",
    "attempt",
    "note",
    "windows_table",
    "checks_table",
    "dict_table",
    "sweep_manifest_tables",
]

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
REPORT_MIME = "application/vnd.navale.report+json"
KERNEL_NAME = "navale-python3"

# The lab template without the CDN scripts (require.js, MathJax, mermaid): the page is offline.
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<style type="text/css">
main { max-width: 1280px; margin: 0 auto; }
.navale-banner { background: #fff3cd; border: 2px solid #d39e00; color: #5c4400; padding: 0.6em 1em;
                 margin: 0.5em 0 1em 0; border-radius: 4px; font-size: 1.05em; }
.navale-banner h2 { margin: 0 0 0.3em 0; color: #8a6100; }
.jp-RenderedHTMLCommon table { font-size: 0.85em; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 0.25em 0.6em; }
</style>
{% endblock extra_css %}
"""


# ================================================================ rendering


@dataclass(frozen=True)
class ReportPaths:
    """Where a rendered report is: the HTML page and the executed notebook beside it, plus what
    the notebook published (:func:`publish`)."""

    html: Path
    ipynb: Path
    info: dict[str, Any] = field(default_factory=dict)


class ReportError(RuntimeError):
    """A report notebook failed; names the notebook, the cell and the partially executed copy."""

    def __init__(self, message: str, *, notebook: Path, cell_index: int | None = None,
                 partial: Path | None = None) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.partial = partial


def template_path(name: str) -> Path:
    """``notebooks/<name>.ipynb`` of this checkout (``name`` with or without the suffix)."""
    p = NOTEBOOK_DIR / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if not p.exists():
        raise FileNotFoundError(f"no report notebook {p}")
    return p


@contextlib.contextmanager
def _kernelspec() -> Iterator[str]:
    """A private kernelspec whose argv is this interpreter, found first via JUPYTER_PATH.

    The stock ``python3`` spec says ``python`` (mapped to ``sys.executable`` by jupyter_client),
    but a user-level ``python3`` spec in ``~/.local/share/jupyter`` would win the lookup; this one
    cannot be shadowed.
    """
    with tempfile.TemporaryDirectory(prefix="navale-kernel-") as tmp:
        kdir = Path(tmp) / "kernels" / KERNEL_NAME
        kdir.mkdir(parents=True)
        # log level ERROR: ipykernel 7 warns on every start that a localhost TCP kernel is unencrypted
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                         "--IPKernelApp.log_level=ERROR"],
                "display_name": f"navale ({sys.executable})", "language": "python",
                "metadata": {"debugger": True, "supported_encryption": ["curve"]}}
        (kdir / "kernel.json").write_text(json.dumps(spec))
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp, old] if old else [tmp])
        try:
            yield KERNEL_NAME
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def render_notebook(template: Path, parameters: Mapping[str, Any], out_dir: Path, *, name: str,
                    progress: bool = True, title: str | None = None, cwd: Path | None = None,
                    timeout: int | None = None) -> ReportPaths:
    """Execute ``template`` with ``parameters`` and write ``out_dir/<name>.ipynb`` and ``.html``.

    The kernel is this interpreter. papermill shows a progress bar over the cells when
    ``progress``. The HTML hides code and prompts and embeds plotly.js once. On a failing cell
    raises :class:`ReportError` naming the notebook and the cell; the partially executed
    notebook is kept as ``out_dir/<name>.failed.ipynb``. ``cwd`` (default: the current folder)
    is the kernel's working folder, so relative data paths mean what they mean to the caller.
    """
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from research.storage import atomic_write_text

    template = Path(template)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    running = out_dir / f".{name}.running.ipynb"
    failed = out_dir / f"{name}.failed.ipynb"
    try:
        with _kernelspec() as kernel:
            pm.execute_notebook(
                str(template), str(running), parameters=dict(parameters), kernel_name=kernel, language="python",
                progress_bar=progress, cwd=str(cwd or Path.cwd()), execution_timeout=timeout,
            )
    except PapermillExecutionError as exc:
        os.replace(running, failed)
        cell = _cell_label(failed, exc.cell_index)
        evalue = exc.evalue if len(exc.evalue) <= 600 else exc.evalue[:600] + " ..."
        raise ReportError(
            f"notebook {template.name} failed in {cell}: {exc.ename}: {evalue}\n"
            f"partially executed notebook: {failed}",
            notebook=template, cell_index=exc.cell_index, partial=failed,
        ) from None
    except BaseException:
        if running.exists():
            os.replace(running, failed)
        raise
    nb = nbformat.read(running, as_version=4)
    ipynb = out_dir / f"{name}.ipynb"
    html = out_dir / f"{name}.html"
    atomic_write_text(ipynb, nbformat.writes(nb))
    atomic_write_text(html, export_html(nb, title=title or name.replace("_", " ")))
    running.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)
    return ReportPaths(html=html, ipynb=ipynb, info=notebook_info(nb))


def _cell_label(path: Path, index: int | None) -> str:
    """``cell <n>/<total> (code `<first line>`)`` of the cell that raised, counting the template's
    cells from 1 (papermill's injected and error cells excluded)."""
    import nbformat

    try:
        cells = nbformat.read(path, as_version=4).cells
    except (OSError, ValueError):
        return f"cell {index}"
    own = [c for c in cells if not _papermill_cell(c)]
    for k, cell in enumerate(own):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            return f"cell {k + 1}/{len(own)} (code `{first[:80]}`)"
    return f"cell {index}"


def _papermill_cell(cell: Any) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return "injected-parameters" in tags or any(t.startswith("papermill-error-cell") for t in tags)


def notebook_info(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """Everything the notebook published with :func:`publish`, merged in order."""
    info: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if REPORT_MIME in data:
                value = data[REPORT_MIME]
                info.update(json.loads(value) if isinstance(value, str) else dict(value))
    return info


def export_html(nb: nbformat.NotebookNode, *, title: str) -> str:
    """Standalone HTML of an executed notebook: code, prompts, stderr and :data:`REPORT_MIME`
    outputs left out; no external script (plotly.js is inside the page)."""
    import jinja2
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            data = out.get("data")
            if data is not None and REPORT_MIME in data:
                data.pop(REPORT_MIME)
                if not data:
                    continue
            kept.append(out)
        cell["outputs"] = kept
    exporter = HTMLExporter(
        template_name="lab", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        extra_loaders=[jinja2.DictLoader({"navale_report.html.j2": _TEMPLATE})],
        template_file="navale_report.html.j2",
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


# ================================================================ in-notebook display helpers

_STATE: dict[str, Any] = {"ready": False, "figures": 0, "mimetype": False}


def setup(*, interactive: bool = False) -> None:
    """Call once at the top of a notebook: plotly.js inlined in the output (offline HTML), plotly's
    white template, wide pandas tables. ``interactive`` also sends plotly's own mimetype so
    JupyterLab renders figures natively (bigger notebooks; the reports do not need it)."""
    import pandas as pd
    import plotly.io as pio
    from IPython.display import HTML, display
    from plotly.offline import get_plotlyjs

    pio.templates.default = "plotly_white"
    pd.set_option("display.max_columns", 80)
    pd.set_option("display.width", 200)
    _STATE["mimetype"] = interactive
    _STATE["figures"] = 0
    if not _STATE["ready"]:
        display(HTML('<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: "local"};</script>'
                     f'<script type="text/javascript">{get_plotlyjs()}</script>'))
        _STATE["ready"] = True


def show(fig: go.Figure) -> None:
    """Display a figure as an HTML div drawn by the plotly.js that :func:`setup` put in the page."""
    from IPython.display import display

    bundle = {"text/html": fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False,
                                       config={"displaylogo": False, "responsive": True})}
    if _STATE["mimetype"]:
        bundle["application/vnd.plotly.v1+json"] = json.loads(fig.to_json())  # plain JSON types only
    display(bundle, raw=True)
    _STATE["figures"] += 1


def figures_shown() -> int:
    """Figures displayed by :func:`show` since :func:`setup`."""
    return int(_STATE["figures"])


def heading(text: str, level: int = 1, anchor: str | None = None) -> None:
    """A heading from code (for titles that come from parameters), with an ``id`` anchor."""
    from IPython.display import HTML, display

    anchor = anchor or text.strip().replace(" ", "-")
    display(HTML(f'<h{level} id="{_html.escape(anchor)}">{_html.escape(text)}</h{level}>'))


def banner(synthetic: bool, text: str | None = None) -> None:
    """The "Synthetic data" warning section (anchor ``Synthetic-data``), shown only when ``synthetic``."""
    from IPython.display import HTML, display

    from research.pipeline import SYNTHETIC_BANNER

    if not synthetic:
        return
    display(HTML(f'<div class="navale-banner" id="Synthetic-data"><h2>Synthetic data</h2>'
                 f"<p><strong>{_html.escape(text or SYNTHETIC_BANNER)}</strong></p></div>"))


def publish(**info: Any) -> None:
    """Hand facts to the renderer (``ReportPaths.info``); not shown in the HTML."""
    from IPython.display import display

    display({REPORT_MIME: json.loads(json.dumps(info, default=str))}, raw=True)


def table(df: pd.DataFrame, formats: Mapping[str, str] | str | None = None, *, caption: str | None = None,
          index: bool = True) -> None:
    """Display a DataFrame as a compact HTML table (``formats``: per-column format strings)."""
    from IPython.display import HTML, display

    if df.empty:
        display(HTML(f"<p><em>{_html.escape(caption + ': ' if caption else '')}none</em></p>"))
        return
    sty = df.style.format(precision=3, na_rep="-", thousands=",")
    if formats:
        sty = sty.format(formats, na_rep="-")
    if caption:
        sty = sty.set_caption(caption)
    if not index:
        sty = sty.hide(axis="index")
    display(HTML(sty.to_html()))


# ================================================================ performance report


@dataclass
class PerformanceContext:
    """What the performance notebook reports on: one backtest, its tracker, provenance."""

    result: Any  # research.backtest.run.BacktestResult
    tracker: Any  # research.performance.PerformanceTracker
    manifest: dict[str, Any]
    run_id: str
    synthetic: bool
    series: str
    bars: pd.DataFrame
    params: Any  # strategy.Params
    stored: bool
    warnings: list[str] = field(default_factory=list)  # shown under the title


def performance_context(data: Sequence[str | Path] | str | None = None, params_file: str | Path | None = None,
                        mode: str | None = None, session: str | None = None, date_from: str | None = None,
                        date_to: str | None = None, bar: str | None = None, run_id: str | None = None, *,
                        store: bool = True, tracker_kw: Mapping[str, Any] | None = None,
                        trials_from: str | Path | None = None) -> PerformanceContext:
    """Load DATA (default: the embedded synthetic set), backtest it and store the run exactly as
    ``navale backtest`` does (same manifest, same run id, same store), and build the
    ``PerformanceTracker``. Several files that are not contracts of one product are refused:
    a performance report is about one series. ``trials_from``: a saved sweep (folder or id under
    reports/sweeps) these parameters were selected from: its trial count and Sharpe dispersion
    deflate the DSR (:func:`research.overfitting.search_trials`)."""
    from research.performance import PerformanceTracker
    from research.pipeline import backtest_series, load_params, load_series

    paths = [data] if isinstance(data, (str, Path)) else list(data or [])
    params = load_params(params_file, mode, session)
    loaded = load_series(paths or None, bar=bar, date_from=date_from, date_to=date_to, series="continuous")
    if len(loaded) != 1:
        names = ", ".join(s.name for s in loaded)
        raise ValueError(f"a performance report covers one series; DATA gave {len(loaded)} ({names}) that are not "
                         "contracts of one product: report them one at a time")
    s = loaded[0]
    bt = backtest_series(s, params, label="continuous", date_from=date_from, date_to=date_to, bar=bar,
                         run_id=run_id, store=store)
    res, rid, manifest, stored = bt.result, bt.run_id, bt.manifest, bt.stored
    kw = dict(tracker_kw or {})
    warnings: list[str] = []
    if trials_from:
        from research.overfitting import search_trials
        from research.promotion import load_sweep, resolve_run

        sweep = load_sweep(resolve_run(str(trials_from)))
        kw["n_trials"], kw["sr_variance"] = search_trials(sweep)
        if params.hash() not in set(sweep.grid["params_hash"]):
            warnings.append(f"these parameters (hash {params.hash()}) are not one of the sweep's {len(sweep.grid)} "
                            "configurations: its trial count deflates the DSR as if they had been chosen from it")
    tracker = PerformanceTracker.from_backtest(res, **kw)
    return PerformanceContext(result=res, tracker=tracker, manifest={"run_id": rid, **manifest}, run_id=rid,
                              synthetic=s.synthetic, series=s.name, bars=s.frame, params=params, stored=stored,
                              warnings=warnings)


ATTRIBUTION_FORMATS = {"pnl_usd": "{:,.0f}", "trades": "{:,.0f}", "win_rate": "{:.1%}", "expectancy_usd": "{:,.1f}",
                       "expectancy_r": "{:+.3f}", "profit_factor": "{:.2f}", "share_of_pnl": "{:.1%}"}


def summary_line(ctx: PerformanceContext) -> None:
    """One paragraph under the title: series, span, mode, session, order-flow mode, run id."""
    from IPython.display import HTML, display

    from research.plots import to_et

    r = ctx.result
    idx = r.equity.index
    span = f"{to_et(idx[0]):%Y-%m-%d} to {to_et(idx[-1]):%Y-%m-%d}" if len(idx) else "no in-session bars"
    files = len(ctx.manifest.get("data_files") or [])
    text = (f"Series <b>{_html.escape(ctx.series)}</b> ({files} file{'s' if files != 1 else ''}, {span}, "
            f"{r.meta.get('session_bars', 0):,} in-session bars), mode <b>{_html.escape(ctx.params.mode)}</b>, "
            f"session <b>{_html.escape(ctx.params.session)}</b>, order flow <b>{r.meta.get('order_flow_mode')}</b>, "
            f"{ctx.params.contracts} contract(s), {len(r.trades):,} trades. Run id <code>{ctx.run_id}</code>"
            + (" (stored)." if ctx.stored else " (not stored)."))
    display(HTML(f"<p>{text}</p>"))


def drawdown_table(drawdowns: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The deepest drawdown periods, readable: New York times, $ and % depth, durations."""
    import pandas as pd

    from research.plots import to_et

    d = drawdowns.head(top)
    out = pd.DataFrame(index=d.index)
    for c in ("start", "trough", "recovery"):
        out[f"{c} (ET)"] = [("open" if pd.isna(v) else f"{to_et(v):%Y-%m-%d %H:%M}") for v in d[c]]
    out["depth $"] = [f"{v:,.0f}" for v in d["depth_usd"]]
    out["depth %"] = [f"{v:.2%}" for v in d["depth_pct"]]
    for c in ("duration", "time_to_trough", "time_to_recover"):
        out[c.replace("_", " ")] = [("-" if pd.isna(v) else str(pd.Timedelta(v)).replace(" days ", "d ")) for v in d[c]]
    out.insert(0, "#", range(1, len(out) + 1))
    return out


def audit_trades(result: Any, limit: int = 20) -> pd.DataFrame:
    """The trades whose P&L depends on an intrabar assumption (first ``limit``), New York times."""
    from research.plots import to_et

    fa = result.fill_audit()
    fa = fa.loc[fa["assumption_matters"]].head(limit).copy()
    for c in ("entry_time", "exit_time"):
        fa[c] = [f"{to_et(v):%Y-%m-%d %H:%M}" for v in fa[c]]
    fa.insert(0, "trade", result.trades.loc[fa.index, "trade_id"])
    return fa.drop(columns=["assumption_matters"])


def manifest_tables(manifest: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The run manifest as tables: ``run`` (id, commit, mode, ...), ``params``, ``data`` (files with
    sha256), ``versions``."""
    import pandas as pd

    extra = manifest.get("extra") or {}
    days = manifest.get("sessions") or []
    run = {
        "run id": manifest.get("run_id"),
        "created (UTC)": manifest.get("created_at"),
        "git commit": manifest.get("git_commit"),
        "uncommitted changes": manifest.get("git_dirty"),
        "mode": manifest.get("mode"),
        "session": manifest.get("session"),
        "params hash": manifest.get("params_hash"),
        "snapshot schema": manifest.get("snapshot_schema_version"),
        **{f"extra: {k}": v for k, v in extra.items()},
        "trading sessions": f"{len(days):,} ({days[0]} to {days[-1]})" if days else None,
        "kernel python": sys.executable,
    }
    files = pd.DataFrame(manifest.get("data_files") or [], columns=["path", "sha256", "size"])
    params = pd.DataFrame({"value": [str(v) for v in (manifest.get("params") or {}).values()]},
                          index=pd.Index(list((manifest.get("params") or {}).keys()), name="parameter"))
    versions = pd.DataFrame({"version": list((manifest.get("versions") or {}).values())},
                            index=pd.Index(list((manifest.get("versions") or {}).keys()), name="package"))
    return {
        "run": pd.DataFrame({"value": [("-" if v is None else str(v)) for v in run.values()]},
                            index=pd.Index(list(run.keys()), name="field")),
        "params": params,
        "data": files,
        "versions": versions,
    }


def fill_audit_summary(result: Any) -> pd.DataFrame:
    """Counts of the intrabar assumptions the trades rest on and the P&L they move."""
    import pandas as pd

    fa = result.fill_audit()
    n = len(fa)
    rows = {
        "trades": (n, ""),
        "stop and target inside one bar (stop assumed first)": (int(fa["intrabar_ambiguous"].sum()), ""),
        "entry and exit in the same bar": (int(fa["same_bar_exit"].sum()), ""),
        "bar opened through the stop (filled at the open)": (int(fa["gap_through_stop"].sum()), ""),
        "trades whose P&L depends on an assumption": (int(fa["assumption_matters"].sum()), ""),
        "net P&L, pessimistic (reported)": (float(fa["pnl_usd"].sum()), "$"),
        "net P&L, every ambiguous bar in the trade's favour": (float(fa["pnl_usd_optimistic"].sum()), "$"),
    }
    return pd.DataFrame({"value": [f"{v:,.0f} $" if u == "$" else f"{v:,}" for v, u in rows.values()]},
                        index=pd.Index(list(rows.keys()), name="fill audit"))


# ================================================================ explore notebook


@dataclass
class ExploreContext:
    """One session of bars with the signals (computed over the whole series, so warm-up and bases
    carried from earlier days are right) and the backtest's trades."""

    bars: pd.DataFrame
    signals: pd.DataFrame
    trades: pd.DataFrame
    day: Any
    params: Any
    synthetic: bool
    series: str
    days: list[Any]


def explore_context(data: Sequence[str | Path] | str | None = None, date: str | None = None,
                    params_file: str | Path | None = None, mode: str | None = None, session: str | None = None,
                    bar: str | None = None) -> ExploreContext:
    """Load DATA (default: the embedded synthetic set), compute signals and trades, and select the
    trading date ``date`` (default: the last one with in-session bars)."""
    import numpy as np
    import pandas as pd

    from research.backtest import run as run_backtest
    from research.pipeline import load_params, load_series, parse_date
    from research.sessions import session_id

    paths = [data] if isinstance(data, (str, Path)) else list(data or [])
    params = load_params(params_file, mode, session)
    s = load_series(paths or None, bar=bar)[0]
    res = run_backtest(s.frame, params)
    sig = res.signals
    sid = session_id(s.frame.index)
    days = sorted(set(sid[sig["in_session"].to_numpy()]))
    if not days:
        raise ValueError("no bars inside the session filter")
    day = parse_date(date, "date") if date else days[-1]
    if day not in days:
        raise ValueError(f"no in-session bars on {day}; trading dates: {days[0]} .. {days[-1]}")
    keep = sid == np.datetime64(day, "D")
    tr = res.trades
    on_day = tr.loc[(session_id(pd.DatetimeIndex(tr["entry_ts"])) == day)] if len(tr) else tr
    return ExploreContext(bars=s.frame.loc[keep], signals=sig.loc[keep], trades=on_day, day=day, params=params,
                          synthetic=s.synthetic, series=s.name, days=days)


SIGNAL_TABLE_COLUMNS = ("delta", "ball", "battle", "base_active", "base_type", "ref_side", "ref_lo", "ref_hi", "q_ref",
                        "bull_intact", "bear_intact", "bull_violation", "bear_violation", "tc", "bq", "pattern",
                        "bn_score", "status", "long_candidate", "short_candidate", "long_entry", "short_entry")


def signal_table(ctx: ExploreContext, columns: Sequence[str] = SIGNAL_TABLE_COLUMNS) -> pd.DataFrame:
    """The session's in-session rows: OHLC and the signal columns that explain a decision, New York time."""
    from research.plots import to_et

    s = ctx.signals.loc[ctx.signals["in_session"]]
    out = ctx.bars.loc[s.index, ["open", "high", "low", "close", "volume"]].join(s[list(columns)])
    out.index = to_et(out.index)
    out.index.name = "bar start (ET)"
    return out


# ================================================================ sweep report

# walk-forward objective -> summary column (stability maps, top table) and overfitting metric (PBO, DSR)
OBJECTIVE_COLUMN = {"sharpe": "sharpe", "sortino": "sortino", "net_pnl": "net_pnl_usd", "profit_factor": "profit_factor"}
OVERFIT_METRIC = {"sharpe": "sharpe", "sortino": "sortino", "net_pnl": "mean", "profit_factor": "profit_factor"}
SUMMARY_FORMATS = {"trades": "{:,.0f}", "win_rate": "{:.1%}", "net_pnl_usd": "{:,.0f}", "profit_factor": "{:.2f}",
                   "expectancy_usd": "{:,.1f}", "expectancy_r": "{:+.3f}", "sharpe": "{:.2f}", "sortino": "{:.2f}",
                   "max_drawdown_usd": "{:,.0f}", "trades_per_day": "{:.2f}"}


@dataclass
class SweepContext:
    """A saved sweep and what the report derives from it."""

    result: Any  # research.sweep.SweepResult
    table: pd.DataFrame  # grid joined with the summary, index combo
    sweep_dir: Path
    sweep_id: str
    synthetic: bool
    varying: list[str]  # grid parameters with more than one value


def sweep_context(sweep_dir: str | Path) -> SweepContext:
    """Load a sweep saved by ``navale sweep`` (``SweepResult.save``)."""
    from research.overfitting import sweep_table
    from research.sweep import SweepResult

    res = SweepResult.load(sweep_dir)
    table = sweep_table(res)
    varying = [p for p in res.param_names
               if table[p].map(lambda v: tuple(v) if isinstance(v, (list, tuple)) else v).nunique() > 1]
    return SweepContext(result=res, table=table, sweep_dir=Path(sweep_dir), synthetic=bool(res.meta.get("synthetic")),
                        sweep_id=str(res.meta.get("sweep_id") or Path(sweep_dir).name), varying=varying)


@dataclass
class InDepth:
    """One sweep configuration backtested again on the sweep's bars (:func:`sweep_in_depth`)."""

    combo: int
    result: Any  # research.backtest.BacktestResult (its .portfolio is the vectorbt Portfolio)
    tracker: Any  # research.performance.PerformanceTracker, DSR deflated by the sweep's trials
    params: pd.DataFrame  # the parameters that differ from the sweep's base


IN_DEPTH_METRICS = ["net_pnl_usd", "trades", "win_rate", "profit_factor", "expectancy_r", "sharpe", "sortino", "psr", "dsr",
                    "max_drawdown_usd", "exposure"]


def sweep_in_depth(ctx: SweepContext, combo: int) -> InDepth:
    """Backtest combination ``combo`` on the sweep's own bars (``meta["load"]`` written by
    ``navale sweep``; every file must still hash as it did), for the in-depth section. Raises
    ``ValueError`` naming what is missing or changed."""
    import pandas as pd

    from research.overfitting import search_trials
    from research.performance import PerformanceTracker
    from research.pipeline import load_series
    from research.store import file_sha256

    res = ctx.result
    load = res.meta.get("load")
    if not load:
        raise ValueError("the sweep has no record of how its data were read (older sweeps, or saved outside "
                         "`navale sweep`); re-run `navale sweep` to get this section")
    # the sweep recorded each file's sha256 under the path as given (often relative): compare resolved paths
    hashes = {str(Path(d["path"]).resolve()): d["sha256"] for d in res.meta.get("data") or []}
    for path in load["paths"]:
        key = str(Path(path).resolve())
        if not Path(path).exists():
            raise ValueError(f"{path}: data file of the sweep not found")
        if key not in hashes:
            raise ValueError(f"{path}: the sweep recorded no sha256 for this file, so it cannot be checked")
        if file_sha256(path) != hashes[key]:
            raise ValueError(f"{path}: changed since the sweep (sha256 differs)")
    loaded = load_series(load["paths"], bar=load.get("bar"), date_from=load.get("date_from"),
                         date_to=load.get("date_to"))
    if len(loaded) != 1:
        raise ValueError(f"the sweep's data are {len(loaded)} series; the in-depth section shows one")
    bt = res.backtest(int(combo), loaded[0])
    trials, var = search_trials(res)
    tracker = PerformanceTracker.from_backtest(bt, n_trials=trials, sr_variance=var)
    base = res.base.to_dict()
    chosen = res.params(int(combo)).to_dict()
    diff = {k: (base.get(k), v) for k, v in chosen.items() if base.get(k) != v}
    params = pd.DataFrame([(k, str(b), str(v)) for k, (b, v) in diff.items()],
                          columns=["parameter", "base", "this configuration"])
    return InDepth(combo=int(combo), result=bt, tracker=tracker, params=params)


def vbt_stats(result: Any) -> pd.DataFrame:
    """vectorbt's ``Portfolio.stats()`` of a backtest, as text (dates, durations and numbers alike)."""
    import pandas as pd

    st = result.portfolio.stats()
    return pd.DataFrame({"value": [("-" if pd.isna(v) else f"{v:,.4g}" if isinstance(v, float) else str(v))
                                   for v in st.to_numpy()]}, index=pd.Index(st.index.astype(str), name="vectorbt"))


def sweep_overview(ctx: SweepContext) -> pd.DataFrame:
    """One table: what was swept, on what, how."""
    import pandas as pd

    r, m = ctx.result, ctx.result.meta
    days = r.daily_pnl.index
    rows = {
        "sweep id": ctx.sweep_id,
        "configurations": f"{len(r.grid):,}",
        "parameters varied": ", ".join(f"{p} ({ctx.table[p].nunique()})" for p in ctx.varying) or "-",
        "data sets": f"{len(r.segments):,} ({', '.join(map(str, r.segments['name'].head(6)))}"
                     f"{', ...' if len(r.segments) > 6 else ''})",
        "sessions": f"{len(days):,} ({days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d})" if len(days) else "0",
        "capital": f"{float(m.get('capital') or 0):,.0f} $",
        "trials counted for the DSR": f"{int(m.get('n_trials') or len(r.grid)):,}",
        "engine": f"{m.get('engine')} ({m.get('n_workers')} workers), {float(m.get('elapsed_s') or 0):.1f} s",
        "created": str(m.get("created")),
        "code version": str(m.get("code_version")),
        "folder": str(ctx.sweep_dir),
    }
    return pd.DataFrame({"value": list(rows.values())}, index=pd.Index(list(rows.keys()), name="sweep"))


def top_configurations(ctx: SweepContext, objective: str = "sharpe", n: int = 10) -> pd.DataFrame:
    """The ``n`` best configurations by ``objective``: the varied parameters and the main metrics."""
    col = OBJECTIVE_COLUMN[objective]
    cols = [c for c in ("trades", "win_rate", "net_pnl_usd", "profit_factor", "expectancy_r", "sharpe", "sortino",
                        "max_drawdown_usd", "trades_per_day") if c in ctx.table.columns]
    out = ctx.table.sort_values(col, ascending=False, na_position="last").head(n)
    return out[list(ctx.varying) + cols]


def stability_pairs(ctx: SweepContext, max_maps: int = 3) -> list[tuple[str, str]]:
    """Parameter pairs for the stability maps: the varied parameters two by two, in grid order."""
    v = [p for p in ctx.varying if not isinstance(ctx.table[p].iloc[0], (list, tuple))]
    if len(v) < 2:
        return []
    pairs = [(v[i + 1], v[i]) for i in range(0, len(v) - 1, 2)]  # (x = columns, y = rows)
    if len(v) % 2:
        pairs.append((v[-1], v[0]))
    return pairs[:max_maps]


def attempt(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``(fn(*args, **kwargs), None)``, or ``(None, message)`` when the data cannot support it
    (``ValueError``: too few periods, sessions, configurations)."""
    try:
        return fn(*args, **kwargs), None
    except ValueError as exc:
        return None, str(exc)


def note(text: str, kind: str = "info") -> None:
    """A short paragraph; ``kind="warn"`` draws it as a warning box."""
    from IPython.display import HTML, display

    style = ' class="navale-banner"' if kind == "warn" else ""
    display(HTML(f"<p{style}>{_html.escape(text)}</p>"))


def dict_table(values: Mapping[str, Any], name: str = "value") -> pd.DataFrame:
    """A flat mapping as a one-column table (floats to 4 significant digits, lists joined)."""
    import pandas as pd

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "-" if v != v else f"{v:.4g}"
        if isinstance(v, (list, tuple)):
            return "; ".join(map(str, v)) or "-"
        return "-" if v is None else str(v)

    return pd.DataFrame({name: [fmt(v) for v in values.values()]}, index=pd.Index([str(k) for k in values], name=""))


def windows_table(wf: Any, params: Sequence[str] = ()) -> pd.DataFrame:
    """The walk-forward windows, readable: IS and OOS spans, the combo chosen (and its varied
    parameters), IS / OOS objective and Sharpe, OOS net $."""
    import pandas as pd

    w = wf.windows
    out = pd.DataFrame({
        "IS": [f"{a:%Y-%m-%d} .. {b:%Y-%m-%d}" for a, b in zip(w["is_start"], w["is_end"])],
        "OOS": [f"{a:%Y-%m-%d} .. {b:%Y-%m-%d}" + (" (partial)" if p else "")
                for a, b, p in zip(w["oos_start"], w["oos_end"], w["partial"])],
        "combo": w["combo"].astype(object).where(w["combo"].notna(), "stand aside"),
    }, index=pd.Index(w["window"], name="window"))
    for p in params:
        if p in w.columns:
            out[p] = w[p].to_numpy()
    for c, label in (("is_objective", "IS objective"), ("oos_objective", "OOS objective"), ("is_sharpe", "IS Sharpe"),
                     ("oos_sharpe", "OOS Sharpe")):
        out[label] = [("-" if pd.isna(v) else f"{v:+.2f}") for v in w[c]]
    out["OOS net $"] = [f"{v:,.0f}" for v in w["oos_net_pnl"]]
    return out


def checks_table(decision: Any) -> pd.DataFrame:
    """The promotion gate's checks: value, rule, pass/fail and the reason of a failure."""
    import pandas as pd

    rows = []
    for c in decision.checks:
        v = c.value
        rows.append({"check": c.name, "value": "-" if v is None or v != v else f"{v:.3g}",
                     "rule": f"{c.op} {c.threshold:g}", "passed": "yes" if c.passed else "NO", "reason": c.reason})
    return pd.DataFrame(rows)


def sweep_manifest_tables(ctx: SweepContext) -> dict[str, pd.DataFrame]:
    """Base parameters, grid specification and data files (sha256) of the sweep."""
    import pandas as pd

    m = ctx.result.meta
    base = m.get("base_params") or {}
    data = m.get("data") or []
    spec = m.get("grid") or {}
    grid = spec.get("values", spec) if isinstance(spec, dict) else {}
    if isinstance(spec, dict) and spec.get("sample_n"):
        grid = {**grid, "(random sample)": f"{spec['sample_n']} combinations, seed {spec.get('seed')}"}
    return {
        "base parameters": pd.DataFrame({"value": [str(v) for v in base.values()]},
                                        index=pd.Index(list(base.keys()), name="parameter")),
        "grid": pd.DataFrame({"values": [str(v) for v in grid.values()]},
                             index=pd.Index(list(grid.keys()), name="parameter")),
        "data": pd.DataFrame(data),
    }
