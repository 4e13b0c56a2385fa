"""``navale data ...`` commands."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from dataclasses import replace
from pathlib import Path

from .common import SYNTHETIC_BANNER, progress_bar
from .common import console as make_console


def _inputs(args: argparse.Namespace, console) -> list[Path]:
    from research.data import default_dataset, expand_paths

    if args.paths:
        return expand_paths(args.paths)
    with console.status("generating the embedded synthetic data set (first run only)..."):
        path = default_dataset()
    console.print(f"using the embedded default data set: {path}")
    return [path]


def run(args: argparse.Namespace) -> int:
    from research.data import DataError

    console = make_console(stderr=getattr(args, "json", None) == "-")
    if args.command == "verify":
        return _verify(args, console)
    if getattr(args, "bar", None) is not None:  # a bad --bar is one line, before any file is read
        from rich.markup import escape

        from research.data.aggregate import parse_bar_spec

        try:
            parse_bar_spec(args.bar)
        except ValueError as exc:
            console.print(f"[bold red]error:[/] --bar: {escape(str(exc))}")
            return 2
    try:
        if args.command == "check":
            return _check(args, console)
        if args.command == "info":
            return _info(args, console)
        if args.command == "synth":
            return _synth(args, console)
    except DataError as exc:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    return 2


def _load_kwargs(args: argparse.Namespace) -> dict:
    return {"bar": args.bar, "tz": args.tz, "session": args.session, "symbol": args.symbol}


def _check(args: argparse.Namespace, console) -> int:
    import pandas as pd
    from rich.table import Table

    from research.data import DataError, check, load_bars

    if args.json and args.json != "-":  # a folder for the JSON that cannot be written fails before the work
        from .common import require_writable_dir

        if Path(args.json).is_dir():
            from research.store.files import WriteError

            raise WriteError(errno.EISDIR, "--json: it is a folder; name a file inside it", args.json)
        require_writable_dir(Path(args.json).parent, "--json")
    paths = _inputs(args, console)
    results = []
    with progress_bar(enabled=getattr(args, "json", None) != "-") as progress:
        task = progress.add_task("checking files", total=len(paths))
        for p in paths:
            progress.update(task, description=f"checking {p.name}")
            try:
                frame = load_bars(p, strict=False, continuous=False, **_load_kwargs(args))
                rep = check(frame)
                results.append((p, frame.attrs, rep, None))
            except DataError as exc:
                results.append((p, None, None, exc))
            progress.advance(task)

    synthetic = any(a and a.get("synthetic") for _, a, _, _ in results)
    if synthetic:
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    table = Table(title="navale data check", show_lines=False)
    for col in ("file", "symbol", "bars", "first (UTC)", "last (UTC)", "flow", "errors", "warnings", "findings"):
        # long file names and messages wrap (fold) rather than being cut with an ellipsis
        table.add_column(col, justify="right" if col in ("bars", "errors", "warnings") else "left",
                         overflow="fold", ratio=3 if col == "findings" else None,
                         no_wrap=col in ("bars", "first (UTC)", "last (UTC)", "errors", "warnings"))
    tot_err = tot_warn = 0
    for p, attrs, rep, exc in results:
        if exc is not None:
            tot_err += 1
            table.add_row(p.name, "-", "-", "-", "-", "-", "[red]unreadable[/]", "-", str(exc))
            continue
        counts = rep.to_dict(max_issues=0)["counts"]
        tot_err += rep.errors
        tot_warn += rep.warnings
        table.add_row(
            p.name,
            str(attrs.get("symbol")),
            f"{rep.rows:,}",
            f"{rep.start:%Y-%m-%d %H:%M}" if rep.start is not None else "-",
            f"{rep.end:%Y-%m-%d %H:%M}" if rep.end is not None else "-",
            "bid/ask" if attrs.get("order_flow") else "OHLCV",
            f"[red]{rep.errors}[/]" if rep.errors else "0",
            f"[yellow]{rep.warnings}[/]" if rep.warnings else "0",
            ", ".join(f"{k} {v}" for k, v in counts.items()) or "clean",
        )
    console.print(table)
    _unknown_instrument_note(console, [(p, a) for p, a, _r, _e in results if a is not None])

    for p, _attrs, rep, _exc in results:
        if rep is None or not len(rep.issues) or args.show <= 0:
            continue
        detail = Table(title=f"{p.name}: first findings per check", title_justify="left")
        for col in ("check", "severity", "row", "line", "time (UTC)", "field", "detail"):
            detail.add_column(col, overflow="fold")
        for _name, grp in rep.issues.groupby("check", sort=False):
            for r in grp.head(args.show).itertuples():
                detail.add_row(
                    r.check,
                    "[red]error[/]" if r.severity == "error" else "[yellow]warning[/]",
                    str(r.row),
                    "" if pd.isna(r.line) else str(int(r.line)),
                    f"{r.time:%Y-%m-%d %H:%M:%S}",
                    str(r.field),
                    str(r.detail),
                )
            if len(grp) > args.show:
                detail.add_row(f"... {len(grp) - args.show} more", "", "", "", "", "", "")
        console.print(detail)

    verdict = "[red]ERRORS[/]" if tot_err else ("[yellow]warnings only[/]" if tot_warn else "[green]clean[/]")
    console.print(f"{len(results)} file(s): {tot_err} error(s), {tot_warn} warning(s): {verdict}")

    if args.json:
        doc = {
            "synthetic": synthetic,
            "files": [
                {"file": str(p), "error": str(exc)} if exc is not None else {"file": str(p), **rep.to_dict()}
                for p, _a, rep, exc in results
            ],
            "errors": tot_err,
            "warnings": tot_warn,
        }
        text = json.dumps(doc, indent=1, default=str)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            from research.store.files import atomic_write_text

            atomic_write_text(Path(args.json), text)
            console.print(f"JSON result: {args.json}")
    return 1 if tot_err or (args.strict_warnings and tot_warn) else 0


def _info(args: argparse.Namespace, console) -> int:
    from rich.table import Table

    from research.data import detect_format, load_bars

    paths = _inputs(args, console)
    table = Table(title="navale data info")
    seen = []
    for col in ("file", "format", "symbol", "bar", "bars", "first (UTC)", "last (UTC)", "order flow", "tick", "quarantined"):
        table.add_column(col)
    for p in paths:
        f = load_bars(p, continuous=False, **_load_kwargs(args))
        a = f.attrs
        seen.append((p, a))
        table.add_row(
            p.name, detect_format(p), str(a.get("symbol")), str(a.get("bar")), f"{len(f):,}",
            f"{f.index[0]:%Y-%m-%d %H:%M}" if len(f) else "-", f"{f.index[-1]:%Y-%m-%d %H:%M}" if len(f) else "-",
            "bid/ask volume" if a.get("order_flow") else "off (OHLCV)", str(a.get("tick_size")), str(len(a.get("quarantine") or [])),
        )  # fmt: skip
        if a.get("synthetic"):
            console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/] ({p.name})")
    console.print(table)
    _unknown_instrument_note(console, seen)
    return 0


def _unknown_instrument_note(console, files: list[tuple[Path, dict]]) -> None:
    """One line per file whose instrument is unknown: its tick size is, so the tick-grid rule did not run."""
    for p, attrs in files:
        if attrs.get("tick_size") is None:
            console.print(f"[yellow]note:[/] {p.name}: the instrument is unknown (the file name does not start with "
                          "a known instrument or contract): prices were not checked against a tick grid, and the "
                          "backtesting commands refuse it; pass --symbol (e.g. --symbol ES)")


def _synth(args: argparse.Namespace, console) -> int:
    from research.data.synthetic import (
        SyntheticSpec,
        default_data_dir,
        write_synthetic_scid,
    )

    changes = {k: v for k, v in (("days", args.days), ("seed", args.seed), ("start", args.start)) if v is not None}
    try:
        spec = replace(SyntheticSpec(), **changes)
    except ValueError as exc:  # out-of-range --days/--seed/--start: one line naming the option and its range
        console.print(f"[bold red]error:[/] {str(exc).replace('synthetic ', '--', 1)}", soft_wrap=True)
        return 2
    out = Path(args.out) if args.out else default_data_dir() / "synthetic"
    from .common import require_writable_dir

    require_writable_dir(out, "--out" if args.out else "the synthetic data folder")
    path = out / f"{spec.symbol}.synthetic.{spec.digest()}.scid"
    with console.status(f"generating {spec.days} synthetic trading days..."):
        write_synthetic_scid(path, spec)
    size = path.stat().st_size
    console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]\nwrote {path} ({(size - 56) // 40:,} trades, {size / 1e6:.1f} MB)")
    return 0


def _verify(args: argparse.Namespace, console) -> int:
    from rich.markup import escape
    from rich.table import Table

    from live.collect.layout import collect_dir
    from live.collect.verify import VerifyInputError, report_json, verify

    try:
        report = verify(Path(args.path) if args.path else None, root=collect_dir(args.dir), deep=args.deep)
    except VerifyInputError as exc:
        make_console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    colour = {"ok": "green", "open": "cyan", "warning": "yellow", "error": "red"}
    table = Table(title=f"navale data verify {report.root}" + ("" if report.deep else " (--no-deep)"))
    for col in ("file", "kind", "status", "detail"):
        table.add_column(col, overflow="fold")
    for r in report.rows:
        table.add_row(escape(r.path), r.kind, f"[{colour[r.status]}]{r.status}[/]", escape(r.detail))
    console.print(table)
    for p in report.problems:
        console.print(f"[{'red' if p.level == 'error' else 'yellow'}]{p.level}:[/] {escape(p.path)}: {escape(p.message)}")
    segs = sum(r.kind == "segment" for r in report.rows)
    parts = sum(r.kind == "partition" for r in report.rows)
    verdict = "[red]ERRORS[/]" if report.errors else ("[yellow]warnings only[/]" if report.warnings else "[green]ok[/]")
    console.print(f"{segs} segment(s), {parts} partition(s): {report.errors} error(s), {report.warnings} warning(s): {verdict}")
    if args.json:
        text = report_json(report)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            from research.store.files import atomic_write_text

            atomic_write_text(Path(args.json), text)
    return 1 if report.errors else 0
