"""``aipm-nb validate``: what a report run would check, run on the real sources up front."""

from __future__ import annotations

import os
from pathlib import Path

from aipm_nb.reports.config import ReportSpec

__all__ = ["check_report"]


def check_report(spec: ReportSpec, base: Path) -> list[str]:
    """Problems a run of ``spec`` would hit when it opens its source, one line each.

    Today this opens the source (file, URL, ``env:``); the analyses' own column and value
    checks are not run here yet (issue 11, item 2).
    """
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
