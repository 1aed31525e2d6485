"""``aipm-nb validate``: what a report run would check, run on the real sources up front."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aipm_nb.reports.config import ReportSpec

__all__ = ["check_report"]


def check_report(
    spec: ReportSpec, base: Path, declared: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Problems a run of ``spec`` would hit before its analysis starts, one line each."""
    if "source" not in spec.parameters:
        return []
    from aipm_nb.sources import open_source

    cwd = os.getcwd()
    try:
        os.chdir(base)
        open_source(
            spec.parameters["source"],
            table=spec.parameters.get("table"),
            allow_empty=True,
            name="source",
        )
    except Exception as exc:
        return [f"{spec.name}: {exc}"]
    finally:
        os.chdir(cwd)
    return []
