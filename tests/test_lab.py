"""JupyterLab opens ready to work (issue 20): a real server, headless on a free loopback port,
serves the templates, runs them in the project's kernel ("Python 3 (aipm-nb)"), and stops."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
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
    # the templates as `aipm-nb init` copies them: with this environment's kernel name and
    # Python version (the committed ones carry those of the last `make notebooks`; JupyterLab
    # rewrites both when the kernel starts, so another Python marks them modified)
    from jupyter_client.kernelspec import KernelSpecManager

    from aipm_nb.project import for_this_environment

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    kernel = KernelSpecManager().get_kernel_spec("python3").display_name
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        (notebooks / nb.name).write_text(for_this_environment(nb, kernel), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
           "--ip=127.0.0.1", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
           "--LabApp.expose_app_in_browser=True",  # the model's metadata, when a check fails
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
        ws = f"ws://127.0.0.1:{port}/api/kernels/{kid}/channels"
        out = asyncio.run(_execute(ws, token, code)).split()
        assert Path(out[-2]).resolve() == Path(sys.prefix).resolve()  # the project's kernel
        assert out[-1] == "differs"
        unchanged = _api(base, token, "/api/contents/funnel_analysis.ipynb?content=1")
        assert unchanged["last_modified"] == nb["last_modified"]  # opened and run: not written
        _check_in_browser(base, token, tmp_path, notebooks)
        _api(base, token, "/api/shutdown", "POST")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


#: What the page shows of the template: its tab's modified flag and the kernel's status
_PAGE_STATE = """(() => {
  const tabs = [...document.querySelectorAll('.lm-TabBar-tab')]
    .filter(t => t.textContent.includes(NAME));
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return JSON.stringify({tabs: tabs.length,
    dirty: tabs.some(t => t.className.includes('jp-mod-dirty')),
    status: ind ? ind.dataset.status : null,
    kernel: document.body.innerText.includes('Python 3 (aipm-nb)')});
})()"""


async def _page_state(base: str, token: str, name: str, debug_port: int) -> dict:
    """Open ``name`` in JupyterLab in the running headless Chromium and wait, in real time,
    until its kernel is idle; then watch it 6 s more. Returns the last state, with the
    notebook model's metadata when the tab is marked modified."""
    from tornado.websocket import websocket_connect

    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list") as r:
                page = next(t for t in json.loads(r.read()) if t["type"] == "page")
            break
        except (OSError, StopIteration):
            await asyncio.sleep(0.3)
    ws = await websocket_connect(page["webSocketDebuggerUrl"], max_message_size=2**26)
    ids = iter(range(1, 10**6))

    async def call(method: str, **params) -> dict:
        i = next(ids)
        await ws.write_message(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(await ws.read_message())
            if msg.get("id") == i:
                return msg.get("result", {})

    async def evaluate(expr: str):
        out = await call("Runtime.evaluate", expression=expr, returnByValue=True)
        return out.get("result", {}).get("value")

    await call("Page.navigate", url=f"{base}/lab/tree/{name}?token={token}&reset")
    state: dict = {}
    deadline, idle_since = time.monotonic() + 150, None
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        state = json.loads(await evaluate(_PAGE_STATE.replace("NAME", json.dumps(name))) or "{}")
        if state.get("status") == "idle":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 6:
                break
    if state.get("dirty"):
        state["metadata"] = await evaluate(
            "JSON.stringify(window.jupyterapp.shell.currentWidget.context.model.toJSON().metadata)"
        )
    ws.close()
    return state


def _check_in_browser(base: str, token: str, tmp_path: Path, notebooks: Path) -> None:
    """What a person sees (issue 20), in real time (a virtual-time page dump fast-forwards past
    the kernel's start, and so never sees what the kernel's arrival changes): the template
    opens with "Python 3 (aipm-nb)", its kernel gets idle, and its tab is not marked modified,
    nor is the file written. The control: the same template claiming another Python version
    *is* marked modified once the kernel reports its own (JupyterLab rewrites
    ``language_info``), so the check can fail.
    """
    from test_report_safety import _chromium

    nb = json.loads((notebooks / "cohort_analysis.ipynb").read_text())
    nb["metadata"]["language_info"]["version"] = "2.7.0"
    (notebooks / "other_python.ipynb").write_text(json.dumps(nb, indent=1))
    before = _api(base, token, "/api/contents/cohort_analysis.ipynb")["last_modified"]
    debug_port = _free_port()
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / '.chromium'}", "--window-size=1280,900",
           f"--remote-debugging-port={debug_port}", "about:blank"]  # fmt: skip
    browser = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mine = asyncio.run(_page_state(base, token, "cohort_analysis.ipynb", debug_port))
        other = asyncio.run(_page_state(base, token, "other_python.ipynb", debug_port))
    finally:
        browser.kill()
        browser.wait()
    assert mine.get("tabs"), f"no tab for the template in the page: {mine}"
    assert mine["status"] == "idle", f"the kernel did not get idle in the page: {mine}"
    assert not mine["dirty"], f"opened unchanged, marked modified: {mine}"
    assert mine["kernel"], "the notebook does not show the project's kernel"
    assert other["status"] == "idle" and other["dirty"], f"the control was not marked: {other}"
    after = _api(base, token, "/api/contents/cohort_analysis.ipynb")["last_modified"]
    assert after == before  # opening it wrote nothing
