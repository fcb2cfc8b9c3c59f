"""Shapley estimators on real utilities, at equal wall time (issue 14, part 5, "Real utilities").

Usage::

    python benchmarks/estimators_real.py --quick     # 200 rows, 1 seed, short times (~2 min)
    python benchmarks/estimators_real.py             # 200 and 1,000 rows, 3 seeds (~11 min)
    python benchmarks/estimators_real.py --render benchmarks/estimators_real.json  # JSON -> md

Data: breast_cancer, 200 training / 200 valuation rows (stratified, seed 0), and, since
breast_cancer has only 569 rows, ``make_classification(n_samples=1500, n_features=20,
random_state=0)`` split 1,000 / 500 (stratified, seed 0); features standardised with the
training rows' statistics. 10% of the training labels are flipped (rows drawn with
``numpy.random.default_rng(0)``; the same rows for every method and seed). Model
``LogisticRegression(max_iter=1000)``, accuracy on the valuation rows, through ONE dataworth
utility per dataset (``dataworth.api.make_utility``; batched by default) shared by every run.

Per (rows, method, wall time T, seed) a run with ``budget=None, stop=MaxTime(T)``: the
estimators of ``get_method("shapley")`` and the classic ``tmc-shapley``,
``permutation-shapley`` and ``banzhaf``. Reported: noisy-label detection AUROC
``roc_auc_score(flipped, -values)`` (mean over seeds), the Spearman correlation between the
values of two seeds (mean over the pairs of seeds), utility evaluations and wall seconds.
A second table: ``stop=RankStable(0.9) | MaxTime(cap)``, seed 0, the seconds and evaluations
until two independent halves of the samples rank the points with Spearman >= 0.9.

Peers (pyDVL 0.10 and OpenDataVal 1.3 TMC, adapters ``lib_pydvl.py`` / ``lib_opendataval.py``)
run in the benchmark environment (``benchmarks/setup.sh``, ``.venv-bench``) in a subprocess of
this script (``--peers-only``), on the same arrays: timed runs of 1, 4, 16, ... permutations
(until one takes a quarter of T) set, by linear extrapolation, the number of permutations (at
least 1) that fills the longest wall time T of the dataset; the wall time each run then took is
reported (3 seeds, like dataworth). When that
interpreter is missing or the peer does not import, the table says "peer not installed here".
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
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
from common import (  # noqa: E402
    Budgets,
    Split,
    limit_threads,
    record_lines,
    run_record,
    spearman,
)

DEFAULT_PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
FLIP_FRACTION = 0.10
#: Estimators of ``get_method("shapley")`` compared (all of dataworth.estimators.ESTIMATORS).
SHAPLEY_ESTIMATORS = [
    "regression-msr",
    "stratified-svarm",
    "msr",
    "kernel-shap",
    "leverage-shap",
    "unbiased-kernel-shap",
    "stratified",
    "permutation",
]
#: dataworth's classic Monte Carlo methods (their own defaults, e.g. TMC tolerance 0.01).
CLASSIC = ["tmc-shapley", "permutation-shapley", "banzhaf"]
#: Methods of the RankStable table (Shapley estimators and the permutation methods).
RANKSTABLE_METHODS = [*SHAPLEY_ESTIMATORS, "tmc-shapley", "permutation-shapley"]

#: rows -> wall times (s) of the full run and of --quick; RankStable caps.
FULL_TIMES = {200: [2.0, 6.0], 1000: [6.0]}
QUICK_TIMES = {200: [1.0, 3.0]}
FULL_RANK_CAP = {200: 6.0}
QUICK_RANK_CAP = {200: 3.0}


# --------------------------------------------------------------------------- data
def make_split(rows: int) -> tuple[Split, np.ndarray]:
    """The training/valuation arrays (training labels with 10% flipped) and the flip mask."""
    from sklearn.datasets import load_breast_cancer, make_classification
    from sklearn.model_selection import train_test_split

    if rows <= 369:
        X, y = load_breast_cancer(return_X_y=True)
        n_valid = 200
        what = f"breast_cancer, {rows} training / {n_valid} valuation rows"
    else:
        n_valid = rows // 2
        X, y = make_classification(n_samples=rows + n_valid, n_features=20, random_state=0)
        what = (
            f"make_classification(n_samples={rows + n_valid}, n_features=20, random_state=0), "
            f"{rows:,} training / {n_valid} valuation rows"
        )
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, train_size=rows, test_size=n_valid, stratify=y, random_state=0
    )
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0
    flipped = np.zeros(rows, dtype=bool)
    flipped[np.random.default_rng(0).choice(rows, int(round(FLIP_FRACTION * rows)), False)] = True
    y_noisy = y_tr.astype(np.int64).copy()
    y_noisy[flipped] = 1 - y_noisy[flipped]
    split = Split(
        name=f"{rows}",
        X_train=np.ascontiguousarray((X_tr - mean) / std),
        y_train=y_noisy,
        X_valid=np.ascontiguousarray((X_va - mean) / std),
        y_valid=y_va.astype(np.int64),
        description=(
            f"{what} (stratified, seed 0), standardised with training statistics; "
            f"{int(flipped.sum())} training labels flipped (default_rng(0))"
        ),
    )
    return split, flipped


def auroc(flipped: np.ndarray, values: np.ndarray) -> float:
    """AUROC of flagging flipped rows by low value (NaN values ranked as 0)."""
    from sklearn.metrics import roc_auc_score

    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    return float(roc_auc_score(flipped, -v))


# --------------------------------------------------------------------------- dataworth
def make_counted_utility(split: Split) -> tuple[Any, list[int]]:
    """ONE dataworth utility for the split, counting the subsets it scores."""
    from lib_dataworth import _count_evaluations
    from sklearn.linear_model import LogisticRegression

    from dataworth import Dataset
    from dataworth.api import make_utility

    utility = make_utility(
        Dataset.from_arrays(split.X_train, split.y_train),
        Dataset.from_arrays(split.X_valid, split.y_valid),
        model=LogisticRegression(max_iter=1000),
    )
    return utility, _count_evaluations(utility)


def valuation_for(method: str, stop: Any, seed: int) -> Any:
    from dataworth.methods import get_method

    if method in CLASSIC:
        return get_method(method)(budget=None, stop=stop, random_state=seed)
    return get_method("shapley")(budget=None, stop=stop, estimator=method, random_state=seed)


def run_one(utility: Any, box: list[int], method: str, stop: Any, seed: int) -> dict[str, Any]:
    """One run; values, wall seconds, evaluations (counted), samples and the stopping rule."""
    before = box[0]
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = valuation_for(method, stop, seed).fit(utility).result_
    except Exception as exc:  # a failing estimator is reported, not fatal
        return {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=3),
            "seconds": time.perf_counter() - start,
        }
    seconds = time.perf_counter() - start
    md = result.metadata
    return {
        "values": np.asarray(result.values, dtype=np.float64),
        "seconds": seconds,
        "metadata_seconds": md.get("seconds"),
        "evaluations": box[0] - before,
        "samples": md.get("n_updates"),
        "stopped_by": str(md.get("stopped_by")),
    }


# --------------------------------------------------------------------------- peers
def peers_main(spec_path: Path, out_path: Path) -> int:
    """In the benchmark environment: TMC of pyDVL and OpenDataVal at the asked wall time."""
    spec = json.loads(spec_path.read_text())
    limit_threads(1)
    import lib_opendataval
    import lib_pydvl

    out: dict[str, Any] = {"versions": {}, "runs": [], "unavailable": {}}
    libs = {"pyDVL": lib_pydvl, "OpenDataVal": lib_opendataval}
    for name, lib in libs.items():
        reason = lib.unavailable_reason()
        if reason is not None:
            out["unavailable"][name] = reason
        else:
            out["versions"][name] = lib.version()
    if "OpenDataVal" in out["versions"]:
        out["opendataval_import_note"] = lib_opendataval.import_note()
        import torch

        torch.set_num_threads(1)
    limit_threads(1)  # again: torch and the peers bring their own pools
    for job in spec["jobs"]:
        split, flipped = make_split(job["rows"])
        for name, lib in libs.items():
            if name in out["unavailable"]:
                continue
            try:
                # Calibration: k permutations, k = 1, 4, 16, ... until the run takes at least
                # a quarter of the target time (a single truncated permutation can be much
                # shorter than the average one); the budget is then extrapolated linearly.
                k = 1
                while True:
                    cal = lib.run("tmc-shapley", split, _perms(k), 1, seed=job["seeds"][0])
                    out["runs"].append(
                        {
                            "rows": job["rows"], "library": name, "calibration": True,
                            "seconds": cal.seconds, "permutations": k,
                            "evaluations": cal.evaluations, "settings": cal.settings,
                        }
                    )  # fmt: skip
                    if float(cal.seconds) >= 0.25 * job["seconds"] or k >= 256:
                        break
                    k *= 4
                perms = max(1, int(round(job["seconds"] * k / float(cal.seconds))))
                for seed in job["seeds"]:
                    r = lib.run("tmc-shapley", split, _perms(perms), 1, seed=seed)
                    assert r.values is not None
                    out["runs"].append(
                        {
                            "rows": job["rows"], "library": name, "seed": seed,
                            "target_seconds": job["seconds"], "permutations": perms,
                            "seconds": r.seconds, "evaluations": r.evaluations,
                            "values": r.values.tolist(), "auroc": auroc(flipped, r.values),
                            "settings": r.settings,
                        }
                    )  # fmt: skip
                    print(
                        f"  {name} rows={job['rows']} seed={seed}: {perms} permutations, "
                        f"{r.seconds:.1f} s, AUROC {auroc(flipped, r.values):.3f}",
                        flush=True,
                    )
            except Exception as exc:
                out["runs"].append(
                    {"rows": job["rows"], "library": name, "error": f"{type(exc).__name__}: {exc}"}
                )
    out_path.write_text(json.dumps(out))
    return 0


def _perms(k: int) -> Budgets:
    return Budgets(permutations=k, subsets=1, bags=1, reference_factor=1)


def _coretype_env() -> dict[str, str]:
    """Environment of the peer subprocess: OPENBLAS_CORETYPE from this process's OpenBLAS.

    numpy 1.26's OpenBLAS (pyDVL needs numpy < 2) falls back to a slow generic kernel on this
    CPU; the kernel another OpenBLAS chose here is set for the subprocess (as run.py does).
    """
    env = dict(os.environ)
    if "OPENBLAS_CORETYPE" in env:
        return env
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    archs = [
        p.get("architecture")
        for p in threadpool_info()
        if p.get("internal_api") == "openblas"
        and p.get("architecture") not in (None, "", "Prescott")
    ]
    if archs:
        env["OPENBLAS_CORETYPE"] = str(archs[0])
    return env


def run_peers(python: Path, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    if not python.exists():
        return {"error": f"peer not installed here ({python} missing; bash benchmarks/setup.sh)"}
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps({"jobs": jobs}))
        proc = subprocess.run(
            [str(python), __file__, "--peers-only", str(spec), str(out)],
            env=_coretype_env(),
            cwd=ROOT,
            text=True,
            stdout=sys.stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            return {"error": f"peer subprocess failed: {tail[0]}"}
        result = json.loads(out.read_text())
        result["env_OPENBLAS_CORETYPE"] = _coretype_env().get("OPENBLAS_CORETYPE")
        return result


# --------------------------------------------------------------------------- summary
def summarise(runs: list[dict[str, Any]], flipped: dict[int, np.ndarray]) -> list[dict[str, Any]]:
    keys: list[tuple[int, str, str, float]] = []
    for r in runs:
        k = (r["rows"], r["library"], r["method"], r["T"])
        if k not in keys:
            keys.append(k)
    out = []
    for rows, lib, method, T in keys:
        group = [
            r for r in runs
            if (r["rows"], r["library"], r["method"], r["T"]) == (rows, lib, method, T)
        ]  # fmt: skip
        ok = [r for r in group if "values" in r]
        aucs = [auroc(flipped[rows], r["values"]) for r in ok]
        rhos = [
            spearman(np.asarray(a["values"]), np.asarray(b["values"]))
            for a, b in itertools.combinations(ok, 2)
        ]
        out.append(
            {
                "rows": rows,
                "library": lib,
                "method": method,
                "T": T,
                "n_runs": len(group),
                "n_ok": len(ok),
                "auroc": float(np.mean(aucs)) if aucs else math.nan,
                "auroc_min": float(np.min(aucs)) if aucs else math.nan,
                "auroc_max": float(np.max(aucs)) if aucs else math.nan,
                "seed_spearman": float(np.nanmean(rhos)) if rhos else math.nan,
                "evaluations": float(np.mean([r["evaluations"] for r in ok]))
                if ok and all(r.get("evaluations") is not None for r in ok)
                else None,
                "samples": float(np.mean([r["samples"] for r in ok]))
                if ok and all(r.get("samples") is not None for r in ok)
                else None,
                "seconds": float(np.mean([r["seconds"] for r in ok])) if ok else math.nan,
                "permutations": group[0].get("permutations"),
                "errors": sorted({r["error"] for r in group if "error" in r}),
            }
        )
    return out


def _f(x: Any, fmt: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, fmt)


def render(record: dict[str, Any]) -> str:
    """The markdown of a run; its tables are ``tables.py``'s, of the run's JSON (``json_name``:
    estimators_real.json or estimators_real-quick.json in benchmarks/)."""
    stem = "estimators_real-quick" if "quick" in record["json_name"] else "estimators_real"
    lines = [
        "# Shapley estimators on real utilities, at equal wall time",
        "",
        *record_lines(record),
        "",
        "Written by `benchmarks/estimators_real.py` from `" + record["json_name"] + "` (every "
        "run's values are in the JSON). One dataworth utility per dataset (`make_utility`, "
        f"`{record['utility_class']}`), `LogisticRegression(max_iter=1000)`, accuracy on the "
        "valuation rows; 10% of the training labels flipped. Every dataworth run: "
        "`budget=None, stop=MaxTime(T), random_state=seed` (the `shapley` estimators with "
        "`estimator=E`). **AUROC**: noisy-label detection, `roc_auc_score(flipped, -values)`, "
        "mean over seeds (min-max in brackets); **rho seeds**: Spearman correlation of two "
        "seeds' values, mean over pairs of seeds; **evals**: utility evaluations per run "
        "(subsets scored, counted at the utility; mean); **s**: wall seconds per run (mean; "
        "MaxTime overruns by at most one chunk, plus planning such as regression-msr's pilot).",
        "",
    ]
    for d in record["datasets"]:
        lines.append(f"* {d['rows']} rows: {d['description']}; u(N) = {d['u_full']:.3f}")
    if record.get("git_head"):
        changed = (
            ", ".join(record["src_changed"]) or "none"
            if "src_changed" in record
            else "not recorded"
        )
        lines.append(
            f"* git HEAD {record['git_head']}; files of src/ modified in the working tree "
            f"(others' work in progress, used as they were): {changed}"
        )
    lines += [""] + [f"* note: {n}" for n in record["notes"]]
    for d in record["datasets"]:
        rows = d["rows"]
        times = d["times"]
        lines += ["", f"## {rows} training rows, seeds {record['seeds']}", ""]
        lines.append(tables.block(f"{stem}.rows:{rows}", record))
        best = record["best"].get(str(rows), {})
        if best:
            lines += [""]
            for t in times:
                b = best.get(f"{t:g}")
                if b:
                    lines.append(
                        f"* best AUROC at T = {t:g} s: **{b['method']}** ({b['auroc']:.3f}); "
                        f"most reproducible (rho seeds): **{b['rho_method']}** "
                        f"({_f(b['rho'])})"
                    )
    rs = record.get("rankstable", [])
    if rs:
        lines += [
            "",
            "## Time to a split-half Spearman of 0.9 (`stop=RankStable(0.9) | MaxTime(cap)`, "
            "seed 0)",
            "",
            "`metadata['stopped_by']` is the repr of the whole rule, so whether RankStable fired "
            "is read from the rule object (its streak); split-half rho: the Spearman "
            "correlation of the two halves of the samples in the last round (RankStable's "
            "own statistic). AUROC of the values at stop.",
            "",
            tables.block(f"{stem}.rankstable", record),
        ]
    peers = record.get("peers", {})
    if peers.get("runs"):
        lines += ["", "## Peers", ""]
        for r in peers["runs"]:
            if r.get("calibration"):
                lines.append(
                    f"* {r['library']}, {r['rows']} rows: calibration run of "
                    f"{r['permutations']} permutation(s) took {r['seconds']:.2f} s "
                    f"({r['evaluations']} evaluations)"
                )
        settings = {r["library"]: r["settings"] for r in peers["runs"] if "settings" in r}
        for lib, s in settings.items():
            lines.append(f"* {lib} {peers['versions'].get(lib)}: `{s}`")
        if peers.get("opendataval_import_note"):
            lines.append(f"* OpenDataVal: {peers['opendataval_import_note']}")
        if peers.get("env_OPENBLAS_CORETYPE"):
            lines.append(
                f"* peer subprocess ran with OPENBLAS_CORETYPE="
                f"{peers['env_OPENBLAS_CORETYPE']} (numpy 1.26's OpenBLAS)"
            )
    lines.append("")
    return "\n".join(lines)


def dump_json(record: dict[str, Any]) -> str:
    def conv(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [conv(v) for v in x]
        if isinstance(x, np.ndarray):
            return [round(float(v), 7) for v in x]
        if isinstance(x, (np.floating, float)):
            return None if not math.isfinite(float(x)) else float(x)
        if isinstance(x, np.integer):
            return int(x)
        return x

    return json.dumps(conv(record), indent=1)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 rows, 1 seed, 1 s and 3 s")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 3, --quick 1)")
    parser.add_argument("--methods", help="comma-separated subset of the methods")
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER_PYTHON)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-rankstable", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown (JSON next to it)")
    parser.add_argument("--render", type=Path, help="only re-render this JSON to markdown")
    parser.add_argument("--peers-only", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.peers_only:
        return peers_main(*args.peers_only)
    if args.render:
        record = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render(record))
        return 0

    started = time.perf_counter()
    limit_threads(1)
    times = QUICK_TIMES if args.quick else FULL_TIMES
    caps = QUICK_RANK_CAP if args.quick else FULL_RANK_CAP
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    methods = [*SHAPLEY_ESTIMATORS, *CLASSIC]
    if args.methods:
        methods = [m for m in args.methods.split(",") if m]
    out = args.out or HERE / ("estimators_real-quick.md" if args.quick else "estimators_real.md")
    record: dict[str, Any] = run_record("estimators_real.py")
    record.update({"seeds": seeds, "notes": [], "json_name": out.with_suffix(".json").name})
    with contextlib.suppress(OSError):
        record["git_head"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        record["src_changed"] = [ln[3:] for ln in status.splitlines() if ln[3:].endswith(".py")]

    runs: list[dict[str, Any]] = []
    flipped_of: dict[int, np.ndarray] = {}
    record["datasets"] = []
    record["rankstable"] = []
    from dataworth.engine.stopping import MaxTime, RankStable

    for rows, ts in times.items():
        split, flipped = make_split(rows)
        flipped_of[rows] = flipped
        utility, box = make_counted_utility(split)
        record["utility_class"] = type(utility).__name__
        u_full = float(utility(np.arange(rows)))
        record["datasets"].append(
            {
                "rows": rows,
                "description": split.description,
                "times": ts,
                "flipped": np.flatnonzero(flipped).tolist(),
                "u_full": u_full,
            }
        )
        for T in ts:
            for method in methods:
                for seed in seeds:
                    r = run_one(utility, box, method, MaxTime(T), seed)
                    r.update(
                        {
                            "rows": rows,
                            "library": "dataworth",
                            "method": method,
                            "T": T,
                            "seed": seed,
                        }
                    )
                    runs.append(r)
                    msg = (
                        f"AUROC {auroc(flipped, r['values']):.3f}, {r['evaluations']:,} evals"
                        if "values" in r
                        else f"FAILED {r['error']}"
                    )
                    print(
                        f"rows={rows} T={T:g} {method} seed={seed}: {r['seconds']:.1f} s, {msg}",
                        flush=True,
                    )
        if rows in caps and not args.no_rankstable:
            cap = caps[rows]
            for method in [m for m in RANKSTABLE_METHODS if m in methods]:
                rule = RankStable(0.9)
                r = run_one(utility, box, method, rule | MaxTime(cap), 0)
                # stopped_by is the repr of the whole rule; the RankStable object says whether it
                # fired (its streak) and the split-half Spearman of the last round.
                r.update(
                    {
                        "rows": rows,
                        "method": method,
                        "cap": cap,
                        "reached": rule._streak >= rule.patience,
                        "split_half_rho": rule._last,
                    }
                )
                if "values" in r:
                    r["auroc"] = auroc(flipped, r["values"])
                    del r["values"]
                record["rankstable"].append(r)
                print(
                    f"rows={rows} RankStable {method}: reached={r.get('reached')}, split-half "
                    f"rho {r.get('split_half_rho')}, {r.get('metadata_seconds')} s",
                    flush=True,
                )

    if args.no_peers:
        record["notes"].append("peers not run (--no-peers)")
        record["peers"] = {}
    else:
        jobs = [{"rows": rows, "seconds": max(ts), "seeds": seeds} for rows, ts in times.items()]
        peers = run_peers(args.peer_python, jobs)
        record["peers"] = peers
        record["peers_missing"] = {}
        if "error" in peers:
            for lib in ("pyDVL", "OpenDataVal"):
                record["peers_missing"][lib] = peers["error"]
        else:
            for lib, why in peers.get("unavailable", {}).items():
                record["peers_missing"][lib] = f"peer not installed here ({why[:80]})"
            record["versions"].update(peers.get("versions", {}))
            for p in peers.get("runs", []):
                if p.get("calibration"):
                    continue
                entry = {
                    "rows": p["rows"], "library": p["library"], "method": "tmc (peer)",
                    "T": next(max(ts) for r2, ts in times.items() if r2 == p["rows"]),
                    "seed": p.get("seed"),
                }  # fmt: skip
                if "error" in p:
                    entry["error"] = p["error"]
                else:
                    entry.update(
                        {
                            "values": np.asarray(p["values"]), "seconds": p["seconds"],
                            "evaluations": p["evaluations"], "samples": p["permutations"],
                            "permutations": p["permutations"],
                        }
                    )  # fmt: skip
                runs.append(entry)
            peers.pop("runs_values", None)
            for p in peers.get("runs", []):
                p.pop("values", None)

    summary = summarise(runs, flipped_of)
    record["summary"] = summary
    best: dict[str, dict[str, Any]] = {}
    for rows, ts in times.items():
        for T in ts:
            cands = [
                s for s in summary
                if s["rows"] == rows and s["T"] == T and s["library"] == "dataworth"
                and math.isfinite(s["auroc"])
            ]  # fmt: skip
            if not cands:
                continue
            b = max(cands, key=lambda s: s["auroc"])
            rho_c = [s for s in cands if math.isfinite(s["seed_spearman"])]
            cell = {"method": b["method"], "auroc": b["auroc"]}
            if rho_c:
                rb = max(rho_c, key=lambda s: s["seed_spearman"])
                cell.update({"rho_method": rb["method"], "rho": rb["seed_spearman"]})
            else:
                cell.update({"rho_method": "-", "rho": math.nan})
            best.setdefault(str(rows), {})[f"{T:g}"] = cell
    record["best"] = best
    record["runs"] = [{k: v for k, v in r.items() if k != "traceback"} for r in runs]
    record["seconds"] = time.perf_counter() - started
    json_path = out.with_suffix(".json")
    json_path.write_text(dump_json(record))
    out.write_text(render(json.loads(json_path.read_text())))
    print(f"wrote {out} and {json_path} ({record['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
