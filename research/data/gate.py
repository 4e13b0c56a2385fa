"""The data gate of the commands: check every loaded file, refuse on errors, summarise in one line.

``navale backtest``, ``report``, ``sweep`` and the ML commands load each file with
``on_error="quarantine"``, pass it to :meth:`DataGate.add`, and call :meth:`DataGate.finish`:
errors (rows the loader set aside, and the error checks of :func:`research.data.check`)
raise :class:`DataCheckError` unless ``allow_errors``; warnings are only counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import DataError
from .quality import check

__all__ = ["DataGate", "DataCheckSummary", "DataCheckError", "QUARANTINED"]

QUARANTINED = "bad_row"  # the count name of rows the loader set aside (impossible, unreadable, time out of order)


class DataCheckError(DataError):
    """The data check found errors: a one-line message with the counts and the first error."""

    def __init__(self, message: str) -> None:
        self.path, self.row, self.field, self.row_kind, self.message = None, None, None, "line", message
        ValueError.__init__(self, message)


@dataclass
class DataCheckSummary:
    """Counts of one gate: files, bars, errors and warnings by check, the first error, the override."""

    files: int = 0
    bars: int = 0
    errors: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    first_error: str | None = None
    allow_errors: bool = False

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def n_warnings(self) -> int:
        return sum(self.warnings.values())

    def line(self) -> str:
        """``data check: 32 files, 545,123 bars, 0 errors, 812 warnings (gap 790, ...): ...``"""
        def kinds(c: Counter) -> str:
            return " (" + ", ".join(f"{k} {v:,}" for k, v in c.most_common()) + ")" if c else ""

        text = (f"data check: {self.files} file{'s' if self.files != 1 else ''}, {self.bars:,} bars, "
                f"{self.n_errors:,} error{'s' if self.n_errors != 1 else ''}{kinds(self.errors)}, "
                f"{self.n_warnings:,} warning{'s' if self.n_warnings != 1 else ''}{kinds(self.warnings)}")
        if self.n_errors and self.allow_errors:
            text += ": used anyway (--allow-data-errors)"
        if self.n_errors or self.n_warnings:
            text += ": `navale data check` lists them"
        return text

    def to_manifest(self) -> dict:
        """What a run's manifest records about its data."""
        return {"errors": self.n_errors, "warnings": self.n_warnings, "error_counts": dict(self.errors),
                "warning_counts": dict(self.warnings), "allow_data_errors": self.allow_errors}


class DataGate:
    """Collects the check of each loaded file; :meth:`finish` refuses on errors unless allowed."""

    def __init__(self, allow_errors: bool = False) -> None:
        self.summary = DataCheckSummary(allow_errors=allow_errors)

    def add(self, path: str | Path, frame: pd.DataFrame) -> None:
        """Check one file's frame (as loaded, before any date filter) and count its findings."""
        s = self.summary
        s.files += 1
        s.bars += len(frame)
        quarantined = frame.attrs.get("quarantine") or []
        if quarantined:
            s.errors[QUARANTINED] += len(quarantined)
            if s.first_error is None:
                q = quarantined[0]
                s.first_error = f"{q['file']}: line {q['line']}: field {q['field']!r}: {q['reason']}"
        rep = check(frame)
        if not len(rep.issues):
            return
        for (name, sev), n in rep.issues.groupby(["check", "severity"]).size().items():
            (s.errors if sev == "error" else s.warnings)[name] += int(n)
        if s.first_error is None and rep.errors:
            r = rep.issues[rep.issues["severity"] == "error"].iloc[0]
            where = f"line {int(r['line'])}" if pd.notna(r["line"]) else f"{r['time']:%Y-%m-%d %H:%M} UTC"
            s.first_error = f"{path}: {where}: field {r['field']!r}: {r['check']}: {r['detail']}"

    def finish(self) -> DataCheckSummary:
        """The summary; raises :class:`DataCheckError` (one line) on errors unless ``allow_errors``."""
        s = self.summary
        if s.n_errors and not s.allow_errors:
            raise DataCheckError(f"{s.line()}; first: {s.first_error}; "
                                 "fix the data, or pass --allow-data-errors to use it anyway")
        return s
