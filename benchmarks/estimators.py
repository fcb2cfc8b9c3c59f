"""Shapley estimators on exact games: dataworth next to shapiq's approximators (issue 14, part 5).

Usage::

    python benchmarks/estimators.py --quick          # 2 games, 3 seeds; writes estimators-quick.*
    python benchmarks/estimators.py                  # 6 games (n = 12..18), 10 seeds
    python benchmarks/estimators.py --dataworth-estimators permutation,msr,regression-msr \
        --games wine-13 --seeds 5 --out /tmp/e.md
    python benchmarks/estimators.py --render benchmarks/estimators.json   # JSON -> markdown only

Games (``estimators_games.py``): bundled scikit-learn datasets whose training rows are dealt into
n = 12..18 groups (data sources), a few groups with flipped labels; the utility of a coalition is
dataworth's batched logistic-regression accuracy on held-out rows, enumerated for all 2^n
coalitions and cached in ``benchmarks/games/*.npz``. The exact Shapley values come from the full
table; they are checked by efficiency on every game, against
``dataworth.testing.games.exact_semivalue_bruteforce`` on the first game and against shapiq's
``ExactComputer`` on the first game.

Every estimator sees the same table through a lookup: dataworth's methods a ``LookupGame``
(``UtilityBase``, counts every coalition looked up), shapiq's approximators a ``shapiq.Game``
whose ``value_function`` looks up (and counts) in the same table, in a subprocess of the
Python 3.12 interpreter of ``.venv-shapiq`` (``benchmarks/setup_shapiq.sh``). Budgets are
utility evaluations, B = 10n, 50n, 200n; dataworth's permutation methods get B // (n + 1)
permutations. Metrics per (game, method, budget) over the seeds: relative MSE
||phi_hat - phi||^2 / ||phi||^2 (mean), Spearman rho with the exact values (mean), wall seconds of
the estimator call (mean) and the largest number of evaluations used in a run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import tables  # noqa: E402
from common import limit_threads, record_lines, run_record, spearman  # noqa: E402
from estimators_games import (  # noqa: E402
    GAMES,
    GAMES_BY_NAME,
    GameTable,
    LookupGame,
    check_against_bruteforce,
    efficiency_gap,
    exact_shapley,
    load_or_build,
)

DEFAULT_SHAPIQ_PYTHON = ROOT / ".venv-shapiq" / "bin" / "python"
#: "all": every estimator registered in dataworth.estimators.ESTIMATORS when it exists.
DEFAULT_DATAWORTH_ESTIMATORS = "all"
#: What "all" means while dataworth.estimators does not exist (the run then notes and skips them).
FALLBACK_ESTIMATORS = ["permutation", "msr", "regression-msr"]
#: dataworth's existing permutation methods, always run: name -> constructor keyword arguments
#: besides budget (permutations) and random_state.
PERMUTATION_METHODS: dict[str, dict[str, Any]] = {
    "permutation-shapley": {},
    "tmc-shapley": {},  # tolerance=0.01 (its default)
}


# --------------------------------------------------------------------------- dataworth side
def resolve_dataworth(names: list[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """(label, factory(budget, n, seed) -> valuation) for each method to run, and notes."""
    from dataworth.errors import DataworthError
    from dataworth.methods import get_method

    runs: list[tuple[str, Any]] = []
    notes: list[str] = []
    for method, kwargs in PERMUTATION_METHODS.items():
        cls = get_method(method)
        runs.append(
            (
                method,
                lambda b, n, seed, cls=cls, kwargs=kwargs: cls(
                    budget=max(1, b // (n + 1)), random_state=seed, **kwargs
                ),
            )
        )
    registered: list[str] | None
    try:
        from dataworth.estimators import ESTIMATORS

        registered = list(ESTIMATORS)
    except ImportError:
        registered = None
    if names == ["all"]:
        names = registered if registered is not None else FALLBACK_ESTIMATORS
    if registered is not None:
        unknown = [n for n in names if n not in registered]
        if unknown:
            note = (
                f"not dataworth estimators (skipped): {', '.join(unknown)}; registered: "
                f"{', '.join(registered)}"
            )
            print(f"note: {note}", flush=True)
            notes.append(note)
            names = [n for n in names if n in registered]
    if names:
        try:
            shapley = get_method("shapley")
        except DataworthError as exc:
            note = (
                f"dataworth has no 'shapley' method yet ({exc}); skipped estimators: "
                f"{', '.join(names)}"
            )
            print(f"note: {note}", flush=True)
            notes.append(note)
            return runs, notes
        for name in names:
            runs.append(
                (
                    f"shapley/{name}",
                    lambda b, n, seed, name=name: shapley(
                        estimator=name, budget=b, random_state=seed
                    ),
                )
            )
    return runs, notes


def run_dataworth(
    tables: list[GameTable], factors: list[int], seeds: list[int], names: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    methods, notes = resolve_dataworth(names)
    rows: list[dict[str, Any]] = []
    for t in tables:
        n = t.n
        print(f"dataworth: {t.spec.name} (n={n})", flush=True)
        for label, factory in methods:
            for factor in factors:
                budget = factor * n
                for seed in seeds:
                    game = LookupGame(t.utility, n, t.spec.name)
                    row: dict[str, Any] = {
                        "game": t.spec.name,
                        "method": label,
                        "budget_factor": factor,
                        "budget": budget,
                        "seed": seed,
                    }
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            est = factory(budget, n, seed)
                            start = time.perf_counter()
                            result = est.fit(game).result_
                            row["seconds"] = time.perf_counter() - start
                        labels = np.asarray(result.labels)
                        values = np.asarray(result.values, dtype=np.float64)
                        if labels.shape == (n,) and labels.dtype.kind in "iu":
                            ordered = np.full(n, np.nan)
                            ordered[labels] = values
                            values = ordered
                        row["values"] = values.tolist()
                        row["evaluations"] = game.n_evaluations
                        if seed == seeds[0]:
                            row["settings"] = repr(est)
                    except Exception as exc:  # recorded, never skipped silently
                        row["error"] = f"{type(exc).__name__}: {exc}"
                        row["traceback"] = traceback.format_exc(limit=4)
                        print(f"  {label} B={budget} seed={seed}: {row['error']}", flush=True)
                    rows.append(row)
    return rows, notes


# --------------------------------------------------------------------------- shapiq side
def run_shapiq(
    tables: list[GameTable],
    factors: list[int],
    seeds: list[int],
    python: Path,
    approximators: list[str] | None,
    exact_check: list[str],
) -> dict[str, Any]:
    """Run ``shapiq_runner.py`` under the shapiq interpreter; its JSON record (or an error)."""
    if not python.exists():
        return {"error": f"{python} not found: run `bash benchmarks/setup_shapiq.sh` first"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "shapiq.json"
        cmd = [
            str(python),
            str(HERE / "shapiq_runner.py"),
            "--games",
            *[str(t.path) for t in tables],
            "--budget-factors",
            *map(str, factors),
            "--seeds",
            *map(str, seeds),
            "--out",
            str(out),
            "--exact-check",
            *exact_check,
        ]
        if approximators:
            cmd += ["--approximators", *approximators]
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            return {"error": f"shapiq_runner exited {proc.returncode}: {proc.stderr[-2000:]}"}
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- metrics
def rel_mse(est: np.ndarray, exact: np.ndarray) -> float:
    return float(np.sum((est - exact) ** 2) / np.sum(exact**2))


def summarise(rows: list[dict[str, Any]], library: str, key: str) -> list[dict[str, Any]]:
    """One entry per (game, method, budget): means over seeds."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["game"], r[key], r["budget_factor"]), []).append(r)
    out = []
    for (game, method, factor), rs in groups.items():
        ok = [r for r in rs if "values" in r and np.all(np.isfinite(r["values"]))]
        mses = [r["rel_mse"] for r in ok]  # from add_run_metrics (unrounded values)
        rhos = [r["spearman"] for r in ok]
        evals = [r["evaluations"] for r in ok if r.get("evaluations") is not None]
        budget = rs[0]["budget"]
        out.append(
            {
                "library": library,
                "game": game,
                "method": method,
                "budget_factor": factor,
                "budget": budget,
                "n_runs": len(rs),
                "n_ok": len(ok),
                "errors": sorted({r["error"] for r in rs if "error" in r}),
                "rel_mse": float(np.mean(mses)) if mses else math.nan,
                "rel_mse_sd": float(np.std(mses)) if mses else math.nan,
                "spearman": float(np.nanmean(rhos)) if rhos else math.nan,
                "seconds": float(np.mean([r["seconds"] for r in ok])) if ok else math.nan,
                "max_evaluations": max(evals) if evals else None,
                "over_budget": sum(e > budget for e in evals),
            }
        )
    return out


def add_run_metrics(rows: list[dict[str, Any]], exact: dict[str, np.ndarray]) -> None:
    """Per run: rel. MSE and Spearman (from the full values); values then rounded to 5
    significant digits for the JSON (far below the errors measured), tracebacks kept once per
    distinct error, to keep the JSON small."""
    seen: set[str] = set()
    for r in rows:
        if "values" in r:
            est = np.asarray(r["values"], dtype=np.float64)
            r["rel_mse"] = rel_mse(est, exact[r["game"]])
            r["spearman"] = spearman(est, exact[r["game"]])
            r["values"] = [float(f"{v:.5g}") for v in est]
        if "traceback" in r:
            if r["error"] in seen:
                del r["traceback"]
            seen.add(r["error"])


RUN_COLUMNS = [
    "library", "game", "method", "budget_factor", "budget", "seed", "seconds", "evaluations",
    "rel_mse", "spearman", "values",
]  # fmt: skip


def compact_runs(rows: list[dict[str, Any]], library: str, key: str) -> list[list[Any]]:
    """Successful runs as rows of RUN_COLUMNS (one JSON line each; failed runs are kept whole
    in ``failed_runs``)."""

    def short(x: float) -> float:
        return float(f"{x:.4g}") if isinstance(x, float) and math.isfinite(x) else x

    out = []
    for r in rows:
        if "values" not in r:
            continue
        row = {**r, "library": library, "method": r[key]}
        out.append(
            [
                short(row[c]) if c in ("seconds", "rel_mse", "spearman") else row.get(c)
                for c in RUN_COLUMNS
            ]
        )
    return out


def dump_json(record: dict[str, Any]) -> str:
    """JSON with one line per run and per list of numbers."""
    rows, summary = record["runs"]["rows"], record["summary"]
    record = {**record, "runs": {**record["runs"], "rows": "@ROWS@"}, "summary": "@SUMMARY@"}
    text = json.dumps(record, indent=1, default=float)
    for mark, items, indent in (("@ROWS@", rows, "   "), ("@SUMMARY@", summary, "  ")):
        lines = ",\n".join(indent + json.dumps(r, default=float) for r in items)
        text = text.replace(f'"{mark}"', "[\n" + lines + "\n" + indent[:-1] + "]")
    return re.sub(
        r"\[\s*(-?[0-9][-0-9.eE+]*(?:,\s*-?[0-9][-0-9.eE+]*)*)\s*\]",
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
        text,
    )


# --------------------------------------------------------------------------- report
#: The same algorithm in both libraries: dataworth estimator (or method) -> shapiq approximator.
def render(record: dict[str, Any], stem: str = "estimators") -> str:
    """The markdown of a run; its tables are ``tables.py``'s ``{stem}.*`` (stem: estimators or
    estimators-quick, the JSON they are rendered from in benchmarks/)."""
    lines = [
        "# Shapley estimators on exact games: dataworth and shapiq",
        "",
        *record_lines(record),
        "",
        "Every estimator values the players (groups of training rows) of games whose utility "
        "is known for every coalition (2^n table, `benchmarks/games/*.npz`, built by "
        "`estimators_games.py`), so the error is against the exact Shapley values. Budget B = "
        "utility evaluations (coalitions looked up, the empty one included); dataworth's "
        "permutation methods get B // (n + 1) permutations. "
        f"{len(record['seeds'])} seeds per cell; BLAS/OpenMP limited to 1 thread on both sides.",
        "",
        f"dataworth at commit {record['git']['head']}"
        + (
            f" with uncommitted changes in {', '.join(record['git']['src_changed'])}"
            if record["git"]["src_changed"]
            else ""
        )
        + ".",
        "",
        "* **rel. MSE** = mean over seeds of ||phi_hat - phi||^2 / ||phi||^2 (lower is better);",
        "* **rho** = mean Spearman rank correlation with the exact values;",
        "* **s** = mean wall seconds of one estimator call (table lookups cost ~nothing, so this "
        "is the estimator's own overhead);",
        "* **evals** = most evaluations used by one run (never above B: checked, "
        f"{record['over_budget_runs']} runs over).",
        "",
    ]
    if record.get("notes"):
        lines += ["Notes:", ""] + [f"* {n}" for n in record["notes"]] + [""]
    lines += ["## Games", "", tables.block(f"{stem}.games", record)]
    lines += ["", "## Checks of the exact values", ""]
    for c in record["checks"]:
        lines.append(f"* {c}")
    lines += ["", "## Best of each library (rel. MSE; ratio = best dataworth / best shapiq)", ""]
    lines.append(tables.block(f"{stem}.best", record))
    lines += [
        "",
        "## Same algorithm in both libraries (rel. MSE dataworth / shapiq)",
        "",
        "Geometric mean over the games of the ratio of mean rel. MSE (below 1: dataworth's is "
        "lower); in brackets the smallest and largest ratio. dataworth's `msr` (uniform-size "
        "paired MSR) has no exact shapiq twin; it is set against SVARM, the closest.",
        "",
        tables.block(f"{stem}.counterparts", record),
    ]
    for g in record["games"]:
        lines += ["", f"## {g['name']} (n = {g['n']})", ""]
        lines.append(tables.block(f"{stem}.game:{g['name']}", record))
    sq = record.get("shapiq", {})
    if sq.get("approximators"):
        lines += ["", "## shapiq approximators", ""]
        for name, a in sq["approximators"].items():
            what = a.get("class", a.get("error"))
            kw = f", {a['kwargs']}" if a.get("kwargs") else ""
            lines.append(f"* `{name}`: `{what}`{kw}, `random_state=seed`, otherwise defaults")
        for name, ws in sq.get("warnings", {}).items():
            for w in ws:
                lines.append(f"* warning from `{name}`: {w[:200]}")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def table_stem(path: Path) -> str:
    """The ``tables.py`` families of a run written to ``path``: the quick run's or the full's."""
    return "estimators-quick" if path.stem == "estimators-quick" else "estimators"


def git_state() -> dict[str, Any]:
    """HEAD and the files of src/ that differ from it (the estimators are work in progress)."""

    def git(*a: str) -> str:
        try:
            return subprocess.run(
                ["git", *a], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout
        except OSError:
            return ""

    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--", "src").splitlines()
        if line[3:].endswith(".py")
    ]
    return {"head": git("rev-parse", "--short", "HEAD").strip(), "src_changed": changed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 games, 3 seeds")
    parser.add_argument("--games", nargs="+", choices=sorted(GAMES_BY_NAME))
    parser.add_argument("--seeds", type=int, help="number of seeds (default 10, --quick 3)")
    parser.add_argument("--budget-factors", nargs="+", type=int, default=[10, 50, 200])
    parser.add_argument(
        "--dataworth-estimators",
        default=DEFAULT_DATAWORTH_ESTIMATORS,
        help="comma-separated estimators of dataworth's 'shapley' method, or 'all' (the "
        "default: every registered one); skipped with a note while the method does not exist; "
        "'' for none",
    )
    parser.add_argument("--shapiq-python", type=Path, default=DEFAULT_SHAPIQ_PYTHON)
    parser.add_argument("--shapiq-approximators", nargs="+", help="default: all in the runner")
    parser.add_argument("--no-shapiq", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown (JSON next to it)")
    parser.add_argument("--render", type=Path, help="only re-render this JSON to markdown")
    args = parser.parse_args(argv)

    if args.render:
        record = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render(record, table_stem(args.render)))
        return 0

    started = time.perf_counter()
    limit_threads(1)
    names = args.games or [g.name for g in (GAMES[:2] if args.quick else GAMES)]
    seeds = list(range(args.seeds or (3 if args.quick else 10)))
    factors = args.budget_factors
    est_names = [s for s in args.dataworth_estimators.split(",") if s.strip()]
    out = args.out or HERE / ("estimators-quick.md" if args.quick else "estimators.md")
    record: dict[str, Any] = run_record("estimators.py", packages=["shapiq"])
    record.update({"seeds": seeds, "budget_factors": factors, "notes": [], "checks": []})
    record["git"] = git_state()

    tables = [load_or_build(GAMES_BY_NAME[n]) for n in names]
    exact: dict[str, np.ndarray] = {}
    record["games"] = []
    for t in tables:
        phi = exact_shapley(t.utility, t.n)
        exact[t.spec.name] = phi
        gap = efficiency_gap(t, phi)
        record["checks"].append(
            f"{t.spec.name}: |sum(phi) - (u(N) - u(empty))| = {gap:.1e} (u(empty) = "
            f"{t.utility[0]:g}, dataworth's default_score)"
        )
        record["games"].append(
            {
                "name": t.spec.name,
                "n": t.n,
                "u_full": float(t.utility[-1]),
                "u_empty": float(t.utility[0]),
                "exact_shapley": phi.tolist(),
                "corrupted": list(t.spec.corrupted),
                "group_sizes": t.group_sizes.tolist(),
                "description": t.description,
                "file": str(t.path.relative_to(ROOT)),
                "table_kib": t.path.stat().st_size / 1024,
                "build_seconds": t.build_seconds,
            }
        )
    first = tables[0]
    record["checks"].append(
        f"{first.spec.name}: max |phi - exact_semivalue_bruteforce(game, shapley_weight)| = "
        f"{check_against_bruteforce(first):.1e}"
    )

    dw_rows, notes = run_dataworth(tables, factors, seeds, est_names)
    record["notes"] += notes
    add_run_metrics(dw_rows, exact)
    summary = summarise(dw_rows, "dataworth", "method")

    if args.no_shapiq:
        record["notes"].append("shapiq not run (--no-shapiq)")
        record["shapiq"] = {}
    else:
        sq = run_shapiq(
            tables, factors, seeds, args.shapiq_python, args.shapiq_approximators,
            [first.spec.name],
        )  # fmt: skip
        record["shapiq"] = sq
        if "error" in sq:
            record["notes"].append(f"shapiq failed: {sq['error']}")
        else:
            record["versions"]["shapiq"] = sq["versions"]["shapiq"]
            record["shapiq_python"] = sq["python"]
            add_run_metrics(sq["runs"], exact)
            summary += summarise(sq["runs"], "shapiq", "approximator")
            for game, chk in sq["exact_check"].items():
                phi = exact[game]
                base = chk["table"]
                shifted = chk["shifted_raw"]
                record["checks"].append(
                    f"{game}: max |phi - shapiq ExactComputer SV| = "
                    f"{np.max(np.abs(np.asarray(base['values']) - phi)):.1e}; shapiq's "
                    f"baseline_value = {base['baseline_value']:g}. The same table + 0.25 "
                    "(u(empty) = 0.25, not normalised): max |SV - phi| = "
                    f"{np.max(np.abs(np.asarray(shifted['values']) - phi)):.1e}, "
                    f"baseline_value = {shifted['baseline_value']:g}, sum of SV = "
                    f"{shifted['sum']:.4f} = u(N) - u(empty): shapiq values v(S) - v(empty) "
                    "and reports v(empty) as baseline_value, so both libraries compute the same "
                    "quantity whatever the empty set scores"
                )
    record["summary"] = summary
    runs = compact_runs(dw_rows, "dataworth", "method")
    failed = [{"library": "dataworth", **r} for r in dw_rows if "values" not in r]
    sq_runs = record["shapiq"].pop("runs", [])
    runs += compact_runs(sq_runs, "shapiq", "approximator")
    failed += [{"library": "shapiq", **r} for r in sq_runs if "values" not in r]
    record["runs"] = {"columns": RUN_COLUMNS, "rows": runs}
    record["failed_runs"] = failed
    record["dataworth_settings"] = {
        f"{r['game']} {r['method']} B={r['budget']}": r["settings"]
        for r in dw_rows
        if "settings" in r
    }
    record["over_budget_runs"] = int(sum(s["over_budget"] for s in summary))
    best: dict[str, Any] = {}
    for g in record["games"]:
        for f in factors:
            cell: dict[str, Any] = {}
            for lib in ("shapiq", "dataworth"):
                cands = [
                    s
                    for s in summary
                    if s["game"] == g["name"] and s["budget_factor"] == f
                    and s["library"] == lib and np.isfinite(s["rel_mse"])
                ]  # fmt: skip
                if cands:
                    b = min(cands, key=lambda s: s["rel_mse"])
                    cell[lib] = {"method": b["method"], "rel_mse": b["rel_mse"]}
            if "shapiq" in cell and "dataworth" in cell:
                cell["ratio"] = cell["dataworth"]["rel_mse"] / cell["shapiq"]["rel_mse"]
            best[f"{g['name']}|{f}"] = cell
    record["best"] = best
    record["seconds"] = time.perf_counter() - started
    json_path = out.with_suffix(".json")
    json_path.write_text(dump_json(record))
    out.write_text(render(json.loads(json_path.read_text()), table_stem(out)))
    print(f"wrote {out} and {json_path} ({record['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
