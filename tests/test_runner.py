"""`aipm-nb run / validate / list` end to end with real papermill and nbconvert runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from aipm_nb.cli import main

FIXTURES = ROOT / "tests" / "fixtures"
AB = str(ROOT / "notebooks" / "ab_test_evaluation.ipynb")

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, reports: list[dict], name: str = "reports.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"reports": reports}))
    return path


def _all_text(folder: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file()
    )


def test_repo_reports_yml_end_to_end(tmp_path, capsys):
    """The shipped reports.yml runs every template on the sample data."""
    out = tmp_path / "out"
    code = main(["run", str(ROOT / "reports.yml"), "--out", str(out), "--run-id", "r1",
                 "--jobs", "2", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    specs = yaml.safe_load((ROOT / "reports.yml").read_text())["reports"]
    manifest = json.loads((out / "r1" / "run.json").read_text())
    assert [r["name"] for r in manifest["reports"]] == [s["name"] for s in specs]
    for s in specs:
        summary = json.loads((out / "r1" / f"{s['name']}.json").read_text())
        assert set(summary) == {"schema_version", "kind", "title", "generated_at", "parameters",
                                "data", "warnings", "result"}  # fmt: skip
        assert summary["schema_version"] == 1
        assert isinstance(summary["data"]["rows"], int)
        page = (out / "r1" / f"{s['name']}.html").read_text()
        assert "<img" in page and "data:image/png;base64" in page  # figures embedded
        assert "cdnjs" not in page and "<script src=" not in page  # self-contained
        assert "analyze_experiment(" not in page  # code hidden by default
        nb = json.loads((out / "r1" / f"{s['name']}.ipynb").read_text())
        assert nb["metadata"]["papermill"]["parameters"]["summary_path"].endswith(".json")
    index = (out / "index.html").read_text()
    assert "checkout-test" in index and "ship" in index
    latest = json.loads((out / "latest.json").read_text())
    assert latest["latest_run"]["run_id"] == "r1"
    assert not list(out.glob(".staging-*"))  # nothing left behind
    assert not list(out.rglob("*.tmp"))


def test_failure_is_isolated_and_old_report_kept(tmp_path, capsys):
    out = tmp_path / "out"
    good = {"name": "checkout", "notebook": AB,
            "parameters": {"source": str(ROOT / "data" / "experiment.parquet")}}  # fmt: skip
    cfg = _config(tmp_path, [good])
    assert main(["run", str(cfg), "--out", str(out), "--run-id", "first", "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in (out / "first").iterdir()}

    missing = {"name": "checkout", "notebook": AB,
               "parameters": {"source": str(tmp_path / "nope.parquet")}}  # fmt: skip
    broken = {"name": "broken", "notebook": str(FIXTURES / "broken.ipynb")}
    other = {"name": "other", "notebook": AB, "parameters": {"segment_cols": []}}
    cfg = _config(tmp_path, [missing, broken, other])
    capsys.readouterr()
    code = main(["run", str(cfg), "--out", str(out), "--run-id", "second", "--no-progress",
                 "--jobs", "2"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "failed reports: checkout, broken" in captured.err
    run = json.loads((out / "second" / "run.json").read_text())
    status = {r["name"]: r for r in run["reports"]}
    assert status["other"]["status"] == "ok"
    assert (out / "second" / "other.json").exists()
    assert status["checkout"]["status"] == "failed"
    assert "nope.parquet' does not exist" in status["checkout"]["error"]
    assert not (out / "second" / "checkout.json").exists()
    page = (out / "second" / "checkout.html").read_text()
    assert "This report failed in cell" in page and "does not exist" in page
    assert status["broken"]["failed_cell"] == 4  # In [4]: papermill's injected cell is 1
    assert "deliberate failure" in status["broken"]["error"]
    # the earlier good report is untouched and still the latest good one
    assert {p.name: p.read_bytes() for p in (out / "first").iterdir()} == before
    latest = json.loads((out / "latest.json").read_text())
    assert latest["latest_good"]["checkout"]["run_id"] == "first"
    index = (out / "index.html").read_text()
    runs = index.split("Every run")[1]
    assert runs.index(">second<") < runs.index(">first<")  # newest first
    assert 'class="pill failed"' in index


def _flaky_kernel(tmp_path: Path, failures: int) -> dict[str, str]:
    """A ``python3`` kernel (found first through JUPYTER_PATH) that dies at start the first
    ``failures`` times, as a kernel does when another process took its port; then a real
    ipykernel. Returns the environment that selects it."""
    import sys

    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    counter = tmp_path / "starts"
    launcher = spec_dir / "launch.py"
    launcher.write_text(
        "import os, sys\n"
        f"counter = {str(counter)!r}\n"
        "n = int(open(counter).read()) if os.path.exists(counter) else 0\n"
        "open(counter, 'w').write(str(n + 1))\n"
        f"if n < {failures}:\n"
        "    sys.exit('zmq.error.ZMQError: Address already in use')\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher', *sys.argv[1:]])\n"
    )
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(launcher), "-f", "{connection_file}"],
        "display_name": "Python 3 (aipm-nb)", "language": "python",
    }))  # fmt: skip
    return {"JUPYTER_PATH": str(tmp_path / "jupyter")}


@pytest.mark.parametrize("failures", [1, 2])
def test_a_kernel_that_fails_to_start_is_retried_once(tmp_path, monkeypatch, failures):
    """jupyter_client's port race (kernels starting in parallel) kills a kernel before it
    replies: nothing ran, so the report is run once more; a second failure is reported."""
    for key, value in _flaky_kernel(tmp_path, failures).items():
        monkeypatch.setenv(key, value)
    spec = {"name": "checkout", "notebook": AB,
            "parameters": {"source": str(ROOT / "data" / "experiment.parquet")}}  # fmt: skip
    out = tmp_path / "out"
    code = main(["run", str(_config(tmp_path, [spec])), "--out", str(out), "--run-id", "k",
                 "--no-progress"])  # fmt: skip
    r = json.loads((out / "k" / "run.json").read_text())["reports"][0]
    assert int((tmp_path / "starts").read_text()) == 2  # one retry, never more
    if failures == 1:
        assert code == 0 and r["status"] == "ok", r
    else:
        assert code == 1 and r["status"] == "failed"
        assert "Kernel died before replying to kernel_info" in r["error"]


def test_hung_notebook_times_out(tmp_path):
    cfg = _config(tmp_path, [{"name": "hang", "notebook": str(FIXTURES / "hang.ipynb")}])
    out = tmp_path / "out"
    code = main(["run", str(cfg), "--out", str(out), "--run-id", "h", "--timeout", "5",
                 "--no-progress"])  # fmt: skip
    assert code == 1
    r = json.loads((out / "h" / "run.json").read_text())["reports"][0]
    assert r["status"] == "failed" and "timed out" in r["error"]
    assert r["duration_s"] < 60
    assert (out / "h" / "hang.html").exists()


def test_secrets_never_reach_outputs(tmp_path, monkeypatch, capsys):
    secret_dir = tmp_path / "tok-9f8e7d6c5b4a"
    secret_dir.mkdir()
    shutil.copy(ROOT / "data" / "events.parquet", secret_dir / "events.parquet")
    secret = str(secret_dir / "events.parquet")
    monkeypatch.setenv("AIPM_TEST_WAREHOUSE", secret)
    password = "hunter2-Sup3rSecret"
    cfg = _config(tmp_path, [
        {"name": "env-source", "notebook": str(FIXTURES / "echo_source.ipynb"),
         "parameters": {"source": "env:AIPM_TEST_WAREHOUSE"}},
        {"name": "literal-url", "notebook": str(FIXTURES / "echo_source.ipynb"),
         "parameters": {"source": f"postgresql://ana:{password}@127.0.0.1:1/prod",
                        "table": "events"}},
    ])  # fmt: skip
    out = tmp_path / "out"
    code = main(["run", str(cfg), "--out", str(out), "--run-id", "s", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1  # the URL points at no server: that report fails, with a redacted error
    run = json.loads((out / "s" / "run.json").read_text())
    assert run["reports"][0]["status"] == "ok"
    assert "could not connect" in run["reports"][1]["error"]
    everything = _all_text(out) + captured.out + captured.err
    assert "tok-9f8e7d6c5b4a" not in everything
    assert password not in everything
    assert "env:AIPM_TEST_WAREHOUSE" in (out / "s" / "env-source.ipynb").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("reports: [name: x\n", "not valid YAML at line"),
        ({"reports": [{"name": "a", "notebook": "notebooks/nope.ipynb"}]},
         "notebook 'notebooks/nope.ipynb' does not exist"),
        ({"reports": [{"name": "a", "notebook": AB, "parameters": {"colour": "red"}}]},
         "a: unknown parameter 'colour'"),
        ({"reports": [{"name": "a", "notebook": AB, "parameters": {"alpha": "high"}}]},
         "a: parameter 'alpha' is str 'high'; expected float"),
        ({"reports": [{"name": "a", "notebook": AB}, {"name": "a", "notebook": AB}]},
         "duplicate report name 'a'"),
        ({"reports": [{"name": "../x", "notebook": AB}]}, "name '../x' is not a slug"),
        ({"reports": [{"name": "a", "notebook": AB, "parameters": {"summary_path": "x"}}]},
         "'summary_path' is set by the runner"),
        ({"reports": []}, "'reports' is empty"),
        ({"reports": [{"name": "a", "notebook": "cohort_analysys"}]},
         "unknown template 'cohort_analysys'; expected one of"),
    ],
)  # fmt: skip
def test_bad_configs_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "reports.yml"
    if content is not None:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_validate_checks_sources(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AIPM_NOT_SET", raising=False)
    cfg = _config(tmp_path, [
        {"name": "ok", "notebook": AB},
        {"name": "missing", "notebook": AB, "parameters": {"source": "data/none.parquet"}},
        {"name": "env", "notebook": AB, "parameters": {"source": "env:AIPM_NOT_SET"}},
    ])  # fmt: skip
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "missing: " in err[0] and "does not exist" in err[0]
    assert "env: " in err[1] and "'AIPM_NOT_SET' is not set" in err[1]
    assert main(["validate", str(ROOT / "reports.yml")]) == 0


def test_templates_by_name_validate(tmp_path, capsys):
    """`notebook: cohort_analysis` names the shipped template (a file of that name beside the
    config wins)."""
    cfg = _config(tmp_path, [{"name": "r", "notebook": "cohort_analysis",
                              "parameters": {"source": "sample:events"}}])  # fmt: skip
    assert main(["validate", str(cfg)]) == 0, capsys.readouterr().err


def test_init_makes_a_project_and_never_overwrites(tmp_path, capsys):
    from aipm_nb import config

    assert main(["init", str(tmp_path / "p")]) == 0
    assert "next: cd" in capsys.readouterr().out
    p = tmp_path / "p"
    assert sorted(f.name for f in (p / "data").iterdir()) == sorted(config.SAMPLE_FILES.values())
    assert {f.stem for f in (p / "notebooks").glob("*.ipynb")} >= {"funnel_analysis"}
    assert main(["validate", str(p / "reports.yml")]) == 0, capsys.readouterr().err
    # the templates name this environment's kernel and Python version (JupyterLab would
    # otherwise rewrite them and mark an untouched notebook modified); nothing else differs
    # from the shipped template
    import json
    import platform

    from jupyter_client.kernelspec import KernelSpecManager

    kernel = KernelSpecManager().get_kernel_spec("python3").display_name
    for nb in (p / "notebooks").glob("*.ipynb"):
        mine, shipped = (
            json.loads(nb.read_text()),
            json.loads((ROOT / "notebooks" / nb.name).read_text()),
        )
        assert mine["metadata"]["kernelspec"]["display_name"] == kernel
        assert mine["metadata"]["language_info"]["version"] == platform.python_version()
        for key, field in (("kernelspec", "display_name"), ("language_info", "version")):
            mine["metadata"][key][field] = shipped["metadata"][key][field]
        assert mine == shipped
    (p / "reports.yml").write_text("mine\n")
    (p / "notebooks" / "cohort_analysis.ipynb").unlink()  # one missing, the rest present
    assert main(["init", str(p)]) == 2
    err = capsys.readouterr().err
    assert "would be overwritten" in err and "nothing was written" in err
    assert (p / "reports.yml").read_text() == "mine\n"
    assert not (p / "notebooks" / "cohort_analysis.ipynb").exists()


def test_list_shows_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ab_test_evaluation.ipynb" in out
    assert "alpha" in out and "float" in out and "= 0.05" in out


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_run_killed_midway_leaves_nothing_half_written(tmp_path, how):
    """A run stopped by a scheduler (SIGTERM) or killed outright (SIGKILL) after one report
    finished: every visible file is complete, and the index never lists the partial run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    quick = {"name": "quick", "notebook": str(FIXTURES / "echo_source.ipynb")}
    hang = {"name": "hang", "notebook": str(FIXTURES / "hang.ipynb")}
    cfg = _config(tmp_path, [quick, hang])
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aipm_nb.cli", "run", str(cfg), "--out", str(out), "--run-id",
         "partial", "--no-progress", "--jobs", "2", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while not (out / "partial" / "quick.html").exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (out / "partial" / "quick.html").exists()
    time.sleep(1)
    os.kill(proc.pid, getattr(signal, how))
    proc.wait(timeout=60)
    assert proc.returncode != 0
    run_dir = out / "partial"
    assert not (run_dir / "run.json").exists()
    for p in run_dir.iterdir():
        if p.name.startswith("."):
            continue  # temporary names are hidden; nothing points at them
        text = p.read_text()
        if p.suffix == ".html":
            assert text.rstrip().endswith("</html>")
        else:
            json.loads(text)
    if how == "SIGTERM":
        assert not list(out.glob(".staging-*"))  # cleaned up on the way out
    # the next run's index does not list the partial one
    ok = _config(tmp_path, [quick], name="ok.yml")
    assert main(["run", str(ok), "--out", str(out), "--run-id", "next", "--no-progress"]) == 0
    index = (out / "index.html").read_text()
    assert "next" in index and ">partial<" not in index
