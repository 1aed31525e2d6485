"""pyproject.toml and environment.yml agree, and the pins hold on the installed versions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

CONDA_ONLY = {"openjdk"}  # system packages pip cannot install (Java for PySpark)
CONDA_TO_PIP = {
    "ibis-framework-core": "ibis-framework",
    "python-duckdb": "duckdb",
}


def _name_spec(req: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", req.strip())
    assert m, req
    return m.group(1).lower(), m.group(3).replace(" ", "")


def test_pyproject_and_environment_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = dict(
        _name_spec(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]
    )
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        name, spec = _name_spec(dep)
        if name == "python" or name in CONDA_ONLY:
            continue
        conda[CONDA_TO_PIP.get(name, name)] = spec
    assert conda == pip


def test_ibis_sqlglot_pin_holds():
    major = int(version("sqlglot").split(".")[0])
    assert version("ibis-framework").startswith("12.")
    assert major < 29, "ibis 12 fails with sqlglot >= 29"
    # the failure the pin guards against: DuckDB create_table
    import ibis

    con = ibis.duckdb.connect()
    t = con.create_table("pin_check", {"a": [1, 2]})
    assert t.a.sum().execute() == 3


@pytest.mark.slow
def test_non_editable_install_runs_sample_reports_from_another_folder(tmp_path):
    """`pip install .` (not editable) ships the templates and the sample data: a config in
    an unrelated folder using `template:` notebooks and `sample:` sources runs (issue 10)."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "reports.yml").write_text(
        "reports:\n"
        "  - name: checkout\n"
        "    notebook: template:ab_test_evaluation\n"
        "    parameters: {source: 'sample:experiment'}\n"
    )
    env = os.environ | {"PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import aipm_nb.resources as r; print(r.sample_path('events'))"],
        env=env, cwd=work, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(where.stdout.strip()).is_file()
    run = subprocess.run(
        [sys.executable, "-m", "aipm_nb.cli", "run", "reports.yml", "--out", "out",
         "--no-progress"],
        env=env, cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (summary,) = (work / "out").glob("*/checkout.json")
    result = json.loads(summary.read_text())["result"]
    assert result["primary_metric"] == "conversion"
    assert result["decision"]["recommendation"] in {"ship", "do_not_ship", "keep_running"}
