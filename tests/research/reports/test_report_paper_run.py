"""``navale report performance --run RUN_ID``: a real paper session (replayed synthetic bars, run store and journal
in a temporary folder) rendered by the performance notebook from the session's own trades, equity and bars."""

from __future__ import annotations

import nbformat
import pytest

from live.session import open_session
from research.cli import main
from research.reports.render import notebook_info
from strategy import Params


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, data_dir):
    """The default of a fresh clone: `navale paper` on the synthetic feed (its manifest names the generator's
    spec, so the report reloads the same bars)."""
    d = tmp_path_factory.mktemp("paper_report")
    store = d / "data" / "navale.duckdb"
    store.parent.mkdir()
    trader = open_session(Params.for_mode("paper"), feed="synthetic", state_dir=d / "state", speed=None,
                          unvalidated=True, store_path=store)
    try:
        res = trader.run()
    finally:
        trader.store_sync.close()
        trader.journal.close()
    assert len(res.trades) > 0
    return {"dir": d, "run_id": trader.run_id, "res": res, "store": store}


def _outputs(nb) -> str:
    return "\n".join(str(o.get("data", {}).get("text/html", "")) + str(o.get("text", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_renders_a_paper_session(paper_run, monkeypatch, tmp_path):
    monkeypatch.setenv("NAVALE_DATA_DIR", str(paper_run["store"].parent))
    rid = paper_run["run_id"]
    out = tmp_path / "reports"
    assert main(["report", "performance", "--run", rid, "--state-dir", str(paper_run["dir"] / "state"),
                 "--out", str(out), "--no-progress", "--examples", "1"]) == 0
    html = out / "performance" / rid / "performance_report.html"
    ipynb = html.with_suffix(".ipynb")
    assert html.is_file() and ipynb.is_file()
    nb = nbformat.read(ipynb, as_version=4)
    text = _outputs(nb)
    res = paper_run["res"]
    assert rid in text and "UNVALIDATED" in text and "SYNTHETIC DATA" in text
    assert f"from the journal, 2024-03-04 to 2024-03-15, {len(res.equity):,} in-session bars" in text
    info = notebook_info(nb)
    assert info["run_id"] == rid and info["trades"] == len(res.trades) and info["figures"] >= 3
    net = f"{float(res.trades['pnl_usd'].sum()):,.0f}"
    assert net in text  # the headline's net P&L is the session's


def test_unknown_run_is_one_line_error(paper_run, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NAVALE_DATA_DIR", str(paper_run["store"].parent))
    assert main(["report", "performance", "--run", "paper-nope", "--state-dir", str(paper_run["dir"] / "state"),
                 "--out", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().out.split())
    assert "no paper run 'paper-nope'" in err


def test_backtest_options_are_refused_with_run(paper_run, tmp_path, capsys):
    assert main(["report", "performance", "--run", paper_run["run_id"], "--mode", "backtest",
                 "--out", str(tmp_path)]) == 2
    assert "do not also give --mode" in " ".join(capsys.readouterr().out.split())
