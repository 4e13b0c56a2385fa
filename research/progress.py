"""The one rich progress-bar layout every long job shows (commands and the sweep runner)."""

from __future__ import annotations

from typing import Any

__all__ = ["make_progress"]


def make_progress(*, console: Any = None, description: str = "{task.description}", disable: bool = False):
    """A transient rich ``Progress``: spinner, description, bar, done/total, elapsed time and ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(SpinnerColumn(), TextColumn(description), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, transient=True, disable=disable)
