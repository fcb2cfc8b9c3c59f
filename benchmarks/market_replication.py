"""Replication attacks on real market valuations: the attacker's share before and after.

Usage::

    python benchmarks/market_replication.py [--seeds 5] [--quick]
                                            [--out benchmarks/market_replication.md]

This is the sweep behind "Measured: replication attacks on real valuations" in
``docs/market.md``. Markets: 3 datasets (iris, wine, breast_cancer; every feature standardised
with the mean and standard deviation of the whole dataset) x 2 models (``logistic-regression``
and ``knn`` from :func:`dataworth.models.make_model`, ``random_state=0``) x 5 seeds. For a seed,
the rows are permuted (``np.random.default_rng(seed)``); the first third of the data (at most 100
rows) is the buyer's valuation set and the next 60 rows are sold by providers A-D (row ``i``
belongs to provider ``"ABCD"[i % 4]``, so 15 rows each). Providers are valued by exact Shapley
over providers and paid out of a budget of 10,000, by the pipeline of ``dataworth market``:
:func:`dataworth.apps.market.prepare_market` (the robust modes drop the rows a provider repeats
within its own data), ``dataworth.value("exact-shapley", ..., by_group=True)`` on the rows kept,
then :func:`dataworth.apps.market.market_payouts`. The valuation depends only on the rows valued,
so the two robust modes share theirs.

Provider A then attacks in one of these ways:

* ``copy``: a second identity A2 with a copy of A's rows; ``copy+P%`` adds Gaussian noise of P%
  of each feature's standard deviation to the copy (``np.random.default_rng(seed)``);
* ``two copies``: two extra identities A2 and A3, each with an exact copy;
* ``inside``: A repeats its 15 rows inside its own data;
* ``split``: A divides its rows between A (rows 0, 2, 4, ... of A) and A2.

A's share is what all of its identities are paid together, in cents, over the budget. It is
measured with the plain values (``robust=False``) and with the replication-robust values
(``robust=True``, ``lam=1``, the default, and ``lam=2``), each before and after the attack.
The report also gives the penalties of the honest providers of the markets without an attack
(the ratio of the smallest to the largest penalty among A-D of one market) and checks that
after the ``inside`` attack the robust payouts equal those before it, to the cent.

``--quick`` runs iris with one seed (2 markets), a smoke test of a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tables  # noqa: E402
from common import environment, record_lines, run_record  # noqa: E402

from dataworth import value  # noqa: E402
from dataworth.apps.market import (  # noqa: E402
    MarketData,
    MarketResult,
    market_payouts,
    prepare_market,
)
from dataworth.data import Dataset  # noqa: E402
from dataworth.datasets import load_dataset  # noqa: E402
from dataworth.models import make_model  # noqa: E402

DATASETS = ("iris", "wine", "breast_cancer")
MODELS = ("logistic-regression", "knn")
ATTACKS = ("copy", "copy+1%", "copy+5%", "copy+10%", "copy+20%", "two copies", "inside", "split")
#: the providers' valuation: exact Shapley over providers (``dataworth market``'s default)
METHOD = "exact-shapley"
#: mode -> arguments of market_payouts (``robust`` also of prepare_market)
MODES: dict[str, dict[str, Any]] = {
    "plain": {"robust": False},
    "robust lam=1": {"robust": True, "lam": 1.0},
    "robust lam=2": {"robust": True, "lam": 2.0},
}
BUDGET = 10000
ROWS = 60
PROVIDERS = np.array(list("ABCD"), dtype="<U4")


def market_data(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Dataset]:
    """60 standardised rows from providers A-D (15 each) and a valuation set (1/3, at most 100)."""
    ds = load_dataset(name)
    X, y = (ds.X - ds.X.mean(axis=0)) / ds.X.std(axis=0), ds.y
    idx = np.random.default_rng(seed).permutation(len(y))
    nv = min(len(y) // 3, 100)
    rows = idx[nv : nv + ROWS]
    groups = PROVIDERS[np.arange(ROWS) % PROVIDERS.size]
    return X[rows], y[rows], groups, Dataset.from_arrays(X[idx[:nv]], y[idx[:nv]])


def attacked(
    X: np.ndarray, y: np.ndarray, g: np.ndarray, attack: str, seed: int
) -> tuple[Dataset, list[str]]:
    """The market after provider A's attack, and A's identities."""
    a = np.flatnonzero(g == "A")
    if attack == "split":  # A's rows divided between A and A2
        g = g.copy()
        g[a[::2]] = "A2"
        return Dataset.from_arrays(X, y, groups=g), ["A", "A2"]
    if attack == "inside":  # A repeats its rows inside its own data
        ds = Dataset.from_arrays(np.vstack([X, X[a]]), np.r_[y, y[a]], groups=np.r_[g, g[a]])
        return ds, ["A"]
    noise = float(attack.split("+")[1][:-1]) / 100 if "+" in attack else 0.0
    names = ["A2", "A3"] if attack == "two copies" else ["A2"]
    rng = np.random.default_rng(seed)
    parts = [(X, y, g)] + [
        (X[a] + noise * rng.normal(size=X[a].shape), y[a], np.array([n] * a.size)) for n in names
    ]
    ds = Dataset.from_arrays(
        np.vstack([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        groups=np.concatenate([p[2] for p in parts]),
    )
    return ds, ["A", *names]


def run_market(train: Dataset, valid: Dataset, model: Any, who: list[str]) -> dict[str, Any]:
    """Every mode's payouts of one market, and the share of the identities ``who``."""
    out: dict[str, Any] = {}
    valued: dict[bool, tuple[MarketData, Any]] = {}  # robust -> (rows valued, their valuation)
    for mode, kwargs in MODES.items():
        robust = bool(kwargs["robust"])
        if robust not in valued:
            rows = prepare_market(train, robust=robust)
            valuation = value(METHOD, rows.data, valid, model=model, by_group=True, n_jobs=1)
            valued[robust] = (rows, valuation)
        rows, valuation = valued[robust]
        m: MarketResult = market_payouts(valuation, rows, BUDGET, **kwargs)
        providers = m.table.providers.tolist()
        cents = [int(c) for c in m.table.cents]
        mine = sum(c for p, c in zip(providers, cents, strict=True) if p in who)
        out[mode] = {
            "share": mine / m.table.budget_cents,
            "providers": providers,
            "cents": cents,
            "base": m.base.tolist(),
            "penalty": None if m.penalty is None else m.penalty.tolist(),
        }
    return out


def sweep(datasets: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    markets = []
    for name in datasets:
        for model_name in MODELS:
            for seed in seeds:
                t0 = time.perf_counter()
                X, y, g, valid = market_data(name, seed)
                model = make_model(model_name, random_state=0)
                before = run_market(Dataset.from_arrays(X, y, groups=g), valid, model, ["A"])
                after = {}
                for attack in ATTACKS:
                    ds, identities = attacked(X, y, g, attack, seed)
                    after[attack] = run_market(ds, valid, model, identities)
                markets.append(
                    {
                        "dataset": name,
                        "model": model_name,
                        "seed": seed,
                        "before": before,
                        "after": after,
                        "seconds": round(time.perf_counter() - t0, 2),
                    }
                )
                print(f"  {name} {model_name} seed {seed}", flush=True)
    return markets


# ---------------------------------------------------------------------------------- report
def _gains(markets: list[dict[str, Any]], attack: str, mode: str) -> tuple[np.ndarray, ...]:
    b = np.array([m["before"][mode]["share"] for m in markets])
    a = np.array([m["after"][attack][mode]["share"] for m in markets])
    return b, a


def summarise(markets: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for attack in ATTACKS:
        for mode in MODES:
            row: dict[str, Any] = {"attack": attack, "mode": mode}
            for model in (None, *MODELS):
                mine = [m for m in markets if model is None or m["model"] == model]
                b, a = _gains(mine, attack, mode)
                key = "all" if model is None else model
                row[key] = {
                    "markets": len(mine),
                    "gained": int((a > b).sum()),
                    "share_before_mean": float(b.mean()),
                    "share_after_mean": float(a.mean()),
                    "largest_gain": float((a - b).max()),
                }
            rows.append(row)
    honest = []
    for name in dict.fromkeys(m["dataset"] for m in markets):
        mine = [m for m in markets if m["dataset"] == name]
        entry: dict[str, Any] = {"dataset": name, "markets": len(mine)}
        for mode in ("robust lam=1", "robust lam=2"):
            p = [np.array(m["before"][mode]["penalty"]) for m in mine]
            ratios = np.array([x.min() / x.max() for x in p])
            entry[mode] = {
                "ratio_lowest": float(ratios.min()),
                "ratio_mean": float(ratios.mean()),
                "penalty_lowest": float(min(x.min() for x in p)),
            }
        honest.append(entry)
    inside_same = {
        mode: sum(
            m["after"]["inside"][mode]["cents"] == m["before"][mode]["cents"]
            and m["after"]["inside"][mode]["providers"] == m["before"][mode]["providers"]
            for m in markets
        )
        for mode in MODES
    }
    return {"rows": rows, "honest_penalties": honest, "inside_same_cents": inside_same}


def write_report(results: dict[str, Any], out: Path) -> None:
    s = results["summary"]
    n = len(results["markets"])
    md = [
        "# Replication attacks on real market valuations",
        "",
        *record_lines(results),
        "",
        f"{n} markets: datasets {', '.join(results['datasets'])} x models "
        f"{', '.join(MODELS)} x seeds {results['seeds']}. Each market has {ROWS} rows from "
        "providers A-D (15 each) and a valuation set of a third of the data (at most 100 "
        "rows); values are exact Shapley over providers, the budget is 10,000. A's share is "
        "what all of its identities are paid together. The attacks are described in the "
        "docstring of `benchmarks/market_replication.py`.",
        "",
        "## The attacker's share of the budget, before and after the attack",
        "",
        tables.block("market_replication.attacks", results),
        "",
        "## The same, by model",
        "",
        tables.block("market_replication.by_model", results),
        "",
        "## Penalties of honest providers (markets without an attack)",
        "",
        "For each market, the ratio of the smallest to the largest penalty "
        "`exp(-lam x summed similarity)` among providers A-D.",
        "",
        tables.block("market_replication.honest", results),
        "",
        "## Copies inside one's own data",
        "",
        f"Markets whose payouts after the `inside` attack equal those before it, to the cent "
        f"(of {n}): "
        + ", ".join(f"{mode} {k}" for mode, k in s["inside_same_cents"].items())
        + ".",
    ]
    out.write_text("\n".join(md) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="iris, one seed: a smoke run")
    parser.add_argument("--out", type=Path, default=HERE / "market_replication.md")
    args = parser.parse_args()
    datasets = ["iris"] if args.quick else list(DATASETS)
    seeds = list(range(1 if args.quick else args.seeds))
    started = time.perf_counter()
    results: dict[str, Any] = {
        **run_record("market_replication.py"),
        "datasets": datasets,
        "seeds": seeds,
    }
    with threadpool_limits(limits=1):
        markets = sweep(datasets, seeds)
    results["seconds"] = time.perf_counter() - started
    results["summary"] = summarise(markets)
    results["environment"] = environment()
    results["markets"] = markets
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(json.loads(args.out.with_suffix(".json").read_text()), args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
