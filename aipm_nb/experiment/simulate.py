"""A/A simulations of the decision rule on sums made in numpy (no engine), for checking that
decisions hold their false-positive rate at every sample size (README, "Small samples").

Run ``python -m aipm_nb.experiment.simulate`` for the README table.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aipm_nb import config
from aipm_nb.errors import DataError
from aipm_nb.experiment.aggregate import ArmSums, MetricSums
from aipm_nb.experiment.compare import Plan, compare_metrics, evaluate_arms
from aipm_nb.experiment.spec import Metric
from aipm_nb.stats import Moments

__all__ = ["GENERATORS", "aa_decision_rate", "peeking_rate"]

Arrays = tuple[np.ndarray, np.ndarray | None]


def _proportion(rng: np.random.Generator, n: int) -> Arrays:
    return rng.binomial(1, 0.2, n).astype(float), None  # a 20% conversion


def _mean(rng: np.random.Generator, n: int) -> Arrays:
    return rng.lognormal(3, 1, n), None  # revenue: heavy right tail


def _cuped(rng: np.random.Generator, n: int) -> Arrays:
    pre = rng.lognormal(3, 1, n)
    return 0.8 * pre + rng.lognormal(2, 1, n), pre  # correlated pre-period covariate


def _ratio(rng: np.random.Generator, n: int) -> Arrays:
    views = rng.poisson(5, n) + 1.0
    return rng.binomial(views.astype(int), 0.3).astype(float), views  # clicks / views


#: metric type -> (metric spec, data of one arm)
GENERATORS: dict[str, tuple[Metric, Callable[[np.random.Generator, int], Arrays]]] = {
    "proportion": (Metric("conversion", "proportion", column="y"), _proportion),
    "mean": (Metric("revenue", "mean", column="y"), _mean),
    "cuped": (Metric("revenue", "mean", column="y", covariate="x"), _cuped),
    "ratio": (Metric("ctr", "ratio", numerator="y", denominator="x"), _ratio),
}


def _sums(y: np.ndarray, x: np.ndarray | None, ky: float, kx: float) -> MetricSums:
    yc = y - ky
    if x is None:
        return MetricSums(
            Moments(len(y), yc.sum(), (yc * yc).sum(), ky), None, 0.0, y.min(), y.max()
        )
    xc = x - kx
    return MetricSums(
        Moments(len(y), yc.sum(), (yc * yc).sum(), ky),
        Moments(len(x), xc.sum(), (xc * xc).sum(), kx),
        float((xc * yc).sum()),
        y.min(),
        y.max(),
    )


def aa_decision_rate(
    metric_type: str,
    n_per_arm: int,
    *,
    n_sim: int = 1000,
    seed: int = 0,
    guardrails: int = 0,
    alpha: float | None = None,
    min_units_per_arm: int | None = None,
) -> dict[str, Any]:
    """Share of A/A tests (both arms from one distribution) whose decision is a false positive:
    "ship", or "do_not_ship" because a metric or guardrail was significantly harmed.

    Examples:
        >>> r = aa_decision_rate("mean", 50, n_sim=50, seed=1)
        >>> r["false_positive_rate"] <= 0.2, r["n_sim"]
        (True, 50)
    """
    alpha = config.ALPHA if alpha is None else alpha
    min_units = config.MIN_UNITS_PER_ARM if min_units_per_arm is None else min_units_per_arm
    metric, draw = GENERATORS[metric_type]
    guards = [
        Metric(f"guardrail{i}", "mean", column=f"g{i}", guardrail=True, direction="decrease")
        for i in range(guardrails)
    ]
    metrics = [metric, *guards]
    plan = Plan("control", ("treatment",), alpha, config.POWER, "A/A", {}, "holm", min_units)
    rng = np.random.default_rng(seed)
    fp = decided = 0
    for _ in range(n_sim):
        arms_data = {arm: [draw(rng, n_per_arm)] for arm in ("control", "treatment")}
        for arm in arms_data:
            arms_data[arm] += [(rng.lognormal(5, 0.5, n_per_arm), None) for _ in guards]
        arms = {}
        for arm, data in arms_data.items():
            sums = []
            for j, (y, x) in enumerate(data):
                pooled_y = np.concatenate([arms_data[a][j][0] for a in arms_data])
                ky = 0.0 if j == 0 and metric.type == "proportion" else float(pooled_y.mean())
                kx = (
                    float(np.concatenate([arms_data[a][j][1] for a in arms_data]).mean())
                    if (x is not None and metric.covariate)
                    else 0.0
                )
                sums.append(_sums(y, x, ky, kx))
            arms[arm] = ArmSums(n_per_arm, tuple(sums))
        try:
            results, _, _, decision = evaluate_arms(arms, metrics, plan)
        except DataError:  # e.g. no conversion in either arm: no decision, not a false positive
            continue
        decided += 1
        if decision.recommendation == "ship" or any(r.harmed for r in results):
            fp += 1
    rate = fp / n_sim
    return {
        "metric": metric_type,
        "n_per_arm": n_per_arm,
        "guardrails": guardrails,
        "n_sim": n_sim,
        "decided": decided,
        "false_positive_rate": rate,
    }


def peeking_rate(
    *,
    sequential: bool,
    looks: int = 30,
    units_per_look: int = 200,
    n_sim: int = 1000,
    metric_type: str = "proportion",
    seed: int = 0,
    alpha: float | None = None,
    tuning: float = 5000.0,
) -> dict[str, Any]:
    """Share of A/A tests declared significant at *any* of ``looks`` daily looks (each look
    adds ``units_per_look`` units per arm): what a team that checks every day and stops at the
    first significant result sees. Fixed-horizon p-values inflate it far above α; always-valid
    (sequential) ones keep it at most α (README, "Sequential results").

    Examples:
        >>> peeking_rate(sequential=True, looks=5, n_sim=20)["n_sim"]
        20
    """
    alpha = config.ALPHA if alpha is None else alpha
    metric, draw = GENERATORS[metric_type]
    plan = Plan("control", ("treatment",), alpha, config.POWER, "A/A", {}, "none", 2,
                sequential, tuning)  # fmt: skip
    rng = np.random.default_rng(seed)
    ever = 0
    for _ in range(n_sim):
        so_far: dict[str, ArmSums] = {}
        hit = False
        for _look in range(looks):
            for arm in ("control", "treatment"):
                y, x = draw(rng, units_per_look)
                add = ArmSums(units_per_look, (_sums(y, x, 0.0, 0.0),))
                so_far[arm] = so_far[arm] + add if arm in so_far else add
            res = compare_metrics([metric], so_far, plan, strict=False)
            if res and res[0].p_value < alpha:
                hit = True
                break
        ever += hit
    return {
        "sequential": sequential,
        "looks": looks,
        "units_per_look": units_per_look,
        "n_sim": n_sim,
        "ever_significant_rate": ever / n_sim,
    }


def binomial_band(p: float, n: int, z: float = 2.5758) -> tuple[float, float]:
    """The 99% normal band of a simulated rate around ``p`` with ``n`` simulations.

    Examples:
        >>> [round(x, 4) for x in binomial_band(0.05, 1000)]
        [0.0322, 0.0678]
    """
    half = z * (p * (1 - p) / n) ** 0.5
    return p - half, p + half


def main(argv: Sequence[str] | None = None) -> None:
    """Print the README's A/A table (Markdown)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-sim", type=int, default=2000)
    ap.add_argument("--min-units-per-arm", type=int, default=None)
    ap.add_argument("--peeking", action="store_true", help="the sequential peeking table")
    args = ap.parse_args(argv)
    if args.peeking:
        print("| p-values used at each look | share of A/A tests ever declared different |")
        print("|---|---|")
        for s in (False, True):
            r = peeking_rate(sequential=s, n_sim=args.n_sim)
            name = "always-valid (`sequential=True`)" if s else "fixed-horizon"
            print(f"| {name} | {r['ever_significant_rate']:.1%} |")
        return
    sizes = (20, 50, 200, 1000)
    lo, hi = binomial_band(config.ALPHA, args.n_sim)
    print(f"| metric | guardrails | {' | '.join(f'{n} per arm' for n in sizes)} |")
    print("|---|---|" + "---|" * len(sizes))
    for kind in GENERATORS:
        for g in (0, 1, 2):
            if g and kind != "mean":
                continue
            cells = []
            for i, n in enumerate(sizes):
                r = aa_decision_rate(
                    kind,
                    n,
                    n_sim=args.n_sim,
                    seed=i,
                    guardrails=g,
                    min_units_per_arm=args.min_units_per_arm,
                )
                cells.append(f"{r['false_positive_rate']:.1%}")
            print(f"| {kind} | {g} | {' | '.join(cells)} |")
    print(
        f"\n99% band around α = {config.ALPHA} with {args.n_sim} simulations: {lo:.1%} to {hi:.1%}"
    )


if __name__ == "__main__":
    main()
