"""Report runs under attack and under stress (issue 12): script in data values, passwords with
any character, concurrent runs, reserved names, odd parameters, timeouts, odd output folders.

Every test runs the real runner (papermill kernels, nbconvert) and, for the script test, a real
headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from aipm_nb.cli import main

FIXTURES = ROOT / "tests" / "fixtures"
NOTEBOOKS = ROOT / "notebooks"

pytestmark = pytest.mark.slow


def _config(folder: Path, reports: list[dict], name: str = "reports.yml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"reports": reports}, allow_unicode=True))
    return path


def _notebook(path: Path, parameters: str, *cells: str, markdown: str | None = None) -> Path:
    """A small template: one `parameters` cell, optional Markdown, then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    nb.cells.append(first)
    if markdown:
        nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


WRITE_SUMMARY = """
from aipm_nb.summary import build_summary, write_summary
result = {"period": "week", "retention_type": "on", "cohorts": [], "average_retention": []}
summary = build_summary("cohort", title=str(title), parameters={}, data={"rows": 1}, result=result)
write_summary(summary_path, summary)
"""


def _everything(folder: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file()
    )


# ---------------------------------------------------------------------------------------
# 1. no data value runs script


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    if os.environ.get("AIPM_NB_SKIP_BROWSER") == "1":
        pytest.skip("no Chromium on PATH and AIPM_NB_SKIP_BROWSER=1: the browser test is skipped")
    pytest.fail("no Chromium on PATH (it has no wheel): install chromium, e.g. `apt-get install "
                "chromium` (make test does so as root), or set AIPM_NB_SKIP_BROWSER=1 to skip "
                "the browser tests")  # fmt: skip


def _dom(page: Path) -> str:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={page.parent / '.chromium'}", "--virtual-time-budget=3000",
           "--dump-dom", page.resolve().as_uri()]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def _title(dom: str) -> str:
    m = re.search(r"<title>(.*?)</title>", dom, re.S)
    return m.group(1) if m else ""


def _payload(tag: str) -> str:
    return f"<img src=x onerror=\"document.title='XSS-{tag}'\">"


def test_chromium_check_can_fail(tmp_path):
    """The detector itself: a page with the raw payload does change the title."""
    page = tmp_path / "raw.html"
    page.write_text(f"<html><head><title>clean</title></head><body>{_payload('raw')}</body></html>")
    assert _title(_dom(page)) == "XSS-raw"


def test_data_values_never_run_script(tmp_path):
    exp = pd.read_parquet(ROOT / "data" / "experiment.parquet").head(6000)
    exp["variant"] = exp["variant"].replace({"treatment": _payload("variant")})
    exp["platform"] = exp["platform"].replace({"ios": "<script>document.title='XSS-seg'</script>"})
    exp.to_parquet(tmp_path / "exp.parquet")
    ev = pd.read_parquet(ROOT / "data" / "events.parquet")
    ev["event_name"] = ev["event_name"].replace({"ai_assist_used": _payload("event")})
    ev["platform"] = ev["platform"].replace({"web": _payload("cohort-seg")})
    ev.to_parquet(tmp_path / "events.parquet")
    pred = pd.read_parquet(ROOT / "data" / "predictions.parquet").head(20000)
    pred["model_version"] = pred["model_version"].replace({"v1": _payload("model")})
    pred = pred.rename(columns={"prompt_length": _payload("column")})
    pred.to_parquet(tmp_path / "pred.parquet")
    metrics = [{"name": _payload("metric"), "type": "proportion", "column": "converted"},
               {"name": "revenue", "type": "mean", "column": "revenue"}]  # fmt: skip
    cfg = _config(tmp_path, [
        {"name": "ab", "notebook": str(NOTEBOOKS / "ab_test_evaluation.ipynb"),
         "title": _payload("title"),
         "parameters": {"source": "exp.parquet", "metrics": metrics}},
        {"name": "cohort", "notebook": str(NOTEBOOKS / "cohort_analysis.ipynb"),
         "parameters": {"source": "events.parquet", "adoption_event": _payload("event"),
                        "title": _payload("title")}},
        {"name": "model", "notebook": str(NOTEBOOKS / "model_performance.ipynb"),
         "parameters": {"source": "pred.parquet", "segment_cols": ["model_version"],
                        "feature_cols": [_payload("column")], "title": _payload("title")}},
    ])  # fmt: skip
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--run-id", "x", "--no-progress"]) == 0
    for page in [out / "index.html", *sorted((out / "x").glob("*.html"))]:
        dom = _dom(page)
        assert not _title(dom).startswith("XSS-"), f"script ran in {page.name}: {_title(dom)}"
        assert '<img src="x"' not in dom and "<script>document.title" not in dom, page.name
        if page.name != "index.html":  # the payload shows as text
            assert "&lt;img src=x onerror=" in dom, page.name


# ---------------------------------------------------------------------------------------
# 2. passwords with any character never reach an output

PASSWORDS = ["Sl4sh/Pw9876qq", "H4shy#Pw9876qq", "Atsgn@Pw9876qq", "Pcent%Pw9876qq",
             "Colon:Pw9876qq", "Mixed/#@%:Zz9876qq"]  # fmt: skip


def _fragments(password: str) -> list[str]:
    return [password] + [f for f in re.split(r"[/#@%:]", password) if len(f) >= 4]


LEAKY = """
import os
from urllib.parse import urlsplit
from aipm_nb.sources import open_source, resolve_env
url = resolve_env(source)
print(urlsplit(url))
print({k: v for k, v in os.environ.items() if k.startswith("AIPM")})
print("title:", title)
open_source(source, table="events")
"""


@pytest.mark.parametrize("mode", ["env", "literal"])
def test_passwords_with_special_characters_never_leak(tmp_path, monkeypatch, capsys, mode):
    nb = _notebook(tmp_path / "leaky.ipynb", 'source = "x"\ntitle = "t"\nsummary_path = None',
                   LEAKY)  # fmt: skip
    reports = []
    for i, pw in enumerate(PASSWORDS):
        url = f"postgresql://ana:{pw}@127.0.0.1:1/prod"
        if mode == "env":
            monkeypatch.setenv(f"AIPM_TEST_PG_{i}", url)
            source = f"env:AIPM_TEST_PG_{i}"
        else:
            source = url
        reports.append({"name": f"pw{i}", "notebook": str(nb),
                        "parameters": {"source": source, "title": f"about {url}"}})  # fmt: skip
    cfg = _config(tmp_path, reports)
    out = tmp_path / "out"
    code = main(["run", str(cfg), "--out", str(out), "--run-id", "s", "--no-progress",
                 "--jobs", "2"])  # fmt: skip
    assert main(["validate", str(cfg)]) == 2  # every source fails to connect
    captured = capsys.readouterr()
    assert code == 1
    manifest = json.loads((out / "s" / "run.json").read_text())
    assert all("could not connect" in r["error"] for r in manifest["reports"]), manifest
    nb_text = (out / "s" / "pw0.ipynb").read_text()
    assert "title: about postgresql://ana:***@127.0.0.1:1/prod" in nb_text  # title stays a title
    everything = _everything(out) + captured.out + captured.err
    for pw in PASSWORDS:
        for fragment in _fragments(pw):
            assert fragment not in everything, (pw, fragment)


def test_password_in_query_string_and_markdown_links_never_fail_a_report(tmp_path, capsys):
    """Secrets at the end of a line (Markdown link, printed text) are redacted in place; the
    notebook stays valid JSON and the report succeeds."""
    nb = _notebook(
        tmp_path / "links.ipynb", 'title = "t"\nsummary_path = None',
        'print("dashboard: https://bi.example.com/d?key=Kq7Secret99")\nprint("x&password=Zp4Secret88")',
        WRITE_SUMMARY,
        markdown="See the [dashboard](https://bi.example.com/d?token=Tk5Secret77)\n"
                 "or https://bi.example.com/d?key=Kq7Secret99",
    )  # fmt: skip
    cfg = _config(tmp_path, [{"name": "links", "notebook": str(nb)}])
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--run-id", "l", "--no-progress"]) == 0
    everything = _everything(out) + "".join(capsys.readouterr())
    for secret in ("Kq7Secret99", "Zp4Secret88", "Tk5Secret77"):
        assert secret not in everything
    json.loads((out / "l" / "links.ipynb").read_text())
    assert "d?key=***" in (out / "l" / "links.html").read_text()


# ---------------------------------------------------------------------------------------
# 3. no run and no report is lost


def _echo_config(folder: Path, name: str) -> Path:
    return _config(folder, [{"name": name, "notebook": str(FIXTURES / "echo_source.ipynb")}],
                   name=f"{name}.yml")  # fmt: skip


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "aipm_nb.cli", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_concurrent_runs_all_reach_the_index(tmp_path):
    out = tmp_path / "out"
    names = ["alpha", "beta", "gamma"]
    procs = [_cli("run", str(_echo_config(tmp_path, n)), "--out", str(out), "--no-progress")
             for n in names]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    run_ids = {json.loads(m.read_text())["run_id"] for m in out.glob("*/run.json")}
    assert len(run_ids) == 3
    latest = json.loads((out / "latest.json").read_text())
    assert set(latest["latest_good"]) == set(names)
    index = (out / "index.html").read_text()
    assert all(f"<b>{n}</b>" in index for n in names) and all(r in index for r in run_ids)


def test_same_run_id_at_once_is_refused_for_one(tmp_path):
    out = tmp_path / "out"
    procs = [_cli("run", str(_echo_config(tmp_path, n)), "--out", str(out), "--run-id", "same",
                  "--no-progress") for n in ("one", "two")]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    err = next(e for p, (_, e) in zip(procs, results, strict=True) if p.returncode == 2)
    assert "run 'same' already exists" in err and len(err.strip().splitlines()) == 1
    manifest = json.loads((out / "same" / "run.json").read_text())
    assert len(manifest["reports"]) == 1


@pytest.mark.parametrize("name", ["run", "RUN", "index", "latest", "ok\n"])
def test_report_names_that_would_overwrite_outputs_are_refused(tmp_path, capsys, name):
    cfg = _config(tmp_path, [{"name": name, "notebook": str(FIXTURES / "echo_source.ipynb")}])
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "reserved" in err or "not a slug" in err


# ---------------------------------------------------------------------------------------
# 4. parameters are JSON-safe or refused up front


def test_yaml_dates_become_iso_strings(tmp_path):
    nb = _notebook(tmp_path / "d.ipynb", 'as_of = None\ntitle = "t"\nsummary_path = None',
                   'print("as_of is", type(as_of).__name__, as_of)', WRITE_SUMMARY)  # fmt: skip
    cfg = tmp_path / "reports.yml"
    cfg.write_text(f"reports:\n  - name: d\n    notebook: {nb}\n    parameters:\n"
                   "      as_of: 2024-03-01\n")  # fmt: skip
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--run-id", "d", "--no-progress"]) == 0
    assert "as_of is str 2024-03-01" in (out / "d" / "d.ipynb").read_text()


def test_list_title_is_refused_by_validate(tmp_path, capsys):
    cfg = _config(tmp_path, [{"name": "t", "notebook": str(FIXTURES / "echo_source.ipynb"),
                              "title": ["a", "b"]}])  # fmt: skip
    assert main(["validate", str(cfg)]) == 2
    assert "'title' must be a string" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# 5. timeouts, signals and cleanup

SPAWN = """
import subprocess, time
child = subprocess.Popen(["sleep", "300"])
open(pid_file, "w").write(str(child.pid))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead
        return fh.read().split()[2] != "Z"


def test_timeout_is_the_whole_report_and_kills_cell_subprocesses(tmp_path):
    pid_file = tmp_path / "child.pid"
    nb = _notebook(tmp_path / "slow.ipynb", f'pid_file = "{pid_file}"\nsummary_path = None',
                   SPAWN, *["time.sleep(2)"] * 4)  # fmt: skip
    cfg = _config(tmp_path, [{"name": "slow", "notebook": str(nb)}])
    out = tmp_path / "out"
    t0 = time.monotonic()
    code = main(["run", str(cfg), "--out", str(out), "--run-id", "t", "--timeout", "6",
                 "--no-progress"])  # fmt: skip
    assert code == 1
    assert time.monotonic() - t0 < 30
    r = json.loads((out / "t" / "run.json").read_text())["reports"][0]
    assert "timed out after 6 s" in r["error"] and r["duration_s"] < 15
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "a cell's subprocess outlived the report's timeout"


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_timeout_must_be_positive(tmp_path, capsys, value):
    cfg = _echo_config(tmp_path, "a")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(cfg), "--timeout", value])
    assert exc.value.code == 2
    assert "--timeout" in capsys.readouterr().err


def test_sigterm_says_what_it_stopped_and_sigkill_staging_is_cleaned(tmp_path):
    pid_file = tmp_path / "child.pid"
    nb = _notebook(tmp_path / "spawn.ipynb", f'pid_file = "{pid_file}"\nsummary_path = None',
                   SPAWN, "time.sleep(300)")  # fmt: skip
    cfg = _config(tmp_path, [{"name": "spawner", "notebook": str(nb)}])
    out = tmp_path / "out"
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pid_file.unlink(missing_ok=True)
        proc = _cli("run", str(cfg), "--out", str(out), "--no-progress")
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert proc.returncode == 143
            assert "stopped by SIGTERM" in err and "spawner" in err
            assert not _alive(int(pid_file.read_text()))
            assert not list(out.glob(".staging-*"))
        else:
            assert list(out.glob(".staging-*"))  # what SIGKILL leaves ...
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    ok = _echo_config(tmp_path, "next")
    assert main(["run", str(ok), "--out", str(out), "--no-progress"]) == 0
    assert not list(out.glob(".staging-*"))  # ... the next run removes


# ---------------------------------------------------------------------------------------
# 6. the environment fails: one clear line, old index intact


def test_empty_or_file_out_is_one_clear_line(tmp_path, capsys):
    cfg = _echo_config(tmp_path, "a")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, message in (("", "--out is empty"), (str(afile), "is a file, not a folder"),
                         (str(afile / "sub"), "not a writable folder")):  # fmt: skip
        assert main(["run", str(cfg), "--out", out, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_malformed_old_manifest_is_skipped_with_a_warning(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    (out / "old" / "run.json").write_text("[]")
    (out / "older").mkdir()
    (out / "older" / "run.json").write_text("{not json")
    assert main(["run", str(_echo_config(tmp_path, "a")), "--out", str(out), "--run-id", "new",
                 "--no-progress"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "skipped" in captured.out and "old/run.json" in captured.out
    assert ">new<" in (out / "index.html").read_text()


def test_disk_full_at_index_time_keeps_the_old_index(tmp_path, capsys, monkeypatch):
    import errno

    from aipm_nb.reports import html as report_html

    out = tmp_path / "out"
    cfg = _echo_config(tmp_path, "a")
    assert main(["run", str(cfg), "--out", str(out), "--run-id", "one", "--no-progress"]) == 0
    before = (out / "index.html").read_bytes()

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_html, "atomic_write", full)  # fault injection: the disk is full
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(out), "--run-id", "two", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "index could not be updated (No space left on device)" in err
    assert "is unchanged" in err and "Traceback" not in err
    assert (out / "index.html").read_bytes() == before
