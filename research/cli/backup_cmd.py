"""``navale backup run|verify|restore|list|prune``: backups of the collection directory and the run store to a
local folder or S3 (docs/backups.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import WRITE_FAILED
from .common import console as make_console

TARGET_HELP = "backup target: a folder, file://PATH or s3://BUCKET/PREFIX (default: $NAVALE_BACKUP_TARGET, else data/backups)"


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 0 <= n <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 0 to 10000, got {n}")
    return n


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale backup`` on the top-level subparsers."""
    p = sub.add_parser(
        "backup",
        help="back up the collected data and the run store (local folder or S3); verify, restore, list, prune",
        description=(
            "Backups to any fsspec target: content-addressed objects (an unchanged file is never sent again) and "
            "one manifest per run with the SHA-256 of every file. S3 credentials come from the environment only "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; NAVALE_BACKUP_ENDPOINT_URL or AWS_ENDPOINT_URL for an "
            "S3-compatible server). docs/backups.md has the rules and the restore drill."
        ),
        epilog=("examples:\n  navale backup run\n  navale backup run --to s3://my-bucket/navale\n"
                "  navale backup verify --to s3://my-bucket/navale\n  navale backup list\n"
                "  navale backup restore --into /tmp/drill\n  navale backup prune --keep-daily 7 --keep-weekly 8\n"
                "\nexit status: 0 done, 1 a problem found (a bad object, something not backed up), 2 bad input,\n"
                "4 the target could not be read or written (the error line names the object and the cause).\n"),
        formatter_class=formatter,
    )
    bsub = p.add_subparsers(dest="command", metavar="SUBCOMMAND")

    def dirs(sp: argparse.ArgumentParser, what: str) -> None:
        sp.add_argument("--dir", metavar="ROOT", help=f"the collection directory {what} (default: $NAVALE_COLLECT_DIR, else data/collect)")
        sp.add_argument("--store", metavar="PATH", help=f"the DuckDB run store {what} (default: $NAVALE_DATA_DIR/navale.duckdb)")

    r = bsub.add_parser("run", help="back up: sealed segments, partitions, reports, SQLite and DuckDB copies",
                        description="Take a snapshot: send what the target does not hold yet, then write the "
                                    "snapshot's manifest. An open segment (no manifest) is taken up to its last whole record.",
                        formatter_class=formatter)
    r.add_argument("--to", metavar="TARGET", help=TARGET_HELP)
    dirs(r, "to back up")
    r.add_argument("--no-store", action="store_true", help="do not back up the run store")
    r.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    v = bsub.add_parser("verify", help="read every object of a snapshot back and check its hashes",
                        description="Download every object of the newest snapshot (or --snapshot) and compare its "
                                    "SHA-256 and size, and after decompression the file's. Names every missing, "
                                    "truncated or altered object; exit 1 if there is one.",
                        formatter_class=formatter)
    v.add_argument("--to", metavar="TARGET", help=TARGET_HELP)
    v.add_argument("--snapshot", metavar="ID", help="the snapshot (default: the newest)")
    v.add_argument("--all", action="store_true", help="every snapshot (each object read once)")
    v.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    s = bsub.add_parser("restore", help="restore a snapshot into an empty directory (verified first)",
                        description="Read and check every object of the snapshot; only when all pass, put the "
                                    "files in place: segments byte-identical, partitions, reports, the SQLite and "
                                    "DuckDB copies. A corrupted backup restores nothing. With --into, everything "
                                    "goes under DIR (the store as DIR/navale.duckdb); without it, into --dir (which "
                                    "must be empty) and the store to --store (which must not exist).",
                        formatter_class=formatter)
    s.add_argument("--from", dest="to", metavar="TARGET", help=TARGET_HELP)
    s.add_argument("--snapshot", metavar="ID", help="the snapshot (default: the newest)")
    s.add_argument("--into", metavar="DIR", help="a new or empty directory to restore into")
    dirs(s, "to restore into, without --into")

    ls = bsub.add_parser("list", help="the snapshots at the target", formatter_class=formatter)
    ls.add_argument("--to", metavar="TARGET", help=TARGET_HELP)
    ls.add_argument("--json", action="store_true", help="print the list as JSON on stdout")

    pr = bsub.add_parser("prune", help="retention: keep the newest snapshot of the last N days and M ISO weeks",
                         description="Keep the newest snapshot of each of the last N days and of the last M ISO "
                                     "weeks that have one (UTC); delete the other manifests, then every object no "
                                     "kept snapshot names.",
                         formatter_class=formatter)
    pr.add_argument("--to", metavar="TARGET", help=TARGET_HELP)
    pr.add_argument("--keep-daily", type=_count, required=True, metavar="N", help="days kept")
    pr.add_argument("--keep-weekly", type=_count, required=True, metavar="M", help="ISO weeks kept")
    pr.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")


def run(args: argparse.Namespace) -> int:
    from live.backup import ops
    from live.backup.target import TargetError, TargetMissing, open_target

    json_out = bool(getattr(args, "json", False))
    out = make_console(stderr=json_out)
    if args.command is None:
        out.print("error: name a subcommand: run, verify, restore, list or prune (navale backup --help)")
        return 2
    try:
        target = open_target(args.to)
    except TargetError as exc:
        return _error(out, str(exc), 2)
    try:
        if args.command != "run":
            target.check(create=False)
        return {"run": _run, "verify": _verify, "restore": _restore, "list": _list, "prune": _prune}[args.command](
            args, target, out, json_out)
    except ops.BackupError as exc:
        return _error(out, str(exc), 2 if exc.bad_input else 1)
    except TargetError as exc:
        return _error(out, str(exc), 2 if isinstance(exc, TargetMissing) else WRITE_FAILED)


def _error(out, message: str, code: int) -> int:
    from rich.markup import escape

    out.print(f"[bold red]error:[/] {escape(message)}")
    return code


def _print(out, lines: list[str]) -> None:
    from rich.markup import escape

    for line in lines:
        out.print(escape(line))


def _run(args, target, out, json_out: bool) -> int:
    from live.backup import ops
    from live.collect.layout import collect_dir
    from research.store.runs import default_store_path

    root = collect_dir(args.dir)
    store = None if args.no_store else Path(args.store) if args.store else default_store_path()
    result = ops.run(root, store, target)
    if json_out:
        print(json.dumps({"snapshot": result.snapshot.id, "target": target.url, **result.snapshot.stats,
                          "skipped_files": result.snapshot.skipped, "warnings": result.warnings}))
    else:
        _print(out, result.lines)
    return 0 if result.ok else 1


def _verify(args, target, out, json_out: bool) -> int:
    from rich.markup import escape
    from rich.table import Table

    from live.backup import ops

    if args.all:
        if args.snapshot or json_out:
            return _error(out, "--all goes with neither --snapshot nor --json", 2)
        snaps, bad = ops.list_snapshots(target)
        if not snaps and not bad:
            return _error(out, f"backup target {target.url}: no snapshot to verify", 2)
        checked: dict[str, str | None] = {}
        results = [ops.verify(target, s.id, checked=checked) for s in snaps]
        for line in bad:
            out.print(f"[bold red]unreadable:[/] {escape(line)}")
        for r in results:
            for line in r.problems:
                out.print(f"[bold red]bad:[/] {r.snapshot.id}: {escape(line)}")
        n_bad = sum(not r.ok for r in results)
        mb = sum(r.bytes_read for r in results) / 1e6
        out.print(f"{'OK' if not n_bad and not bad else 'FAILED'}: {len(results)} snapshot(s) verified, {n_bad} with "
                  f"bad objects, {len(bad)} unreadable manifest(s); {len(checked)} objects, {mb:,.1f} MB read")
        return 0 if not n_bad and not bad else 1
    result = ops.verify(target, args.snapshot)
    if json_out:
        print(json.dumps({"snapshot": result.snapshot.id, "target": target.url, "ok": result.ok,
                          "problems": result.problems, "kinds": result.rows, "seconds": result.seconds}))
        return 0 if result.ok else 1
    for line in result.problems:
        out.print(f"[bold red]bad:[/] {escape(line)}")
    table = Table(title=f"snapshot {result.snapshot.id} at {target.url}")
    for col in ("kind", "files", "MB", "stored MB", "bad"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for row in result.rows:
        table.add_row(row["kind"], str(row["files"]), f"{row['bytes'] / 1e6:,.2f}", f"{row['stored'] / 1e6:,.2f}",
                      str(row["bad"]))
    out.print(table)
    mb_s = result.bytes_read / 1e6 / result.seconds if result.seconds > 0 else 0.0
    verdict = "OK: every object read back matches its hashes" if result.ok else \
        f"FAILED: {len(result.problems)} bad object(s)"
    out.print(f"{verdict} ({result.bytes_read / 1e6:,.1f} MB read in {result.seconds:.1f} s, {mb_s:,.0f} MB/s)")
    return 0 if result.ok else 1


def _restore(args, target, out, json_out: bool) -> int:
    from rich.markup import escape

    from live.backup import ops
    from live.collect.layout import collect_dir
    from research.store.runs import default_store_path

    if args.into:
        into, store_to = Path(args.into), Path(args.store) if args.store else None
    else:
        into = collect_dir(args.dir)
        store_to = Path(args.store) if args.store else default_store_path()
    result = ops.restore(target, into, args.snapshot, store_to=store_to)
    if not result.ok:
        for line in result.problems:
            out.print(f"[bold red]bad:[/] {escape(line)}")
        out.print(f"restore refused: snapshot {result.snapshot.id} has {len(result.problems)} bad object(s); "
                  f"nothing was restored into {into}")
        return 1
    _print(out, result.lines)
    return 0


def _list(args, target, out, json_out: bool) -> int:
    from rich.markup import escape
    from rich.table import Table

    from live.backup import ops

    snaps, bad = ops.list_snapshots(target)
    if json_out:
        print(json.dumps({"target": target.url, "unreadable": bad, "snapshots": [
            {"id": s.id, "files": len(s.entries), "bytes": s.size, "stored_bytes": s.stored_size,
             "skipped_files": s.skipped, **{f"run_{k}": v for k, v in s.stats.items()}} for s in snaps]}))
        return 1 if bad else 0
    table = Table(title=f"snapshots at {target.url}")
    for col in ("snapshot", "files", "MB", "stored MB", "sent", "skipped", "not backed up"):
        table.add_column(col, justify="left" if col == "snapshot" else "right")
    for s in snaps:
        table.add_row(s.id, str(len(s.entries)), f"{s.size / 1e6:,.2f}", f"{s.stored_size / 1e6:,.2f}",
                      str(s.stats.get("sent", "?")), str(s.stats.get("skipped", "?")), str(len(s.skipped)))
    out.print(table)
    for line in bad:
        out.print(f"[bold red]unreadable:[/] {escape(line)}")
    if not snaps and not bad:
        out.print("no snapshot yet (navale backup run)")
    return 1 if bad else 0


def _prune(args, target, out, json_out: bool) -> int:
    from live.backup import ops

    result = ops.prune(target, args.keep_daily, args.keep_weekly, dry_run=args.dry_run)
    _print(out, result.lines)
    return 0
