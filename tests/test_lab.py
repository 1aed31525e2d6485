"""JupyterLab opens ready to work (issue 20): a real server, headless on a free loopback port,
serves the templates, runs them in the project's kernel ("Python 3 (aipm-nb)"), and stops."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    return json.loads(text) if text else None


async def _execute(ws_url: str, token: str, code: str) -> str:
    """Run ``code`` in a kernel over the Jupyter messaging protocol; its stdout."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))
    msg_id = uuid.uuid4().hex
    await conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False},
    }))  # fmt: skip
    out: list[str] = []
    while True:
        raw = await conn.read_message()
        assert raw is not None, "the kernel's websocket closed"
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            conn.close()
            return "".join(out)


def test_lab_serves_the_templates_and_runs_them_in_the_project_kernel(tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
           "--ip=127.0.0.1", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
           str(notebooks)]  # fmt: skip
    if os.geteuid() == 0:  # what `make lab` adds as root
        cmd.append("--allow-root")
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
                time.sleep(0.5)
        listing = {f["name"] for f in _api(base, token, "/api/contents/")["content"]}
        assert {"funnel_analysis.ipynb", "cohort_analysis.ipynb"} <= listing
        nb = _api(base, token, "/api/contents/funnel_analysis.ipynb?content=1")
        assert nb["content"]["metadata"]["kernelspec"]["name"] == "python3"
        specs = _api(base, token, "/api/kernelspecs")["kernelspecs"]
        assert specs["python3"]["spec"]["display_name"] == "Python 3 (aipm-nb)"
        session = _api(base, token, "/api/sessions", "POST", {
            "path": "funnel_analysis.ipynb", "type": "notebook", "name": "funnel_analysis.ipynb",
            "kernel": {"name": "python3"}})  # fmt: skip
        kid = session["kernel"]["id"]
        cells = [c for c in nb["content"]["cells"] if c["cell_type"] == "code"]
        code = "\n".join("".join(c["source"]) for c in cells[:2])  # parameters + the analysis
        code += "\nimport sys\nprint(sys.prefix)\nprint(result.verdict.status)"
        import asyncio

        ws = f"ws://127.0.0.1:{port}/api/kernels/{kid}/channels"
        out = asyncio.run(_execute(ws, token, code)).split()
        assert Path(out[-2]).resolve() == Path(sys.prefix).resolve()  # the project's kernel
        assert out[-1] == "differs"
        unchanged = _api(base, token, "/api/contents/funnel_analysis.ipynb?content=1")
        assert unchanged["last_modified"] == nb["last_modified"]  # opened and run: not written
        _check_in_browser(base, token, tmp_path)
        _api(base, token, "/api/shutdown", "POST")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _check_in_browser(base: str, token: str, tmp_path: Path) -> None:
    """What a person sees (issue 20): a template opened in JupyterLab in headless Chromium shows
    the project's kernel, "Python 3 (aipm-nb)", and its tab is not marked modified.
    """
    from test_report_safety import _chromium

    before = _api(base, token, "/api/contents/cohort_analysis.ipynb")["last_modified"]
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / '.chromium'}", "--window-size=1280,900",
           "--virtual-time-budget=60000", "--dump-dom",
           f"{base}/lab/tree/cohort_analysis.ipynb?token={token}&reset"]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=True).stdout
    (tmp_path / "lab.html").write_text(dom)  # kept for a look when the test fails
    tabs = re.findall(r'<li[^>]*class="([^"]*lm-TabBar-tab[^"]*)"[^>]*>(.*?)</li>', dom, re.S)
    mine = [cls for cls, inner in tabs if "cohort_analysis.ipynb" in inner]
    assert mine, f"no tab for the template in the page (see {tmp_path / 'lab.html'})"
    assert not any("jp-mod-dirty" in cls for cls in mine), "opened unchanged, marked modified"
    assert "Python 3 (aipm-nb)" in dom, "the notebook does not show the project's kernel"
    after = _api(base, token, "/api/contents/cohort_analysis.ipynb")["last_modified"]
    assert after == before  # opening it wrote nothing
