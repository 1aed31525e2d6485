"""One exception hierarchy: every error aipm_nb raises on purpose subclasses `AipmNbError`.

Each message says what was wrong, where (table, column, value) and how to fix it, so that a
notebook or a scheduled report shows one readable line instead of a pandas/SQL traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class AipmNbError(Exception):
    """Base class of all aipm_nb errors."""


class SourceError(AipmNbError):
    """A data source could not be found, opened or read."""


class SourceNotFoundError(SourceError, FileNotFoundError):
    """The path, glob or table a source names does not exist."""


class SchemaError(AipmNbError, ValueError):
    """A table lacks a required column, or a column has the wrong type.

    Attributes:
        table: Human-readable name of the table (with its redacted source).
        column: The offending column.
    """

    def __init__(self, message: str, *, table: str, column: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.column = column


class DataError(AipmNbError, ValueError):
    """The data has the right shape but values the analysis cannot use (empty table, scores
    outside [0, 1], a unit in two variants, ...).

    Attributes:
        table: Human-readable name of the table, when known.
        column: The offending column, when there is one.
        count: How many rows or units are affected, when counted.
        examples: A few offending values.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        count: int | None = None,
        examples: Sequence[object] | None = None,
    ) -> None:
        super().__init__(message)
        self.table = table
        self.column = column
        self.count = count
        self.examples = list(examples or [])


class EmptyTableError(DataError):
    """The table (after the analysis' filters) has no rows: ``<table> has no rows; …``."""


class ParameterError(AipmNbError, ValueError):
    """An argument or notebook parameter has a value that is not allowed."""


class ConfigError(AipmNbError, ValueError):
    """A report configuration file is missing, malformed or inconsistent."""
