"""Errors raised by the data layer: each names the file, the row and the field."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad input data. ``str(err)`` reads ``file:row: field: message``.

    ``row`` is the 1-based line number in a text file (the header is line 1), the 0-based
    record number in a binary file, or the 0-based trade number of a tick source (in trade
    order), as ``row_kind`` says.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
        row_kind: str = "line",
    ) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.field = field
        self.row_kind = row_kind
        self.message = message
        where = self.path or "<data>"
        if row is not None:
            where += f": {row_kind} {row}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")
