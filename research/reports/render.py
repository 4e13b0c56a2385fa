"""Rendering (called by ``navale report``): execute a parameterised notebook (papermill), export
standalone HTML (nbconvert).

:func:`render_notebook` runs a template notebook from ``notebooks/`` with papermill in a kernel
that is this interpreter (``sys.executable``), keeps the executed ``.ipynb`` beside an HTML file
with the code hidden and plotly.js inlined once (the page needs no network), both written
atomically. A notebook hands facts back to the renderer (the run id, the number of figures)
through :func:`research.reports.display.publish`: a display output of mimetype
:data:`REPORT_MIME`, read from the executed notebook by :func:`notebook_info` and left out of
the HTML.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay inside the functions: `navale --help` stays fast
    import nbformat

__all__ = ["NOTEBOOK_DIR", "REPORT_MIME", "KERNEL_NAME", "ReportPaths", "ReportError", "template_path",
           "render_notebook", "export_html", "notebook_info"]

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
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
.navale-table { overflow-x: auto; max-width: 100%; }
.navale-table th { overflow-wrap: anywhere; }
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

    from research.store.files import atomic_write_text, ensure_dir

    template = Path(template)
    out_dir = ensure_dir(out_dir)  # a folder that cannot be made: WriteError naming it, before the kernel starts
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
