"""HTML of report runs: one self-contained page per report and the index of every run."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aipm_nb.files import atomic_write
from aipm_nb.markup import html_text
from aipm_nb.results import VERDICT_TONE

__all__ = ["headline", "render_report", "verdict_status", "write_index"]

CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa}
.aipm-bar{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;
 margin:0 auto;padding:24px 32px 8px 32px;color:#1f2328}
.aipm-bar h1{font-size:26px;margin:0 0 4px 0}
.aipm-meta{color:var(--muted);font-size:14px;margin-bottom:12px}
.pill{display:inline-block;padding:2px 10px;border-radius:12px;font-size:12px;font-weight:600;
 color:#fff;vertical-align:middle;text-transform:uppercase;letter-spacing:.03em}
.pill.ok{background:var(--ok)}.pill.failed{background:var(--bad)}
.aipm-error{border:1px solid var(--bad);background:#ffebe9;border-radius:6px;padding:12px 16px;
 margin:12px 0;font-size:14px}
.aipm-error pre{white-space:pre-wrap;margin:6px 0 0 0}
details.aipm-params{margin:8px 0 16px 0;font-size:13px}
details.aipm-params summary{cursor:pointer;color:var(--muted)}
table.aipm{border-collapse:collapse;font-size:13px;margin-top:6px}
table.aipm td,table.aipm th{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;
 vertical-align:top}
table.aipm code{white-space:pre-wrap;word-break:break-all}
"""

INDEX_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;
 background:#f6f8fa}
main{max-width:1150px;margin:0 auto;padding:28px 32px}
h1{font-size:26px;margin:0 0 4px 0}h2{font-size:18px;margin:28px 0 8px 0}
.sub{color:#57606a;font-size:14px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de;
 border-radius:6px;overflow:hidden;font-size:14px}
th{background:#f6f8fa;text-align:left;font-weight:600;color:#57606a;font-size:12px;
 text-transform:uppercase;letter-spacing:.04em}
td,th{padding:8px 12px;border-bottom:1px solid #d0d7de;vertical-align:top}
tr:last-child td{border-bottom:none}
.pill{display:inline-block;padding:2px 10px;border-radius:12px;font-size:12px;font-weight:600;
 color:#fff;text-transform:uppercase}
.ok{background:#1a7f37}.failed{background:#cf222e}
.verdict{display:inline-block;border-radius:4px;padding:1px 8px;margin:1px 6px 1px 0;
 font-size:12px;font-weight:600;text-transform:uppercase;color:#fff}
.verdict.good{background:#1a7f37}.verdict.neutral{background:#9a6700}.verdict.bad{background:#cf222e}
.hl{display:inline-block;background:#ddf4ff;color:#0550ae;border-radius:4px;padding:1px 8px;
 margin:1px 4px 1px 0;font-size:13px}
.err{color:#cf222e;font-size:13px}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
.links a{margin-right:10px}
.run{color:#57606a;font-family:ui-monospace,Menlo,monospace;font-size:12px}
"""


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def verdict_status(summary: Mapping[str, Any] | None) -> str | None:
    """The verdict status of a summary (``result.verdict.status``), None without one."""
    verdict = ((summary or {}).get("result") or {}).get("verdict")
    status = verdict.get("status") if isinstance(verdict, Mapping) else None
    return status if isinstance(status, str) else None


def _hl_ab(res: Mapping[str, Any]) -> list[str]:
    out = []
    dec = res.get("decision", {})
    metrics = res.get("metrics", [])
    name = res.get("primary_metric") or next(
        (m["metric"] for m in metrics if not m.get("guardrail")), None
    )  # summaries written before primary_metric was recorded
    primary = [m for m in metrics if m["metric"] == name]
    if primary:
        best = max(primary, key=lambda m: m.get("rel_effect") or 0)
        out.append(f"{best['variant']} {best['rel_effect']:+.1%} {best['metric']}")
    if not res.get("verdict"):  # newer summaries show it as the verdict chip
        out.append(f"→ {dec.get('recommendation', '?').replace('_', ' ')}")
    if res.get("srm", {}).get("mismatch"):
        out.append("sample ratio mismatch")
    return out


def _hl_cohort(res: Mapping[str, Any]) -> list[str]:
    out = []
    avg = res.get("average_retention") or []
    period = res.get("period", "period")
    k = 4 if len(avg) > 4 and avg[4] is not None else None
    if k is None:
        ks = [i for i, v in enumerate(avg) if v is not None and i > 0]
        k = ks[-1] if ks else None
    if k is not None:
        out.append(f"{period}-{k} retention {_pct(avg[k])}")
    out.append(f"{len(res.get('cohorts', []))} cohorts")
    return out


def _hl_model(res: Mapping[str, Any]) -> list[str]:
    out = []
    m = res.get("metrics") or {}
    if m.get("roc_auc") is not None:
        out.append(f"AUC {m['roc_auc']:.3f}")
    if m.get("ece") is not None:
        out.append(f"ECE {m['ece']:.3f}")
    worst = [d for d in res.get("drift", []) if d.get("status") != "stable"]
    out.append(
        "drift: " + ", ".join(f"{d['column']} {d['status']}" for d in worst[:2])
        if worst
        else "no drift"
    )
    return out


def _hl_kpi(res: Mapping[str, Any]) -> list[str]:
    kpis = res.get("kpis") or []
    alerts = [k["name"] for k in kpis if k.get("status") == "alert"]
    n = len(alerts)
    out = [f"{n} alert{'s' if n > 1 else ''}: " + ", ".join(alerts) if alerts else "no alerts"]
    watch = sum(k.get("status") == "watch" for k in kpis)
    if watch:
        out.append(f"{watch} to watch")
    out.append(f"{len(kpis)} KPIs")
    return out


def _hl_llm(res: Mapping[str, Any]) -> list[str]:
    out = []
    ratings = res.get("ratings") or []
    if ratings:
        r = ratings[0]
        out.append(
            f"{r['model']} leads: {r['rating']:.0f} [{r['ci_lower']:.0f}, {r['ci_upper']:.0f}]"
        )
    out.append(f"{len(res.get('versions') or [])} versions")
    return out


def _hl_funnel(res: Mapping[str, Any]) -> list[str]:
    steps = res.get("steps") or []
    if not steps:
        return []
    out = [f"{_pct(steps[-1].get('conversion_from_start'))} end to end"]
    later = [s for s in steps[1:] if s.get("conversion_from_previous") is not None]
    if later:
        worst = min(later, key=lambda s: s["conversion_from_previous"])
        out.append(f"biggest drop: {worst['step']} ({_pct(1 - worst['conversion_from_previous'])})")
    out.append(f"{len(steps)} steps")
    return out


_HEADLINES = {
    "ab_test": _hl_ab,
    "cohort": _hl_cohort,
    "model_performance": _hl_model,
    "kpi": _hl_kpi,
    "llm_eval": _hl_llm,
    "funnel": _hl_funnel,
}


def headline(summary: Mapping[str, Any]) -> list[str]:
    """Two or three headline numbers of a summary (DESIGN section 5) for the index."""
    fn = _HEADLINES.get(str(summary.get("kind")))
    try:
        return fn(summary.get("result") or {}) if fn else []
    except (KeyError, TypeError, ValueError):
        return []


def _param_rows(parameters: Mapping[str, Any]) -> str:
    rows = []
    for k, v in parameters.items():
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        rows.append(f"<tr><th>{html_text(str(k))}</th><td><code>{html_text(text)}</code></td></tr>")
    return "".join(rows)


#: Cells tagged so are for the notebook's reader only and are left out of HTML reports.
NOTEBOOK_ONLY = "notebook-only"


def render_report(
    nb: Mapping[str, Any], *, result: Any, parameters: Mapping[str, Any], show_code: bool = False
) -> str:
    """The executed notebook as one self-contained HTML page with a status header; cells tagged
    ``notebook-only`` are left out, and ``parameters`` are shown in full (give the effective
    ones: defaults included).
    """
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.reads(json.dumps(nb), as_version=4)
    # cells for the analyst editing the notebook (how it works, where the summary file went)
    node.cells = [c for c in node.cells if NOTEBOOK_ONLY not in c.metadata.get("tags", [])]
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=not show_code,
        exclude_input_prompt=not show_code,
        exclude_output_prompt=True,
        embed_images=True,
    )
    title = result.title or parameters.get("title") or result.name
    body, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": title}})
    # self-contained: drop scripts fetched from the network (require.js, MathJax CDN)
    body = re.sub(r'<script[^>]+src="https?://[^"]+"[^>]*>\s*</script>', "", body)
    body = re.sub(
        r'<script type="module">(?:(?!</script>).)*?https?://(?:(?!</script>).)*'
        r"</script>",
        "",
        body,
        flags=re.S,
    )
    status = result.status
    meta = (
        f"{html_text(result.name)} · {html_text(result.notebook)} · run "
        f"{html_text(result.started_at)} · {result.duration_s:.1f} s"
    )
    error = ""
    if result.error:
        where = f" in cell [{result.failed_cell}]" if result.failed_cell else ""
        error = (
            f'<div class="aipm-error"><b>This report failed{where}.</b> The output below stops '
            f"where it failed; earlier reports of this name are untouched."
            f"<pre>{html_text(result.error)}</pre></div>"
        )
    header = (
        f'<style>{CSS}</style><div class="aipm-bar"><h1>{html_text(str(title))} '
        f'<span class="pill {status}">{status}</span></h1><div class="aipm-meta">{meta}</div>'
        f'{error}<details class="aipm-params"><summary>Parameters</summary>'
        f'<table class="aipm">{_param_rows(parameters)}</table></details></div>'
    )
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + header, body, count=1)
    return body


def _valid_manifest(run: Any) -> bool:
    if not isinstance(run, dict) or not isinstance(run.get("run_id"), str):
        return False
    reports = run.get("reports")
    return isinstance(reports, list) and all(
        isinstance(r, dict) and isinstance(r.get("name"), str) and isinstance(r.get("status"), str)
        for r in reports
    )


def _load_runs(out_dir: Path, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every readable ``run.json`` under ``out_dir``; malformed ones are skipped with a warning."""
    runs = []
    for manifest in out_dir.glob("*/run.json"):
        try:
            run = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            run, why = None, f"unreadable ({exc})"
        else:
            why = "not a run manifest (expected run_id and a list of reports)"
        if not _valid_manifest(run):
            if warn:
                warn(f"aipm-nb: warning: skipped {manifest} in the index: {why}")
            continue
        runs.append(run)
    runs.sort(key=lambda r: (str(r.get("started_at", "")), r["run_id"]), reverse=True)
    return runs


def write_index(out_dir: Path, *, warn: Callable[[str], None] | None = None) -> None:
    """(Re)write ``index.html`` and ``latest.json`` from every run's ``run.json``."""
    runs = _load_runs(out_dir, warn)
    latest_good: dict[str, dict[str, Any]] = {}
    for run in runs:
        for r in run.get("reports", []):
            if r.get("status") == "ok" and r["name"] not in latest_good:
                latest_good[r["name"]] = {**r, "run_id": run["run_id"]}

    def links(run_id: str, r: Mapping[str, Any]) -> str:
        outs = r.get("outputs") or {}
        return "".join(
            f'<a href="{html_text(run_id)}/{html_text(outs[k])}">{label}</a>'
            for k, label in (("html", "report"), ("json", "json"), ("ipynb", "notebook"))
            if k in outs
        )

    def hl(r: Mapping[str, Any]) -> str:
        chips = "".join(f'<span class="hl">{html_text(h)}</span>' for h in r.get("headline", []))
        status = r.get("verdict")
        if status in VERDICT_TONE:  # coloured by what the report concludes, not by "it ran"
            tone = VERDICT_TONE[status]
            label = html_text(status.replace("_", " "))
            chips = f'<span class="verdict {tone}">{label}</span>' + chips
        return chips

    rows_latest = "".join(
        f"<tr><td><b>{html_text(n)}</b></td><td>{hl(r)}</td>"
        f'<td class="run">{html_text(r["run_id"])}</td>'
        f'<td class="links">{links(r["run_id"], r)}</td></tr>'
        for n, r in sorted(latest_good.items())
    )
    rows_runs = []
    for run in runs:
        for r in run.get("reports", []):
            err = f'<div class="err">{html_text(r["error"])}</div>' if r.get("error") else ""
            rows_runs.append(
                f'<tr><td class="run">{html_text(run["run_id"])}</td>'
                f"<td><b>{html_text(r['name'])}</b>{err}</td>"
                f'<td><span class="pill {html_text(r["status"])}">{html_text(r["status"])}'
                f"</span></td><td>{html_text(r.get('started_at', ''))}</td>"
                f"<td>{r.get('duration_s', 0):.1f} s</td><td>{hl(r)}</td>"
                f'<td class="links">{links(run["run_id"], r)}</td></tr>'
            )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aipm-nb reports</title><style>{INDEX_CSS}</style></head><body><main>
<h1>Reports</h1><div class="sub">{len(runs)} runs · updated {now}</div>
<h2>Latest good report of each name</h2>
<table><thead><tr><th>report</th><th>headline</th><th>run</th><th>open</th></tr></thead>
<tbody>{rows_latest or '<tr><td colspan="4">no successful report yet</td></tr>'}</tbody></table>
<h2>Every run, newest first</h2>
<table><thead><tr><th>run</th><th>report</th><th>status</th><th>started</th><th>duration</th>
<th>headline</th><th>open</th></tr></thead><tbody>{"".join(rows_runs)}</tbody></table>
</main></body></html>
"""
    atomic_write(out_dir / "index.html", page)
    latest = {
        "updated_at": now,
        "latest_run": runs[0] if runs else None,
        "latest_good": latest_good,
    }
    atomic_write(out_dir / "latest.json", json.dumps(latest, indent=2) + "\n")
