"""Scheduled report runs (``aipm-nb run`` / ``validate``), one module per concern.

* `aipm_nb.reports.config`: read ``reports.yml``; names, reserved names, parameters.
* `aipm_nb.reports.checks`: what ``validate`` runs against the real sources.
* `aipm_nb.reports.outdir`: the output folder, atomic run ids, staging clean-up, index lock.
* `aipm_nb.reports.execute`: papermill runs, wall-clock timeouts, signals, publishing.
* `aipm_nb.reports.html`: the report pages and the index.
* `aipm_nb.reports.redaction`: the one owner of secrets: find and scrub them everywhere.
"""
