"""``aipm-nb init``: a new analysis project from the shipped templates and sample data."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

from aipm_nb import config, resources
from aipm_nb.errors import ParameterError

__all__ = ["STARTER_CONFIG", "init_project"]

#: The starter reports.yml: one report per template on the sample data, each template named
#: by its name (``notebook: cohort_analysis``) so that it runs from the installed package.
STARTER_CONFIG = """\
# Reports that `aipm-nb run` refreshes into reports/ (paths are relative to this file).
# Point `source` at your own data (a CSV/Parquet path, a DuckDB file, a connection URL or
# "env:NAME" for a URL kept in the environment) and set the column names; `aipm-nb list` shows
# every template's parameters, `aipm-nb validate` checks this file against the data.
reports:
  - name: weekly-retention
    notebook: notebooks/cohort_analysis.ipynb
    parameters: {source: data/events.parquet, period: week}
  - name: checkout-test
    notebook: notebooks/ab_test_evaluation.ipynb
    parameters: {source: data/experiment.parquet}
  - name: assistant-model
    notebook: notebooks/model_performance.ipynb
    parameters:
      source: data/predictions.parquet
      segment_cols: [platform, model_version]
      feature_cols: [prompt_length, account_age_days, sessions_7d, latency_ms, feature_usage]
      metric_floor: 0.7
  - name: weekly-kpis
    notebook: notebooks/kpi_monitoring.ipynb
    parameters: {source: data/events.parquet, predictions_source: data/predictions.parquet}
  - name: activation-funnel
    notebook: notebooks/funnel_analysis.ipynb
    parameters:
      source: data/funnel_events.parquet
      assignments_source: data/funnel_assignments.parquet
  - name: assistant-eval
    notebook: notebooks/llm_evaluation.ipynb
    parameters:
      source: data/llm_responses.parquet
      preferences_source: data/llm_preferences.parquet
"""


def init_project(folder: str | Path) -> list[Path]:
    """Copy the templates (``notebooks/``), the sample data (``data/``) and a starter
    ``reports.yml`` into ``folder`` (made if missing). Nothing is overwritten: if any of those
    files exists already, nothing is written and the error lists them.

    Returns:
        The files written.
    """
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ParameterError(f"{root} exists and is not a folder")
    plan: dict[Path, Path | str] = {}
    kernel = _kernel_display_name()
    for nb in sorted(resources.templates_dir().glob("*.ipynb")):
        plan[root / "notebooks" / nb.name] = for_this_environment(nb, kernel)
    for name, file in sorted(config.SAMPLE_FILES.items()):
        sample = resources.sample_path(name)
        if not sample.exists():
            raise ParameterError(
                f"sample data {file} is missing from the installed package; run `aipm-nb data`"
            )
        plan[root / "data" / file] = sample
    plan[root / "reports.yml"] = STARTER_CONFIG
    there = [p for p in plan if p.exists()]
    if there:
        shown = ", ".join(str(p) for p in there[:5]) + (" …" if len(there) > 5 else "")
        raise ParameterError(
            f"{len(there)} files would be overwritten ({shown}); nothing was written — pick a "
            "new folder or move them away"
        )
    for dest, what in plan.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        if isinstance(what, str):
            tmp.write_text(what, encoding="utf-8")
        else:
            shutil.copyfile(what, tmp)
        tmp.replace(dest)
    return list(plan)


def _kernel_display_name() -> str | None:
    """The display name of this environment's ``python3`` kernel (None: not found)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return str(KernelSpecManager().get_kernel_spec("python3").display_name)
    except Exception:  # no Jupyter, no such kernel: keep the templates' own name
        return None


def for_this_environment(template: Path, kernel: str | None) -> str:
    """The template's text with its kernel's display name and Python version set to this
    environment's: JupyterLab rewrites both when the kernel starts (``kernelspec`` and
    ``language_info`` metadata), marking an untouched notebook as modified otherwise.
    """
    text = template.read_text(encoding="utf-8")
    nb = json.loads(text)
    meta = nb.setdefault("metadata", {})
    if kernel is not None:
        meta.setdefault("kernelspec", {})["display_name"] = kernel
    if "language_info" in meta:
        meta["language_info"]["version"] = platform.python_version()
    return json.dumps(nb, indent=1, ensure_ascii=False)
