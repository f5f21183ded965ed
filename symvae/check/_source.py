"""Source text with positions, and the error raised for unusable hand-derivation files.

Every position is reported as ``FILE:LINE:COLUMN`` (both 1-based), so an editor can jump to it.
"""
from __future__ import annotations

import bisect

from ..errors import InvalidInputError

__all__ = ["CheckInputError", "Source"]


class CheckInputError(InvalidInputError):
    """A hand-derivation file cannot be used: parse error, unknown symbol, undeclared variant, ...

    Arguments:
        message: what is wrong, in one line.
        path: the file, if known.
        line, column: 1-based position in the file, if known.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None, column: int | None = None):
        self.path, self.line, self.column, self.reason = path, line, column, message
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message)


class Source:
    """The text of one file, mapping character offsets to (line, column).

    Arguments:
        text: the whole file.
        path: its name, used in error messages.
    """

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self._starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def location(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        line = bisect.bisect_right(self._starts, offset) - 1
        return line + 1, offset - self._starts[line] + 1

    def error(self, offset: int | None, message: str) -> CheckInputError:
        """A ``CheckInputError`` located at ``offset`` (or at the file only, if ``offset`` is None)."""
        if offset is None:
            return CheckInputError(message, self.path)
        line, col = self.location(offset)
        return CheckInputError(message, self.path, line, col)
