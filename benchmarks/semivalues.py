"""Beta(16, 1) and Banzhaf estimators on exact games: today's estimators against the new ones
at an equal number of utility evaluations (issue 14, target "at least 10x lower relative MSE").

Today: ``beta-shapley`` with importance-weighted permutations (``B // (n + 1)`` permutations)
and ``banzhaf`` with MSR (``B`` subsets). New: the same methods with ``estimator=`` msr,
regression-msr or stratified-svarm and a budget of ``B`` evaluations. Exact values come from
the game tables of ``estimators_games.py``.

    python benchmarks/semivalues.py [--quick]

Writes ``benchmarks/semivalues.json`` and renders ``benchmarks/semivalues.md`` from it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tables
from estimators_games import GAMES_BY_NAME, LookupGame, load_or_build, popcounts

from dataworth.estimators.semivalues import Semivalue
from dataworth.methods import get_method

HERE = Path(__file__).resolve().parent
SEMIVALUES = {"beta(16,1)": Semivalue.beta_shapley(16, 1), "banzhaf": Semivalue.banzhaf()}
#: (label, method, estimator or None for the method's classic one)
CONTENDERS = {
    "beta(16,1)": [
        ("today: importance-weighted permutations", "beta-shapley", None),
        ("msr", "beta-shapley", "msr"),
        ("regression-msr", "beta-shapley", "regression-msr"),
        ("stratified-svarm", "beta-shapley", "stratified-svarm"),
    ],
    "banzhaf": [
        ("today: MSR", "banzhaf", None),
        ("regression-msr", "banzhaf", "regression-msr"),
        ("stratified-svarm", "banzhaf", "stratified-svarm"),
    ],
}


def exact_semivalue(table: np.ndarray, n: int, semivalue: Semivalue) -> np.ndarray:
    """``phi_i = sum_{S not containing i} w(|S|) (u(S + i) - u(S))`` from a full table."""
    codes = np.arange(1 << n, dtype=np.int64)
    sizes = popcounts(n)
    w = np.exp(semivalue.log_weights(n))
    phi = np.empty(n)
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        phi[i] = np.dot(w[sizes[without]], table[without | (1 << i)] - table[without])
    return phi


def run_one(game: LookupGame, method: str, estimator: str | None, budget: int, seed: int) -> Any:
    n = game.n_players
    params: dict[str, Any] = {"random_state": seed}
    if method == "beta-shapley":
        params.update(alpha=16.0, beta=1.0)
    if estimator is None:
        params["budget"] = budget // (n + 1) if method == "beta-shapley" else budget
    else:
        params.update(budget=budget, estimator=estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_method(method)(**params).fit(game).result_


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 games, 3 seeds")
    args = parser.parse_args(argv)
    names = ["breast_cancer-12", "wine-13"] if args.quick else list(GAMES_BY_NAME)[:5]
    seeds = range(3 if args.quick else 10)
    factors = (50, 200)
    rows: list[dict[str, Any]] = []
    for name in names:
        table = load_or_build(GAMES_BY_NAME[name], verbose=False)
        n = table.n
        for sv_name, semivalue in SEMIVALUES.items():
            exact = exact_semivalue(table.utility, n, semivalue)
            for factor in factors:
                budget = factor * n
                for label, method, estimator in CONTENDERS[sv_name]:
                    errors, seconds = [], []
                    for seed in seeds:
                        game = LookupGame(table.utility, n, name)
                        started = time.perf_counter()
                        result = run_one(game, method, estimator, budget, seed)
                        seconds.append(time.perf_counter() - started)
                        assert game.n_evaluations <= budget, (label, game.n_evaluations)
                        values = np.nan_to_num(result.values)
                        errors.append(float(np.sum((values - exact) ** 2) / np.sum(exact**2)))
                    rows.append({"game": name, "n": n, "semivalue": sv_name, "budget": budget,
                                 "factor": factor, "estimator": label,
                                 "rel_mse": float(np.mean(errors)),
                                 "seconds": float(np.mean(seconds))})  # fmt: skip
                    print(f"{name} {sv_name} {factor}n {label}: {np.mean(errors):.3g}", flush=True)
    command = "python benchmarks/semivalues.py" + (" --quick" if args.quick else "")
    out = HERE / ("semivalues-quick.json" if args.quick else "semivalues.json")
    out.write_text(json.dumps({"command": command, "seeds": len(seeds), "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(render(json.loads(out.read_text())))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def render(data: dict[str, Any]) -> str:
    """Markdown from the JSON: per semivalue and budget, each estimator's relative MSE per game
    and the ratio today / best new (geometric mean over games)."""
    rows = data["rows"]
    lines = [
        "# Beta(16, 1) and Banzhaf estimators on exact games",
        "",
        f"`{data['command']}`; relative MSE ||phi_hat - phi||^2 / ||phi||^2, mean over "
        f"{data['seeds']} seeds, at an equal number of utility evaluations (today's "
        "beta-shapley gets B // (n + 1) permutations).",
        "",
    ]
    stem = "semivalues-quick" if "--quick" in data["command"] else "semivalues"
    for sv in dict.fromkeys(r["semivalue"] for r in rows):
        for factor in sorted({r["factor"] for r in rows}):
            lines += [
                f"## {sv}, B = {factor}n",
                "",
                tables.block(f"{stem}.table:{sv}:{factor}", data),
                "",
            ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
