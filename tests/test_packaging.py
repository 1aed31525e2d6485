"""pyproject.toml and environment.yml agree, and the pins hold on the installed versions."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

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
