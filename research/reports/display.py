"""In-notebook display helpers, so the notebooks stay small: plotly set-up, figures, headings,
the synthetic-data banner, tables and notes, and :func:`publish` (facts handed to the renderer).
"""

from __future__ import annotations

import html as _html
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from research.reports.render import REPORT_MIME

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["setup", "show", "figures_shown", "heading", "banner", "publish", "table", "table_html", "integral_columns",
           "attempt", "note", "dict_table"]


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


def integral_columns(df: pd.DataFrame) -> list[str]:
    """Float columns whose every finite value is a whole number (counts): shown without decimals."""
    import numpy as np

    out = []
    for col in df.columns:
        s = df[col]
        if s.dtype.kind != "f":
            continue
        v = s.to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) and (np.abs(v) < 1e15).all() and (v == np.round(v)).all():
            out.append(col)
    return out


def table_html(df: pd.DataFrame, formats: Mapping[str, str] | str | None = None, *, caption: str | None = None,
               index: bool = True) -> str:
    """The HTML of :func:`table`: counts as integers (2,335, not 2,335.000), other floats to 3 decimals,
    inside a ``navale-table`` box that scrolls sideways when the table is wider than the page."""
    if df.empty:
        return f"<p><em>{_html.escape(caption + ': ' if caption else '')}none</em></p>"
    sty = df.style.format(precision=3, na_rep="-", thousands=",")
    explicit = dict(formats) if isinstance(formats, Mapping) else dict.fromkeys(df.columns, formats) if formats else {}
    counts = [c for c in integral_columns(df) if c not in explicit]
    if counts:
        sty = sty.format("{:,.0f}", subset=counts, na_rep="-")
    for col, fmt in explicit.items():  # one column at a time: a dict would reset the other columns' format
        if col in df.columns:
            sty = sty.format(fmt, subset=[col], na_rep="-")
    if caption:
        sty = sty.set_caption(caption)
    if not index:
        sty = sty.hide(axis="index")
    return f'<div class="navale-table">{sty.to_html()}</div>'


def table(df: pd.DataFrame, formats: Mapping[str, str] | str | None = None, *, caption: str | None = None,
          index: bool = True) -> None:
    """Display a DataFrame as a compact HTML table (``formats``: per-column format strings), see :func:`table_html`."""
    from IPython.display import HTML, display

    display(HTML(table_html(df, formats, caption=caption, index=index)))


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
