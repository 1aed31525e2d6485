"""LLM-feature evaluation (DESIGN section 4): per version thumbs-up, refusal and error rates with
Wilson CIs, latency p50 / p95 with order-statistic CIs, cost per task; pairwise win rates and
Bradley–Terry ratings with bootstrap CIs; a head-to-head A/B comparison of two versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import special

from aipm_nb import config
from aipm_nb.errors import DataError, EmptyTableError, ParameterError
from aipm_nb.llm_eval.engine import (
    flag,
    latency_order_statistics,
    outcome_counts,
    version_aggregates,
)
from aipm_nb.results import NULL_SEGMENT, Result, Verdict, jsonable, warning
from aipm_nb.sources import is_infinite, open_source
from aipm_nb.stats.ab import quantile_min_n
from aipm_nb.stats.proportions import wilson_interval
from aipm_nb.stats.ranking import bt_bootstrap, win_rates
from aipm_nb.validation import check_scalar

__all__ = ["LlmEvalResult", "evaluate_llm", "paired_preferences"]


def paired_preferences(source: Any, preferences_source: Any) -> Any:
    """``preferences_source``, except that the sample preferences (the template's default) are
    used only with the sample responses.

    Examples:
        >>> paired_preferences("my_log.csv", "sample:llm_preferences") is None
        True
    """
    from aipm_nb.notebook import paired_sample

    return paired_sample(source, preferences_source, sample="sample:llm_responses",
                         second_sample="sample:llm_preferences")  # fmt: skip


@dataclass(frozen=True)
class LlmEvalResult(Result):
    """What `evaluate_llm` found.

    Attributes:
        versions: One row per version: ``version``, ``responses``, ``rated``, ``coverage``,
            ``thumbs_up_rate`` (+ ``_ci_lower``/``_ci_upper``, Wilson), ``refusal_rate``,
            ``error_rate`` (each with its Wilson CI), ``latency_p50``/``latency_p95`` with
            order-statistic CIs, ``cost_per_task`` with its CI.
        by_prompt: The same per (version, prompt version); empty without ``prompt_col``.
        segments: The same per (version, segment value); empty without ``segment_col``.
        pairwise: Win rates per ordered pair (ties are non-wins).
        ratings: Bradley–Terry ratings with bootstrap CIs and ranks, best first.
        head_to_head: The A/B comparison of ``candidate`` against ``baseline`` (an
            `aipm_nb.experiment.ExperimentResult`), or None.
    """

    versions: pd.DataFrame
    by_prompt: pd.DataFrame
    segments: pd.DataFrame
    pairwise: pd.DataFrame
    ratings: pd.DataFrame
    head_to_head: Any
    baseline: str | None
    candidate: str | None
    verdict: Verdict
    rows: int
    judgements: int
    alpha: float = config.ALPHA
    warnings: tuple[dict[str, str], ...] = field(default=())

    def to_pandas(self) -> pd.DataFrame:
        """The per-version table."""
        return self.versions.copy()

    def to_dict(self) -> dict[str, Any]:
        """DESIGN section 5's ``llm_eval`` result: ``versions``, ``pairwise``, ``ratings:
        [{"model", "rating", "ci_lower", "ci_upper", "rank"}]``, the head-to-head A/B result
        and the verdict.
        """
        return jsonable(
            {
                "versions": self.versions,
                "by_prompt": self.by_prompt,
                "segments": self.segments,
                "pairwise": self.pairwise,
                "ratings": self.ratings,
                "baseline": self.baseline,
                "candidate": self.candidate,
                "head_to_head": self.head_to_head.to_dict() if self.head_to_head else None,
                "verdict": self.verdict,
            }
        )

    @property
    def leader(self) -> pd.Series | None:
        """The top-rated version (pairwise ratings), or None without preferences."""
        return self.ratings.iloc[0] if len(self.ratings) else None


def _version_table(agg: pd.DataFrame, alpha: float) -> pd.DataFrame:
    out = agg.copy()
    for col in ("rated", "up", "refused", "error", "cost_n", "latency_n"):
        if col not in out:
            out[col] = np.nan
    out["coverage"] = out.rated / out.responses
    for name, k, n in (("thumbs_up_rate", "up", "rated"), ("refusal_rate", "refused", "responses"),
                       ("error_rate", "error", "responses")):  # fmt: skip
        kk, nn = out[k].astype(float), out[n].astype(float)
        out[name] = kk / nn.where(nn > 0)
        lo, hi = wilson_interval(kk, nn, alpha=alpha)
        out[f"{name}_ci_lower"], out[f"{name}_ci_upper"] = lo, hi
    if "cost_sum" in out:
        n = out.cost_n.astype(float)
        mean = out.cost_sum / n.where(n > 0)
        var = (out.cost_sq - out.cost_sum**2 / n) / (n - 1).where(n > 1)
        se = np.sqrt(var.clip(lower=0) / n)
        tcrit = special.stdtrit((n - 1).clip(lower=1), 1 - alpha / 2)
        out["cost_per_task"] = mean
        out["cost_per_task_ci_lower"] = mean - tcrit * se
        out["cost_per_task_ci_upper"] = mean + tcrit * se
    keep = ["responses", "rated", "coverage", "thumbs_up_rate", "thumbs_up_rate_ci_lower",
            "thumbs_up_rate_ci_upper", "refusal_rate", "refusal_rate_ci_lower",
            "refusal_rate_ci_upper", "error_rate", "error_rate_ci_lower", "error_rate_ci_upper",
            "latency_p50", "latency_p95", "cost_per_task", "cost_per_task_ci_lower",
            "cost_per_task_ci_upper"]  # fmt: skip
    lead = [c for c in out.columns if c.startswith("__")]
    return out[[*lead, *[c for c in keep if c in out]]]


def evaluate_llm(
    source: Any,
    *,
    preferences_source: Any = None,
    model_col: str = "model",
    prompt_col: str | None = "prompt_version",
    response_col: str | None = "response_id",
    rating_col: str | None = "rating",
    latency_col: str | None = "latency_ms",
    cost_col: str | None = "cost_usd",
    refused_col: str | None = "refused",
    error_col: str | None = "error",
    segment_col: str | None = None,
    model_a_col: str = "model_a",
    model_b_col: str = "model_b",
    winner_col: str = "winner",
    judge_col: str | None = "judge",
    judge: str | None = None,
    baseline: str | None = None,
    candidate: str | None = None,
    expected_shares: dict[str, float] | None = None,
    alpha: float | None = None,
    bootstrap_rounds: int = 100,
    seed: int = 0,
    table: str | None = None,
    preferences_table: str | None = None,
) -> LlmEvalResult:
    """Evaluate the versions of an AI feature from its response log (and pairwise preferences).

    Args:
        source: Responses, one row per AI response (anything `aipm_nb.sources` opens).
        preferences_source: Pairwise judgements (``model_a``, ``model_b``, ``winner`` ∈
            ``a``/``b``/``tie``), or None.
        model_col: The version (model or release) of each response.
        prompt_col: Prompt version (a breakdown), or None.
        response_col: Unique response id (the unit of the head-to-head test), or None.
        rating_col: 1 = thumbs up, 0 = down, null = unrated; None: not collected.
        latency_col: Latency (ms); None: not measured.
        cost_col: Cost of the response (the task); None: not measured.
        refused_col: Boolean (or 0/1) refusal flag; None: not recorded.
        error_col: Boolean (or 0/1) error flag; None: not recorded.
        segment_col: Break every version down by this column, or None.
        model_a_col: Preferences: the first model shown.
        model_b_col: Preferences: the second model shown.
        winner_col: Preferences: ``a``, ``b`` or ``tie``.
        judge_col: Preferences: who judged (``human``, ``llm``), read only with ``judge``.
        judge: Keep only the judgements of this judge (e.g. ``"human"``).
        baseline: The version a candidate is compared with (default: the one with the most
            responses).
        candidate: The version compared with the baseline (default: the top-rated other
            version, else the one with the highest thumbs-up rate).
        expected_shares: The planned traffic split of baseline and candidate (e.g.
            ``{"v1": 0.5, "v2": 0.5}``), for the sample-ratio check; None: versions often get
            unequal traffic by design, so the observed split is taken and no SRM is tested.
        alpha: Significance level (default `config.ALPHA`).
        bootstrap_rounds: Multinomial bootstrap rounds of the ratings (100, as FastChat).
        seed: Seed of the bootstrap.
        table: Table name in a database responses source.
        preferences_table: Table name in a database preferences source.
    """
    alpha = check_scalar(config.ALPHA if alpha is None else alpha, "alpha", typ=float, gt=0, lt=1)
    check_scalar(bootstrap_rounds, "bootstrap_rounds", typ=int, ge=10)
    cols = {"rating": rating_col, "latency": latency_col, "cost": cost_col,
            "refused": refused_col, "error": error_col}  # fmt: skip
    kinds = {"rating": "numeric", "latency": "numeric", "cost": "numeric",
             "refused": "any", "error": "any"}  # fmt: skip
    required = {model_col: "any"} | {c: kinds[k] for k, c in cols.items() if c}
    params = {model_col: "model_col"} | {c: f"{k}_col" for k, c in cols.items() if c}
    for c, p in ((prompt_col, "prompt_col"), (segment_col, "segment_col"),
                 (response_col, "response_col")):  # fmt: skip
        if c:
            required[c], params[c] = "any", p
    src = open_source(source, table=table, required=required, name="responses",
                      allow_empty=True, parameters=params)  # fmt: skip
    t = src.table.mutate(__v=src.table[model_col].cast("string"))
    warnings: list[dict[str, str]] = []
    _check_values(t, src.label, rating_col, latency_col, cost_col)
    agg = version_aggregates(t.filter(t["__v"].notnull()), ["__v"], cols)
    if agg.empty:
        raise EmptyTableError(f"{src.label} has no rows; expected at least one", table=src.label)
    n_null = int(t.filter(t["__v"].isnull()).count().to_pandas())
    if n_null:
        warnings.append(
            warning("null_variant", f"{n_null:,} responses have no {model_col!r} and were left out")
        )
    t = t.filter(t["__v"].notnull())
    versions = _version_table(agg, alpha).rename(columns={"__v": "version"})
    if latency_col:
        counts = dict(zip(agg["__v"], agg["latency_n"].astype(int), strict=True))
        ci = latency_order_statistics(t, "__v", latency_col, counts, 1 - alpha)
        for q in (0.5, 0.95):
            part = ci[ci.level == q].set_index("version")
            name = f"latency_p{round(q * 100)}"
            versions[f"{name}_ci_lower"] = versions.version.map(part.ci_lower)
            versions[f"{name}_ci_upper"] = versions.version.map(part.ci_upper)
    by_prompt = pd.DataFrame()
    if prompt_col:
        tp = t.mutate(__p=t[prompt_col].cast("string").fill_null(NULL_SEGMENT))
        by_prompt = _version_table(version_aggregates(tp, ["__v", "__p"], cols), alpha)
        by_prompt = by_prompt.rename(columns={"__v": "version", "__p": "prompt_version"})
    segments = pd.DataFrame()
    if segment_col:
        ts = t.mutate(__s=t[segment_col].cast("string").fill_null(NULL_SEGMENT))
        segments = _version_table(version_aggregates(ts, ["__v", "__s"], cols), alpha)
        segments = segments.rename(columns={"__v": "version", "__s": "segment"})
    pairwise = pd.DataFrame(columns=["model", "opponent", "battles", "wins", "ties", "win_rate"])
    ratings = pd.DataFrame(columns=["model", "rating", "ci_lower", "ci_upper", "rank"])
    judgements = 0
    if preferences_source is not None:
        oc, judgements, more = _preferences(
            preferences_source, preferences_table, model_a_col, model_b_col, winner_col,
            judge_col, judge,
        )  # fmt: skip
        warnings += more
        if len(oc):
            pairwise = win_rates(oc)
            ratings = bt_bootstrap(oc, rounds=bootstrap_rounds, seed=seed, level=1 - alpha)
    base, cand = _pick(versions, ratings, baseline, candidate, src.label, model_col)
    h2h = None
    if base and cand:
        shares = expected_shares or {
            v: float(versions.set_index("version").responses[v]) for v in (base, cand)
        }
        lat_n = dict(zip(agg["__v"], agg.get("latency_n", agg.responses), strict=True))
        h2h, more = _head_to_head(
            src.table, model_col, response_col, cols, base, cand, alpha, shares,
            min(lat_n[base], lat_n[cand]),
        )  # fmt: skip
        warnings += more
    res = LlmEvalResult(
        versions=versions,
        by_prompt=by_prompt,
        segments=segments,
        pairwise=pairwise,
        ratings=ratings,
        head_to_head=h2h,
        baseline=base,
        candidate=cand,
        verdict=Verdict("insufficient_data"),
        rows=int(versions.responses.sum()),
        judgements=judgements,
        alpha=alpha,
        warnings=tuple(warnings),
    )
    from dataclasses import replace

    from aipm_nb.llm_eval.present import verdict_of

    return replace(res, verdict=verdict_of(res))


def _check_values(
    t: Any, label: str, rating_col: str | None, latency_col: str | None, cost_col: str | None
) -> None:
    checks = []
    if rating_col:
        r = t[rating_col].cast("float64")
        checks.append((rating_col, r.notnull() & (r != 0) & (r != 1), "0 (down), 1 (up) or null"))
    for c in (latency_col, cost_col):
        if c:
            x = t[c].cast("float64")
            checks.append((c, x.notnull() & ((x < 0) | x.isnan() | is_infinite(x)), "≥ 0 or null"))
    for col, bad, expected in checks:
        n = int(t.filter(bad).count().to_pandas())
        if n:
            ex = t.filter(bad).select(x=t[col]).limit(3).to_pandas().x.tolist()
            raise DataError(
                f"{label}: column {col!r} has {n:,} values that are not {expected} (e.g. "
                f"{', '.join(map(str, ex))})",
                table=label,
                column=col,
                count=n,
                examples=ex,
            )


def _preferences(
    source: Any, table: str | None, a: str, b: str, winner: str, judge_col: str | None,
    judge: str | None,
) -> tuple[pd.DataFrame, int, list[dict[str, str]]]:  # fmt: skip
    required = {a: "any", b: "any", winner: "any"}
    params = {a: "model_a_col", b: "model_b_col", winner: "winner_col"}
    if judge is not None and not judge_col:
        raise ParameterError("judge= needs judge_col= (the column naming who judged)")
    if judge is not None:
        required[str(judge_col)], params[str(judge_col)] = "any", "judge_col"
    src = open_source(source, table=table, required=required, name="preferences",
                      allow_empty=True, parameters=params)  # fmt: skip
    t = src.table
    if judge is not None:
        t = t.filter(t[str(judge_col)].cast("string") == judge)
    same = t[a].cast("string") == t[b].cast("string")
    n_same = int(t.filter(same).count().to_pandas())
    more = []
    if n_same:
        more.append(
            warning(
                "missing_values",
                f"{n_same:,} judgements compare a model with itself and were left out",
            )
        )
    t = t.filter(~same & t[a].notnull() & t[b].notnull())
    oc = outcome_counts(t, a, b, winner, src.label)
    return oc, int(oc[["wins_a", "wins_b", "ties"]].to_numpy().sum()), more


def _pick(
    versions: pd.DataFrame, ratings: pd.DataFrame, baseline: str | None,
    candidate: str | None, label: str, model_col: str,
) -> tuple[str | None, str | None]:  # fmt: skip
    names = versions.version.astype(str).tolist()
    for given, what in ((baseline, "baseline"), (candidate, "candidate")):
        if given is not None and given not in names:
            raise ParameterError(
                f"{what} {given!r} is not a version in column {model_col!r} of {label}; "
                f"versions present: {names}"
            )
    if len(names) < 2:
        return None, None
    base = baseline or str(
        versions.sort_values(["responses", "version"], ascending=[False, True]).version.iloc[0]
    )
    if candidate:
        cand = candidate
    else:
        rated = [m for m in ratings.model.tolist() if m != base and m in names]
        if rated:
            cand = rated[0]
        else:
            others = versions[versions.version != base]
            key = "thumbs_up_rate" if others.thumbs_up_rate.notna().any() else "responses"
            cand = str(others.sort_values(key, ascending=False).version.iloc[0])
    if cand == base:
        raise ParameterError(f"candidate and baseline are both {base!r}; pick two versions")
    return base, cand


def _head_to_head(
    raw: Any, model_col: str, response_col: str | None, cols: dict[str, str | None],
    base: str, cand: str, alpha: float, shares: dict[str, float], latency_n: float,
) -> tuple[Any, list[dict[str, str]]]:  # fmt: skip
    """The A/B engine on the responses of the two versions; the unit is the response."""
    from aipm_nb.experiment import analyze_experiment

    t = raw.mutate(__v=raw[model_col].cast("string"))
    t = t.filter(t["__v"].isin([base, cand]))
    unit = response_col or "__row"
    if not response_col:
        t = t.mutate(__row=ibis.row_number())
    metrics: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    if cols.get("rating"):
        metrics.append({"name": "thumbs-up rate", "type": "proportion", "column": cols["rating"]})
    if cols.get("refused"):
        extra["__refused"] = flag(t, str(cols["refused"])).ifelse(1, 0)
        metrics.append({"name": "refusal rate", "type": "proportion", "column": "__refused",
                        "guardrail": True, "direction": "decrease"})  # fmt: skip
    more = []
    if cols.get("latency"):
        lat = {"guardrail": True, "direction": "decrease", "unit": "ms", "column": cols["latency"]}
        if latency_n > quantile_min_n(0.95):
            metrics.append({"name": "latency p95", "type": "quantile", "quantile": 0.95, **lat})
        else:  # too few responses for a p95 interval: the mean, and say so
            metrics.append({"name": "mean latency", "type": "mean", **lat})
            more.append(warning("small_sample", (
                f"only {int(latency_n)} latencies in the smaller version: the head-to-head "
                f"compares mean latency (a p95 interval needs more than "
                f"{int(quantile_min_n(0.95))})")))  # fmt: skip
    if cols.get("cost"):
        metrics.append({"name": "cost per task", "type": "mean", "column": cols["cost"],
                        "guardrail": True, "direction": "decrease", "unit": "$"})  # fmt: skip
    if not metrics:
        return None, more
    t = t.mutate(**extra) if extra else t
    try:
        res = analyze_experiment(t, metrics, unit_col=unit, variant_col="__v", control=base,
                                 alpha=alpha, check_units=bool(response_col),
                                 expected_shares=shares)  # fmt: skip
        return res, more
    except DataError as exc:  # e.g. too few latencies for a p95: say so, keep the rest
        raise DataError(f"head-to-head {cand!r} vs {base!r}: {exc}") from exc
