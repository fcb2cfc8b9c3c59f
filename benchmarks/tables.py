"""Render every table of README.md, docs/*.md and benchmarks/*.md from the benchmarks' JSON.

A rendered table sits between two markers, and only this script writes what is between them::

    <!-- table:NAME -->
    | ... |
    <!-- /table:NAME -->

``NAME`` is a key of :data:`TABLES` (``FAMILY``), optionally followed by arguments
(``FAMILY:ARG:ARG``, e.g. ``prune.compare:digits:0.1``); :data:`TABLES` maps each family to the
JSON file(s) under ``benchmarks/`` it is rendered from and its render function (JSON in,
markdown out, nothing else read). A marker whose family is not registered is an error.

    python benchmarks/tables.py            # rewrite every marked table in place
    python benchmarks/tables.py --check    # exit 1 (and name them) if any table is stale
    python benchmarks/tables.py --list     # every family and its JSON

The benchmark scripts write their JSON, then their markdown from that JSON, with its tables
from the same render functions between markers (see :func:`block`), so a fresh run and
``tables.py`` agree; a run with ``--out`` elsewhere writes markers that still name the
registered JSON, so keep such output out of benchmarks/. Tables in README.md and docs/ change
only here: run ``python benchmarks/tables.py`` after a benchmark.
``tests/test_rendered_tables.py`` checks that every marked table equals its rendering
and that every other markdown table with a measured-looking number is on its allowlist.

Render functions read only their JSON (numpy for means; scipy for a t quantile), never
dataworth or a benchmark peer, so the check runs in the project's environment.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"

#: ``<!-- table:NAME -->`` ... ``<!-- /table:NAME -->`` (the body may be empty).
MARKER = re.compile(
    r"(?P<open><!-- table:(?P<name>[^\s>]+) -->\n)"
    r"(?P<body>(?:.*?\n)??)"
    r"(?P<close><!-- /table:(?P=name) -->)",
    re.S,
)


@dataclass(frozen=True)
class Table:
    """A family of rendered tables: its JSON source(s) under benchmarks/ and its renderer.

    ``render(data, *args)`` gets the loaded JSON (a tuple of them when ``source`` is a tuple)
    and the marker's arguments (strings), and returns the markdown table without a trailing
    newline.
    """

    source: str | tuple[str, ...]
    render: Callable[..., str]

    def load(self, base: Path = BENCH) -> Any:
        if isinstance(self.source, str):
            return _load(base / self.source)
        return tuple(_load(base / s) for s in self.source)


_CACHE: dict[tuple[Path, int], Any] = {}


def _load(path: Path) -> Any:
    """The JSON at ``path`` (read again when the file changes)."""
    key = (path, path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = json.loads(path.read_text(encoding="utf-8"))
    return _CACHE[key]


# ------------------------------------------------------------------------------------ helpers
def table(head: Sequence[str], rows: Iterable[Sequence[str]], align: Sequence[str] = ()) -> str:
    """A markdown table; ``align`` holds one separator per column (default ``---``)."""
    sep = list(align) or ["---"] * len(head)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def geo(values: Sequence[float]) -> float:
    """Geometric mean (values floored at 1e-300)."""
    return math.exp(sum(math.log(max(v, 1e-300)) for v in values) / len(values))


def f3(x: Any, fmt: str = ".3f") -> str:
    """``x`` formatted, ``-`` for None or a non-finite number."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, fmt)


def mean_sd(values: Sequence[float]) -> str:
    """``mean ± sd`` (population sd, NaN ignored), 3 decimals."""
    a = np.asarray(values, dtype=float)
    return f"{np.nanmean(a):.3f} ± {np.nanstd(a):.3f}"


def seconds(x: float | None) -> str:
    """Seconds as the speed benchmarks print them: 3 decimals below 10 s, else 1."""
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


# ------------------------------------------------------------------- estimators.py (exact games)
def _rel(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


def _rel3(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.2e}" if x < 0.01 else f"{x:.3f}"


def estimators_summary(data: dict[str, Any]) -> str:
    """Geometric mean over the games of the relative MSE, per method and budget (README)."""
    factors = data["budget_factors"]
    games = [g["name"] for g in data["games"]]
    cells: dict[tuple[str, str], dict[int, list[float]]] = {}
    for s in data["summary"]:
        if s.get("rel_mse") is None or s["game"] not in games:
            continue
        cells.setdefault((s["library"], s["method"]), {}).setdefault(s["budget_factor"], [])
        cells[(s["library"], s["method"])][s["budget_factor"]].append(s["rel_mse"])
    rows = sorted(cells, key=lambda k: geo(cells[k].get(factors[-1], [1.0])))
    body = []
    for lib, method in rows:
        got = cells[(lib, method)]
        vals = [_rel(geo(got[f])) if len(got.get(f, [])) == len(games) else "-" for f in factors]
        body.append([lib, method, *vals])
    return table(["library", "method", *(f"{f}n" for f in factors)], body)


def estimators_games(data: dict[str, Any]) -> str:
    """The exact games: size, u(N), range of the exact values, table file."""
    body = []
    for g in data["games"]:
        phi = np.asarray(g["exact_shapley"])
        body.append(
            [
                g["name"],
                str(g["n"]),
                f"{g['u_full']:.3f}",
                f"{phi.min():.3f} / {phi.max():.3f}",
                f"{g['file']} ({g['table_kib']:.0f} KiB, built in {g['build_seconds']:.0f} s)",
                g["description"],
            ]
        )
    return table(["game", "n", "u(N)", "exact values (min / max)", "table", "what"], body)


def estimators_best(data: dict[str, Any]) -> str:
    """Per game and budget: the best method of each library and the ratio of their errors."""
    factors = data["budget_factors"]
    head = ["game"]
    for f in factors:
        head += [f"{f}n: best shapiq", f"{f}n: best dataworth", f"{f}n: ratio"]
    body = []
    for g in data["games"]:
        cells = [g["name"]]
        for f in factors:
            b = data["best"].get(f"{g['name']}|{f}", {})
            sq, dw = b.get("shapiq"), b.get("dataworth")
            cells.append(f"{sq['method']} {_rel3(sq['rel_mse'])}" if sq else "-")
            cells.append(f"{dw['method']} {_rel3(dw['rel_mse'])}" if dw else "-")
            cells.append(f"{b['ratio']:.1f}x" if b.get("ratio") is not None else "-")
        body.append(cells)
    return table(head, body)


#: Each dataworth estimator and its shapiq twin (``msr`` has none: SVARM is the closest).
COUNTERPARTS = {
    "shapley/permutation": "PermutationSamplingSV",
    "permutation-shapley": "PermutationSamplingSV",
    "shapley/msr": "SVARM",
    "shapley/stratified-svarm": "SVARM",
    "shapley/stratified": "StratifiedSamplingSV",
    "shapley/regression-msr": "RegressionMSR",
    "shapley/kernel-shap": "KernelSHAP",
    "shapley/unbiased-kernel-shap": "UnbiasedKernelSHAP",
    "shapley/leverage-shap": "LeverageSHAP",
}


def estimators_counterparts(data: dict[str, Any]) -> str:
    """Per pair and budget: geometric mean over games of rel. MSE dataworth / shapiq."""
    factors = data["budget_factors"]
    by_key = {
        (s["library"], s["game"], s["method"], s["budget_factor"]): s for s in data["summary"]
    }
    games = [g["name"] for g in data["games"]]
    body = []
    for dw, sq in COUNTERPARTS.items():
        cells, any_ok = [dw, sq], False
        for f in factors:
            ratios = []
            for g in games:
                a, b = by_key.get(("dataworth", g, dw, f)), by_key.get(("shapiq", g, sq, f))
                if a and b and a["rel_mse"] > 0 and b["rel_mse"] > 0:
                    ratios.append(a["rel_mse"] / b["rel_mse"])
            if ratios and all(np.isfinite(ratios)):
                any_ok = True
                g_ = math.exp(float(np.mean(np.log(ratios))))
                cells.append(f"{g_:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
            else:
                cells.append("-")
        if any_ok:
            body.append(cells)
    head = ["dataworth", "shapiq", *(f"{f}n: ratio (range over games)" for f in factors)]
    return table(head, body)


def estimators_game(data: dict[str, Any], game: str) -> str:
    """Every method on one game: rel. MSE, Spearman, seconds and evaluations per budget."""
    factors = data["budget_factors"]
    g = next(x for x in data["games"] if x["name"] == game)
    head = ["library", "method"]
    for b in (f * g["n"] for f in factors):
        head += [f"rel. MSE B={b}", "rho", "s", "evals"]
    entries = [s for s in data["summary"] if s["game"] == game]
    order = list(dict.fromkeys((s["library"], s["method"]) for s in entries))
    body = []
    for lib, method in order:
        cells = [lib, method]
        for f in factors:
            s = next(
                (
                    e
                    for e in entries
                    if e["library"] == lib and e["method"] == method and e["budget_factor"] == f
                ),
                None,
            )
            if s is None or s["n_ok"] == 0:
                err = s["errors"][0][:60] if s and s["errors"] else "not run"
                cells += [f"failed: {err}", "-", "-", "-"]
                continue
            mark = "" if s["n_ok"] == s["n_runs"] else f" ({s['n_ok']}/{s['n_runs']} ok)"
            cells += [
                _rel3(s["rel_mse"]) + mark,
                f"{s['spearman']:.3f}",
                f"{s['seconds']:.3f}",
                str(s["max_evaluations"]),
            ]
        body.append(cells)
    return table(head, body)


# ------------------------------------------------------------ estimators_real.py (wall time)
def estimators_real_summary(data: dict[str, Any]) -> str:
    """Noisy-label AUROC (seed-to-seed Spearman) per method and (rows, seconds) (README)."""
    settings = sorted({(s["rows"], s["T"]) for s in data["summary"]})
    cells = {(s["library"], s["method"], s["rows"], s["T"]): s for s in data["summary"]}

    def last_auroc(method: tuple[str, str]) -> float:
        cell = cells.get((*method, *settings[-1])) or {}
        return float(cell.get("auroc") or 0.0)

    methods = sorted({(s["library"], s["method"]) for s in data["summary"]}, key=last_auroc)
    methods.reverse()
    body = []
    for lib, method in methods:
        vals = []
        for r, t in settings:
            s = cells.get((lib, method, r, t))
            if s is None or s.get("auroc") is None:
                vals.append("-")
            else:
                rho = s.get("seed_spearman")
                vals.append(f"{s['auroc']:.3f}" + ("" if rho is None else f" ({rho:.2f})"))
        body.append([lib, method, *vals])
    return table(["library", "method", *(f"{r} rows, {t:g} s" for r, t in settings)], body)


def estimators_real_rows(data: dict[str, Any], rows: str) -> str:
    """Every method on one dataset: AUROC [range], seed-to-seed rho, evaluations, seconds."""
    n = int(rows)
    d = next(x for x in data["datasets"] if x["rows"] == n)
    times = d["times"]
    summary = data["summary"]
    head = ["library", "method"]
    for t in times:
        head += [f"AUROC T={t:g}s", "rho seeds", "evals", "s"]
    methods = list(dict.fromkeys((s["library"], s["method"]) for s in summary if s["rows"] == n))
    body = []
    for lib, method in methods:
        cells = [lib, method]
        for t in times:
            s = next(
                (
                    e
                    for e in summary
                    if e["rows"] == n
                    and e["library"] == lib
                    and e["method"] == method
                    and e["T"] == t
                ),
                None,
            )
            if s is None:
                cells += ["-", "-", "-", "-"]
                continue
            if s["n_ok"] == 0:
                cells += [f"failed: {(s['errors'] or ['?'])[0][:60]}", "-", "-", "-"]
                continue
            mark = "" if s["n_ok"] == s["n_runs"] else f" ({s['n_ok']}/{s['n_runs']})"
            rng = f" [{s['auroc_min']:.2f}-{s['auroc_max']:.2f}]" if s["n_ok"] > 1 else ""
            ev = f3(s["evaluations"], ",.0f")
            if s.get("permutations"):
                ev = f"{ev} ({s['permutations']} perms)"
            cells += [
                f"**{s['auroc']:.3f}**{rng}{mark}",
                f3(s["seed_spearman"]),
                ev,
                f3(s["seconds"], ".1f"),
            ]
        body.append(cells)
    for lib, why in data.get("peers_missing", {}).items():
        body.append([lib, "tmc (peer)", why, "-", "-", "-"] + ["-"] * 4 * (len(times) - 1))
    return table(head, body)


def estimators_real_rankstable(data: dict[str, Any]) -> str:
    """Whether ``RankStable(0.9)`` stopped each method before the cap, and where it got."""
    body = []
    for r in data.get("rankstable", []):
        if "error" in r:
            body.append(
                [str(r["rows"]), r["method"], f"failed: {r['error'][:80]}", "-", "-", "-", "-", "-"]
            )
            continue
        reached = "yes" if r["reached"] else f"not reached in {r['cap']:g} s"
        body.append(
            [
                str(r["rows"]),
                r["method"],
                reached,
                f3(r["split_half_rho"]),
                f3(r["metadata_seconds"], ".2f"),
                f"{r['evaluations']:,}",
                f3(r["samples"], ","),
                f"{r['auroc']:.3f}",
            ]
        )
    head = [
        "rows",
        "method",
        "reached",
        "split-half rho at stop",
        "s (metadata)",
        "evals",
        "samples",
        "AUROC",
    ]
    return table(head, body)


def estimators_real_best(data: dict[str, Any]) -> str:
    """Per (rows, T): the three best dataworth methods, regression-msr, and the peers' TMC."""
    settings = sorted({(s["rows"], s["T"]) for s in data["summary"]})
    body = []
    for rows, t in settings:
        here = [
            s
            for s in data["summary"]
            if s["rows"] == rows and s["T"] == t and s.get("auroc") is not None
        ]
        ours = sorted((s for s in here if s["library"] == "dataworth"), key=lambda s: -s["auroc"])
        top = [f"{s['method']} {s['auroc']:.3f}" for s in ours[:3]]
        msr = next((s for s in ours if s["method"] == "regression-msr"), None)
        peers = [
            f"{s['library']} {s['auroc']:.3f} ({s['seconds']:.1f} s)"
            for s in sorted(here, key=lambda s: -s["auroc"])
            if s["library"] != "dataworth"
        ]
        body.append(
            [
                f"{rows:,}, {t:g} s",
                *(top + ["-"] * (3 - len(top))),
                "-" if msr is None else f"{msr['auroc']:.3f} ({msr['seconds']:.1f} s)",
                ", ".join(peers) or "-",
            ]
        )
    head = [
        "rows, T",
        "best AUROC (dataworth)",
        "second",
        "third",
        "regression-msr (s)",
        "peers' TMC (s)",
    ]
    return table(head, body)


# ---------------------------------------------------------------------------- semivalues.py
def semivalues_summary(data: dict[str, Any]) -> str:
    """Geometric mean relative MSE over games, and today's estimator / this one (README)."""
    rows = data["rows"]
    factors = sorted({r["factor"] for r in rows})
    body = []
    for sv in dict.fromkeys(r["semivalue"] for r in rows):
        labels = list(dict.fromkeys(r["estimator"] for r in rows if r["semivalue"] == sv))
        today = {
            f: geo(
                [
                    r["rel_mse"]
                    for r in rows
                    if r["semivalue"] == sv and r["factor"] == f and r["estimator"] == labels[0]
                ]
            )
            for f in factors
        }
        for label in labels:
            vals = []
            for f in factors:
                g = geo(
                    [
                        r["rel_mse"]
                        for r in rows
                        if r["semivalue"] == sv and r["factor"] == f and r["estimator"] == label
                    ]
                )
                vals.append(f"{_rel(g)} ({today[f] / g:.0f}x)")
            body.append([sv, label, *vals])
    head = ["semivalue", "estimator", *(f"{f}n (today / this)" for f in factors)]
    return table(head, body)


def semivalues_table(data: dict[str, Any], semivalue: str, factor: str) -> str:
    """One semivalue at one budget: each estimator's rel. MSE per game, and today / this."""
    rows = data["rows"]
    games = sorted(
        {r["game"] for r in rows}, key=lambda g: next(r["n"] for r in rows if r["game"] == g)
    )
    sub = [r for r in rows if r["semivalue"] == semivalue and r["factor"] == int(factor)]
    body = []
    today = None
    for label in dict.fromkeys(r["estimator"] for r in sub):
        mine = {r["game"]: r["rel_mse"] for r in sub if r["estimator"] == label}
        errs = [mine[g] for g in games]
        g_ = float(np.exp(np.mean(np.log(np.maximum(errs, 1e-300)))))
        today = g_ if today is None else today
        body.append([label, *(f"{e:.3g}" for e in errs), f"{g_:.3g}", f"{today / g_:.1f}x"])
    return table(["estimator", *games, "geometric mean", "today / this"], body)


# ------------------------------------------------------------------- run.py (speed vs peers)
def _libraries(data: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(r["library"] for r in data["rows"]))


def results_summary(data: dict[str, Any]) -> str:
    """Per task and n_jobs: each library's seconds, peer / dataworth, and Spearman rho."""
    labels = _libraries(data)
    peers = [lab for lab in labels if lab != "dataworth"]
    head = ["task", "n_jobs", "dataworth s"]
    for p in peers:
        head += [f"{p} s", f"{p} / dataworth"]
    head += [f"ρ {lab}" for lab in labels]
    body = []
    for task, jobs in dict.fromkeys((r["task"], r["n_jobs"]) for r in data["rows"]):
        by = {r["library"]: r for r in data["rows"] if r["task"] == task and r["n_jobs"] == jobs}

        def cell(lab: str, what: str, by: dict[str, Any] = by) -> str:
            r = by.get(lab)
            if r is None:
                return "-"
            if r["status"] != "ok":
                return str(r["status"])
            if what == "s":
                return seconds(r["seconds"])
            if what == "ratio":
                return "-" if r["ratio"] is None else f"{r['ratio']:.1f}x"
            return f3(r["spearman"])

        cells = [task, str(jobs), cell("dataworth", "s")]
        for p in peers:
            cells += [cell(p, "s"), cell(p, "ratio")]
        body.append(cells + [cell(lab, "rho") for lab in labels])
    return table(head, body)


def results_details(data: dict[str, Any]) -> str:
    """Every row of a run: seconds, ratio, rho, max |diff|, samples, evaluations, settings."""
    body = []
    for r in data["rows"]:
        extra = r["error"] if r["status"] != "ok" else r["note"]
        body.append(
            [
                r["task"],
                f"{r['library']} {r['version'] or ''}".strip(),
                str(r["n_jobs"]),
                seconds(r["seconds"]) if r["status"] == "ok" else str(r["status"]),
                "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
                f3(r["spearman"]),
                "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.2g}",
                "-" if r["samples"] is None else f"{r['samples']:,}",
                "-" if r["evaluations"] is None else f"{r['evaluations']:,}",
                r["settings"].replace("|", "/"),
                (extra or "").replace("|", "/"),
            ]
        )
    head = [
        "task",
        "library",
        "n_jobs",
        "seconds",
        "ratio",
        "ρ vs ref.",
        "max abs diff",
        "samples",
        "evaluations",
        "settings",
        "notes / error",
    ]
    return table(head, body)


def results_references(data: dict[str, Any]) -> str:
    """The reference of each task and how long it took."""
    body = [[t, r["description"], seconds(r["seconds"])] for t, r in data["references"].items()]
    return table(["task", "reference", "seconds"], body)


# ------------------------------------------------------------------------------------ scale.py
#: What scale.py runs for each method (the ``settings`` column).
SCALE_SETTINGS = {
    "knn-shapley": "K=5, 1,000 valuation rows",
    "data-oob": "GaussianNB, 50 bags",
    "tmc-shapley": "LogisticRegression(max_iter=1000), 2 permutations, tolerance 0.01",
    "permutation-shapley": "LogisticRegression(max_iter=1000), 2 permutations, no truncation",
}


def scale_table(data: dict[str, Any]) -> str:
    """Seconds and peak memory of dataworth alone as the training rows grow."""
    body = []
    for r in data["rows"]:
        what = [r["method"], SCALE_SETTINGS[r["method"]], f"{r['n_train']:,}"]
        if "error" in r:
            body.append([*what, f"failed: {r['error']}", "", "", "", "", "", "", ""])
            continue
        body.append(
            [
                *what,
                f"{r['seconds']:.2f}",
                f"{r['utility_seconds']:.2f}",
                f"{r['peak_rss_mib']:.0f}",
                f"{r['baseline_rss_mib']:.0f}",
                f"{r['extra_rss_mib']:.0f}",
                r["utility"],
                "yes" if r["torch_imported"] else "no",
                "-" if r["evaluations"] is None else format(r["evaluations"], ","),
            ]
        )
    head = [
        "method",
        "settings",
        "training rows",
        "seconds",
        "of which make_utility",
        "peak RSS MiB",
        "baseline MiB",
        "extra MiB",
        "utility",
        "torch loaded",
        "evaluations",
    ]
    return table(head, body)


def knn_large_table(data: dict[str, Any]) -> str:
    """knn-shapley on one large problem (knn_large.py): seconds and peak RSS."""
    body = [
        [
            f"{data['train_rows']:,}",
            f"{data['valid_rows']:,}",
            str(data["k"]),
            f"{data['seconds']:.1f}",
            f"{data['peak_rss_mib']:.0f}",
            f"{data['load_average_at_start']:.1f}",
            data["date"],
        ]
    ]
    head = [
        "training rows",
        "valuation rows",
        "K",
        "seconds (one core)",
        "peak RSS MiB",
        "load average at start",
        "run",
    ]
    return table(head, body)


# ---------------------------------------------------------------------------------- cluster.py
def cluster_table(data: dict[str, Any]) -> str:
    """Every (backend, workers, workload) of cluster.py."""
    seq = {
        (r["method"], r["n_train"]): r["per_second"]
        for r in data["rows"]
        if r["workers"] == 1 and r["backend"] == "loky"
    }
    body = []
    for r in data["rows"]:
        same = "-" if r["same_as_loky"] is None else ("yes" if r["same_as_loky"] else "**no**")
        body.append(
            [
                r["backend"],
                str(r["workers"]),
                r["method"],
                f"{r['n_train']:,}",
                r["fits"],
                f"{r['samples']:,} {r['what']}",
                f"{r['start_seconds']:.1f}",
                f"{r['seconds']:.2f}",
                f"{r['per_second']:.1f}",
                f"{r['per_second'] / seq[(r['method'], r['n_train'])]:.2f}",
                str(r["driver_pickles"]),
                f"{r['utility_mib']:.2f}",
                same,
            ]
        )
    head = [
        "backend",
        "workers",
        "method",
        "training rows",
        "fits",
        "samples",
        "start s",
        "seconds",
        "samples/s",
        "speed-up vs 1 worker",
        "driver pickles",
        "utility MiB",
        "same values as loky",
    ]
    return table(head, body)


def cluster_speedup(data: dict[str, Any]) -> str:
    """Throughput with the most workers of each backend relative to loky with 1 worker."""
    rows = data["rows"]
    seq = {
        (r["method"], r["n_train"]): r for r in rows if r["workers"] == 1 and r["backend"] == "loky"
    }
    most = max(r["workers"] for r in rows)
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    body = []
    for (method, n), base in seq.items():
        fits = (
            "batched logistic regression"
            if base["fits"] == "batched"
            else ("one scikit-learn fit per subset")
        )
        what = f"{method}, {n:,} rows, {fits}, {base['samples']:,} {base['what']}"
        cells = [what]
        for b in backends:
            r = next(
                (
                    x
                    for x in rows
                    if x["backend"] == b
                    and x["workers"] == most
                    and x["method"] == method
                    and x["n_train"] == n
                ),
                None,
            )
            cells.append("-" if r is None else f"{r['per_second'] / base['per_second']:.2f}×")
        body.append(cells)
    return table(["workload", *(f"{b}, {most} workers" for b in backends)], body)


# ------------------------------------------------------------------------ clean_vs_cleanlab.py
_ACC = "accuracy_after_removing_lowest_10"


def _clean_runs(data: dict[str, Any], dataset: str) -> list[dict[str, Any]]:
    return [r for r in data["results"] if r["dataset"] == dataset]


def _avg(runs: list[dict[str, Any]], get: Callable[[Any], Any]) -> float:
    vals = [v for v in (get(r) for r in runs) if v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def clean_summary(data: dict[str, Any]) -> str:
    """Per dataset: the best dataworth method at no more than cleanlab's time, next to it."""
    body = []
    for name in data["meta"]["datasets"]:
        runs = _clean_runs(data, name)
        if not runs:
            continue

        def avg(m: str, key: str, runs: list[dict[str, Any]] = runs) -> float:
            return _avg(runs, lambda run: run["methods"][m][key])

        limit = avg("cleanlab", "seconds")
        fast = [m for m in runs[0]["methods"] if m != "cleanlab" and avg(m, "seconds") <= limit]
        if not fast:
            continue
        best = max(fast, key=lambda m: avg(m, "auroc"))
        body.append(
            [
                name,
                best,
                f"{avg(best, 'auroc'):.3f}",
                f"{avg(best, 'seconds'):.2f}",
                f"{avg(best, _ACC):.4f}",
                f"{avg('cleanlab', 'auroc'):.3f}",
                f"{avg('cleanlab', 'seconds'):.2f}",
                f"{avg('cleanlab', _ACC):.4f}",
            ]
        )
    head = [
        "dataset",
        "dataworth method",
        "AUROC",
        "time (s)",
        "accuracy after removing 10%",
        "cleanlab AUROC",
        "time (s)",
        "accuracy after removing 10%",
    ]
    return table(head, body, ["---", "---"] + ["---:"] * 6)


def clean_methods(data: dict[str, Any], dataset: str) -> str:
    """Every method on one dataset: AUROC, recall at 10%, seconds, accuracy after the cut."""
    runs = _clean_runs(data, dataset)
    body = []
    for m in runs[0]["methods"]:
        body.append(
            [
                m,
                f"{_avg(runs, lambda r, m=m: r['methods'][m]['auroc']):.3f}",
                f"{_avg(runs, lambda r, m=m: r['methods'][m]['recall_at_10']):.3f}",
                f"{_avg(runs, lambda r, m=m: r['methods'][m]['seconds']):.2f}",
                f"{_avg(runs, lambda r, m=m: r['methods'][m][_ACC]):.4f}",
            ]
        )
    head = ["method", "AUROC", "recall@10%", "wall time (s)", "accuracy after removing lowest 10%"]
    return table(head, body, ["---"] + ["---:"] * 4)


def clean_noisy_valuation(data: dict[str, Any]) -> str:
    """knn-shapley and data-oob with a clean and a noisy valuation set."""
    body = []
    for name in data["meta"]["datasets"]:
        runs = _clean_runs(data, name)
        for m in ("knn-shapley", "data-oob"):
            for which in ("clean", "noisy"):

                def pick(r: dict[str, Any], key: str, m: str = m, which: str = which) -> Any:
                    row = next(
                        x for x in r["noisy_valuation"] if x["method"] == m and x["valid"] == which
                    )
                    return row[key]

                body.append(
                    [
                        name,
                        m,
                        which,
                        f"{_avg(runs, lambda r: pick(r, 'auroc')):.3f}",
                        f"{_avg(runs, lambda r: pick(r, 'score_after_cut')):.4f}",
                        f"{_avg(runs, lambda r: pick(r, 'rank_correlation')):.3f}",
                    ]
                )
    head = [
        "dataset",
        "method",
        "valuation set",
        "AUROC",
        "accuracy after removing lowest 10%",
        "rank corr. with clean-set values",
    ]
    return table(head, body, ["---"] * 3 + ["---:"] * 3)


# ---------------------------------------------------------------------------------- attacks.py
def _wm_runs(data: dict[str, Any], pattern: str) -> list[dict[str, Any]]:
    return data["watermark"]["patterns"][pattern]


def attacks_watermark(data: dict[str, Any], pattern: str) -> str:
    """Trigger detection per method: AUROC, seconds, trigger share among the lowest 5%."""
    runs = _wm_runs(data, pattern)
    j5 = data["watermark"]["fractions"].index(0.05)
    body = [
        [
            m,
            mean_sd([r["methods"][m]["auroc"] for r in runs]),
            f"{np.nanmean([r['methods'][m]['seconds'] for r in runs]):.1f}",
            mean_sd([r["methods"][m]["recall"][j5] for r in runs]),
        ]
        for m in runs[0]["methods"]
    ]
    return table(["method", "AUROC", "seconds", "trigger share in lowest 5%"], body)


def attacks_watermark_removal(data: dict[str, Any], pattern: str) -> str:
    """Trigger / clean accuracy of the retrained 1-NN after removing the lowest-valued rows."""
    runs = _wm_runs(data, pattern)
    fr = data["watermark"]["fractions"]
    body = []
    for m in [*runs[0]["methods"], "random"]:
        src = [r["random"] if m == "random" else r["methods"][m] for r in runs]
        trig = np.mean([s["trigger_accuracy"] for s in src], axis=0)
        acc = np.mean([s["test_accuracy"] for s in src], axis=0)
        body.append([m, *(f"{t:.2f} / {a:.3f}" for t, a in zip(trig, acc, strict=True))])
    return table(["removed", *(f"{f:.0%}" for f in fr)], body)


def _poison_case(data: dict[str, Any], dataset: str, mode: str) -> list[dict[str, Any]]:
    case = next(c for c in data["poison"]["cases"] if c["data"] == dataset and c["mode"] == mode)
    return case["runs"]


def attacks_poison(data: dict[str, Any], dataset: str, mode: str) -> str:
    """Test and target error as the number of poisoned rows grows, next to random noise."""
    runs = _poison_case(data, dataset, mode)
    clean = [r["attack"][0] for r in runs]
    body = [
        [
            "0 (clean)",
            mean_sd([c["test_error"] for c in clean]),
            "",
            mean_sd([c["target_error"] for c in clean]),
            mean_sd([c["target_loss"] for c in clean]),
            "",
        ]
    ]
    for k in sorted({a["k"] for a in runs[0]["attack"] if a["k"] > 0}):
        inf = [a for r in runs for a in r["attack"] if a["k"] == k and a["attack"] == "influence"]
        rnd = [a for r in runs for a in r["attack"] if a["k"] == k and a["attack"] == "random"]
        body.append(
            [
                f"{k} ({inf[0]['fraction']:.1%})",
                mean_sd([a["test_error"] for a in inf]),
                mean_sd([a["test_error"] for a in rnd]),
                mean_sd([a["target_error"] for a in inf]),
                mean_sd([a["target_loss"] for a in inf]),
                mean_sd([a["target_loss"] for a in rnd]),
            ]
        )
    head = [
        "k (share)",
        "test error, influence poison",
        "test error, random perturbation",
        "target error, influence",
        "target loss, influence",
        "target loss, random",
    ]
    return table(head, body)


def _poison_methods(runs: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(d["method"] for d in runs[0]["detection"]))


def attacks_detection(data: dict[str, Any], dataset: str, mode: str) -> str:
    """Detection AUROC of the influence poison per method and k."""
    runs = _poison_case(data, dataset, mode)
    detectors = [m for m in _poison_methods(runs) if m not in ("remove-poison", "random")]
    ks = sorted({a["k"] for a in runs[0]["attack"] if a["k"] > 0})
    body = [
        [
            str(k),
            *(
                mean_sd(
                    [
                        d["auroc"]
                        for r in runs
                        for d in r["detection"]
                        if d["k"] == k and d["method"] == m
                    ]
                )
                for m in detectors
            ),
        ]
        for k in ks
    ]
    return table(["k", *detectors], body)


def attacks_defence(data: dict[str, Any], dataset: str, mode: str) -> str:
    """Test error after dropping the lowest-valued rows and retraining, per method and k."""
    runs = _poison_case(data, dataset, mode)
    methods = _poison_methods(runs)
    body = []
    for k in sorted({a["k"] for a in runs[0]["attack"] if a["k"] > 0}):
        rows = [d for r in runs for d in r["detection"] if d["k"] == k]
        poisoned = [d["test_error_poisoned"] for d in rows if d["method"] == methods[0]]
        cells = [
            mean_sd([d["test_error_after"] for d in rows if d["method"] == m]) for m in methods
        ]
        body.append([str(k), mean_sd(poisoned), *cells])
    return table(["k", "poisoned", *methods], body)


# -------------------------------------------------------------------------- active_learning.py
def _scenario(data: dict[str, Any], scenario: str) -> dict[str, Any]:
    return next(r for r in data["results"] if r["scenario"] == scenario)


def active_learning_curve(data: dict[str, Any], scenario: str) -> str:
    """Accuracy (mean [95% t interval]) by labels bought, every other round, per strategy."""
    res = _scenario(data, scenario)
    n_labels = res["n_labels"]
    show = list(range(0, len(n_labels), 2))
    if show[-1] != len(n_labels) - 1:
        show.append(len(n_labels) - 1)
    body = []
    for s, c in res["curves"].items():
        cells = [f"{c['mean'][j]:.3f} [{c['low'][j]:.3f}, {c['high'][j]:.3f}]" for j in show]
        body.append(
            [
                s,
                *cells,
                f"{np.mean(c['junk_share_bought']):.2f} "
                f"({np.mean(c['junk_share_first_two_batches']):.2f})",
                f"{np.mean(c['select_seconds']):.1f}",
            ]
        )
    head = [
        "strategy",
        *(str(n_labels[j]) for j in show),
        "junk share of bought labels (first 2 rounds)",
        "selection s/run",
    ]
    return table(head, body)


def active_learning_reach(data: dict[str, Any], scenario: str, fraction: str) -> str:
    """Labels each strategy needs to reach a fraction of the all-clean accuracy."""
    rows = _scenario(data, scenario)["reach"][fraction]
    body = []
    for r in rows:
        size = len(r["labels"])
        mark = ">=" if r["n_reached"] < size else ""
        smark = "~" if r["censored"] else ""
        body.append(
            [
                r["strategy"],
                f"{r['target']:.4g}",
                f"{r['n_reached']}/{size}",
                f"{mark}{r['mean']:.1f} [{r['low']:.1f}, {r['high']:.1f}]",
                f"{smark}{r['saved_mean']:+.1f} [{r['saved_low']:+.1f}, {r['saved_high']:+.1f}]",
            ]
        )
    head = [
        "strategy",
        "target accuracy",
        "runs reaching it",
        "labels needed (mean [95% CI])",
        "labels saved vs baseline (mean [95% CI])",
    ]
    return table(head, body)


def _t_interval(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    mean = float(np.mean(x))
    if x.size < 2:
        return mean, mean, mean
    half = float(
        stats.t.ppf(0.5 + confidence / 2, x.size - 1) * np.std(x, ddof=1) / np.sqrt(x.size)
    )
    return mean, mean - half, mean + half


def _capped(r: dict[str, Any]) -> np.ndarray:
    labels = np.array([np.inf if v is None else v for v in r["labels"]], dtype=float)
    return np.minimum(labels, r["budget"])


AL_STRATEGIES = ("random", "uncertainty", "shapley-regression", "sr-previous")


def active_learning_needed(data: dict[str, Any], scenarios: str) -> str:
    """Labels needed to reach each target (mean [95% t CI] (runs reaching it)), polluted pools."""
    body = []
    for scenario in scenarios.split(","):
        for rows in _scenario(data, scenario)["reach"].values():
            by = {r["strategy"]: r for r in rows}
            best = min(AL_STRATEGIES, key=lambda s: by[s]["mean"])
            cells = []
            for s in AL_STRATEGIES:
                r = by[s]
                size = len(r["labels"])
                mark = ">=" if r["n_reached"] < size else ""
                text = f"{mark}{r['mean']:.1f} [{r['low']:.1f}, {r['high']:.1f}]"
                text = f"**{text}**" if s == best and not mark else text
                cells.append(f"{text} ({r['n_reached']}/{size})")
            body.append([scenario, f"{rows[0]['target']:.3f}", *cells])
    return table(["pool", "target", *AL_STRATEGIES], body)


def active_learning_saved(data: dict[str, Any], scenarios: str) -> str:
    """Labels saved by shapley-regression, paired by seed (mean [95% t CI]), vs the others."""
    versus = [s for s in AL_STRATEGIES if s != "shapley-regression"]
    body = []
    for scenario in scenarios.split(","):
        for rows in _scenario(data, scenario)["reach"].values():
            by = {r["strategy"]: r for r in rows}
            ours = by["shapley-regression"]
            cells = []
            for s in versus:
                other = by[s]
                saved = _capped(other) - _capped(ours)
                m, lo, hi = _t_interval(saved)
                bound = (
                    "~"
                    if (
                        ours["n_reached"] < len(ours["labels"])
                        or other["n_reached"] < len(other["labels"])
                    )
                    else ""
                )
                cells.append(f"{bound}{m:+.1f} [{lo:+.1f}, {hi:+.1f}]")
            body.append([scenario, f"{rows[0]['target']:.3f}", *cells])
    return table(["pool", "target", *(f"vs {s}" for s in versus)], body)


def active_learning_junk(data: dict[str, Any]) -> str:
    """Share of junk among the bought labels, per scenario and strategy (whole run, first 2)."""
    strategies = list(data["results"][0]["curves"])
    body = []
    for res in data["results"]:
        if not res["junk_fraction"]:
            continue
        cells = [
            f"{np.mean(res['curves'][s]['junk_share_bought']):.2f} "
            f"({np.mean(res['curves'][s]['junk_share_first_two_batches']):.2f})"
            for s in strategies
        ]
        body.append([res["scenario"], f"{res['junk_fraction']:.0%}", *cells])
    return table(["pool", "junk in the pool", *strategies], body)


def active_learning_variants(data: dict[str, Any]) -> str:
    """Labels each strategy or variant needs to reach each target, per pool (validation runs)."""
    results = data["results"]
    head, columns = ["strategy or variant"], []
    for res in results:
        for fraction, rows in res["reach"].items():
            head.append(f"{res['scenario']} {rows[0]['target']:.3f}")
            columns.append(fraction)
    body = []
    for name in results[0]["curves"]:
        label = f"{name} (chosen: its defaults)" if name == "shapley-regression" else name
        cells = [label]
        for res in results:
            for rows in res["reach"].values():
                r = next(x for x in rows if x["strategy"] == name)
                mark = ">=" if r["n_reached"] < len(r["labels"]) else ""
                cells.append(f"{mark}{r['mean']:.1f}")
        body.append(cells)
    return table(head, body)


# ---------------------------------------------------------------------------------- explain.py
def explain_confounders(data: dict[str, Any]) -> str:
    """Planted confounders brought to the top by each method of class_debug."""
    conf = data["confounders"]
    n = len(conf["seeds"]) * int(conf.get("planted", 5))  # explain.py's N_PLANT
    body = [
        [r["label"], f"{r['in_top']}/{n}", f"{r['flagged']}/{n}", f"{r['seconds']:.1f}"]
        for r in conf["rows"]
    ]
    top = conf.get("top", 10)  # explain.py's TOP
    return table(
        ["method", f"planted rows in the top {top}", "planted rows flagged", "time (s)"], body
    )


def explain_stability(data: dict[str, Any]) -> str:
    """Spearman correlation of the values between bootstrap resamples."""
    body = []
    for r in data["stability"]["rows"]:
        r2 = f"{r['r2_tree_cv']:.3f}" if "r2_tree_cv" in r else ""
        body.append(
            [
                r["data"],
                r["method"],
                str(r["resamples"]),
                f"{r['mean']:.3f}",
                f"{r['sd']:.3f}",
                f"{r['min']:.3f}",
                f"{r['max']:.3f}",
                r["verdict"],
                r2,
            ]
        )
    head = [
        "data",
        "method",
        "resamples",
        "mean",
        "sd",
        "min",
        "max",
        "verdict",
        "cross-validated R^2",
    ]
    return table(head, body)


# ------------------------------------------------------------------------ market_replication.py
def _models(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k in rows[0] if k not in ("attack", "mode", "all")]


def market_attacks(data: dict[str, Any]) -> str:
    """The attacker's share of the budget before and after each attack, over all markets."""
    n = len(data["markets"])
    body = []
    for r in data["summary"]["rows"]:
        s = r["all"]
        body.append(
            [
                r["attack"],
                r["mode"],
                str(s["gained"]),
                f"{100 * s['share_before_mean']:.1f}% -> {100 * s['share_after_mean']:.1f}%",
                f"{100 * s['largest_gain']:+.1f} points",
            ]
        )
    head = [
        "attack by provider A",
        "values",
        f"A gained (of {n})",
        "A's share before -> after (mean)",
        "largest gain",
    ]
    return table(head, body)


def market_by_model(data: dict[str, Any]) -> str:
    """The same, by model."""
    rows = data["summary"]["rows"]
    models = _models(rows)
    head = ["attack by provider A", "values"]
    for m in models:
        head += [f"{m}: A gained (of {rows[0][m]['markets']})", f"{m}: largest gain"]
    body = []
    for r in rows:
        cells = [r["attack"], r["mode"]]
        for m in models:
            cells += [str(r[m]["gained"]), f"{100 * r[m]['largest_gain']:+.1f} points"]
        body.append(cells)
    return table(head, body)


def market_honest(data: dict[str, Any]) -> str:
    """Penalties of honest providers (markets without an attack)."""
    body = []
    for h in data["summary"]["honest_penalties"]:
        for mode in (k for k in h if k.startswith("robust")):
            e = h[mode]
            body.append(
                [
                    h["dataset"],
                    str(h["markets"]),
                    mode.split("=")[1],
                    f"{e['ratio_lowest']:.2f}",
                    f"{e['ratio_mean']:.2f}",
                    f"{e['penalty_lowest']:.2f}",
                ]
            )
    head = [
        "dataset",
        "markets",
        "lam",
        "smallest/largest penalty ratio: lowest over markets",
        "mean over markets",
        "lowest penalty",
    ]
    return table(head, body)


# ------------------------------------------------------------------------------------ prune.py
def _prune_block(data: dict[str, Any], dataset: str, noise: str) -> dict[str, Any]:
    return next(
        b for b in data["comparison"] if b["dataset"] == dataset and b["noise"] == float(noise)
    )


def prune_compare(data: dict[str, Any], dataset: str, noise: str) -> str:
    """Held-out accuracy at each kept fraction per strategy; best mean per row in bold."""
    block = _prune_block(data, dataset, noise)
    strategies = list(block["mean"])
    body = []
    for fi, f in enumerate(block["fractions"]):
        means = [block["mean"][s][fi] for s in strategies]
        cells = []
        for s, m in zip(strategies, means, strict=True):
            cell = f"{m:.4f} ± {block['sd'][s][fi]:.4f}"
            cells.append(f"**{cell}**" if m == max(means) else cell)
        body.append([f"{f:.0%}", *cells])
    body.append(["100%", f"{block['full_mean']:.4f} ± {block['full_sd']:.4f} (all rows)"])
    return table(["kept", *strategies], body)


def prune_transfer(data: dict[str, Any], part: str) -> str:
    """The transfer workflow per seed and method, and the means."""
    rows = data[f"transfer_{part}"]["rows"]
    text = part == "text"
    head = ["seed", "values", "removal index", "removed (flipped)", "harmful (flipped)"]
    if text:
        head.append("near-duplicates found (planted pairs found / planted)")
    head += ["target: all rows", "target: pruned", "target: same number removed at random"]
    body = []
    for r in rows:
        dup = (
            [f"{r['duplicates_found']} ({r['planted_pairs_found']} / {r['planted_duplicates']})"]
            if text
            else []
        )
        body.append(
            [
                str(r["seed"]),
                r.get("method", "knn-shapley"),
                f"{r['removal_fraction']:.0%}",
                f"{r['n_removed']} ({r['removed_flipped']} of {r['flipped']})",
                f"{r['harmful']} ({r['harmful_flipped']})",
                *dup,
                f"{r['target_full']:.4f}",
                f"{r['target_pruned']:.4f}",
                f"{r['target_random_same_size']:.4f}",
            ]
        )
    keys = ("removal_fraction", "target_full", "target_pruned", "target_random_same_size")
    for method in dict.fromkeys(r.get("method", "knn-shapley") for r in rows):
        mine = [r for r in rows if r.get("method", "knn-shapley") == method]
        m = {k: np.mean([r[k] for r in mine]) for k in keys}
        body.append(
            [
                "mean",
                method,
                f"{m['removal_fraction']:.0%}",
                "",
                "",
                *([""] if text else []),
                f"{m['target_full']:.4f}",
                f"{m['target_pruned']:.4f}",
                f"{m['target_random_same_size']:.4f}",
            ]
        )
    return table(head, body)


# -------------------------------------------------------------------------- pruning_metrics.py
PM_STRATEGIES = ("el2n", "grand", "forgetting", "prototype", "value")
PM_VARIANTS = ("hard", "easy", "hard per class", "easy per class")


def _pm_task(data: dict[str, Any], task: str, noise: str) -> dict[str, Any]:
    return next(t for t in data["tasks"] if t["task"] == task and t["noise"] == float(noise))


def _pm_mean_ci(samples: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and the half-width of its 95% t-interval (0 for one seed)."""
    from scipy import stats

    a = np.asarray(samples, dtype=float)
    if a.shape[0] < 2:
        return a.mean(axis=0), np.zeros(a.shape[1:])
    half = stats.t.ppf(0.975, a.shape[0] - 1) * a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])
    return a.mean(axis=0), half


def _pm_runs(task: dict[str, Any], key: str, strategy: str, variant: str) -> np.ndarray:
    return np.array([r[key][strategy][variant] for r in task["runs"]])


def _pm_hard_minus_easy(task: dict[str, Any], strategy: str, per_class: bool) -> np.ndarray:
    """Per-seed accuracy keeping the hardest minus keeping the easiest rows (paired by seed)."""
    tail = " per class" if per_class else ""
    hard = _pm_runs(task, "accuracy", strategy, "hard" + tail)
    return hard - _pm_runs(task, "accuracy", strategy, "easy" + tail)


def _pm_crossover(fractions: Sequence[float], diff_mean: np.ndarray) -> str:
    """Where keeping hard rows starts to beat keeping easy ones, by the mean differences: after
    the last fraction at which easy rows win, when hard rows win at a larger one; exact ties
    (identical kept sets) favour neither."""
    if not np.any(diff_mean):
        return "no difference (all scores tied)"
    negative = np.flatnonzero(diff_mean < 0)
    if negative.size == 0:
        return "hard wins everywhere"
    last = int(negative[-1])
    if not np.any(diff_mean[last + 1 :] > 0):
        if not np.any(diff_mean > 0):
            return "easy wins everywhere"
        return f"easy wins again at {fractions[last]:.0%}"
    return f"between {fractions[last]:.0%} and {fractions[last + 1]:.0%}"


def _pm_condition(task: dict[str, Any]) -> str:
    return f"{task['task']}, {task['noise']:.0%} flipped" if task["noise"] else task["task"]


def _pm_rows() -> list[tuple[str, str, bool]]:
    return [
        (s + (", per class" if per_class else ""), s, per_class)
        for per_class in (False, True)
        for s in PM_STRATEGIES
    ]


def pruning_metrics_crossover(data: dict[str, Any]) -> str:
    """Per task and label noise: from which kept fraction the hardest rows beat the easiest."""
    tasks = data["tasks"]
    body = [
        [name, *(_pm_crossover(t["fractions"], _pm_mean_ci(_pm_hard_minus_easy(t, s, pc))[0])
                 for t in tasks)]
        for name, s, pc in _pm_rows()
    ]  # fmt: skip
    return table(["strategy", *(_pm_condition(t) for t in tasks)], body)


def pruning_metrics_differences(data: dict[str, Any], task: str, noise: str) -> str:
    """Accuracy keeping the hardest minus the easiest rows by kept fraction (mean ± 95% t-interval
    over seeds, paired); bold where the interval excludes 0."""
    t = _pm_task(data, task, noise)
    body = []
    for name, s, per_class in _pm_rows():
        mean, half = _pm_mean_ci(_pm_hard_minus_easy(t, s, per_class))
        cells = [
            f"**{m:+.3f} ± {h:.3f}**" if abs(m) > h else f"{m:+.3f} ± {h:.3f}"
            for m, h in zip(mean, half, strict=True)
        ]
        body.append([name, *cells, _pm_crossover(t["fractions"], mean)])
    return table(["strategy", *(f"{f:.0%}" for f in t["fractions"]), "hard beats easy"], body)


def pruning_metrics_accuracy(data: dict[str, Any], task: str, noise: str) -> str:
    """Held-out accuracy by strategy and kept rows (hard/easy, over all rows or per class) and
    kept fraction, mean ± 95% t-interval over seeds."""
    t = _pm_task(data, task, noise)
    body = []
    for name in ("random", "random per class"):
        mean, half = _pm_mean_ci([r["random"][name] for r in t["runs"]])
        body.append([name, "", *(f"{m:.3f} ± {h:.3f}" for m, h in zip(mean, half, strict=True))])
    for s in PM_STRATEGIES:
        for v in PM_VARIANTS:
            mean, half = _pm_mean_ci(_pm_runs(t, "accuracy", s, v))
            body.append([s, v, *(f"{m:.3f} ± {h:.3f}" for m, h in zip(mean, half, strict=True))])
    mean, half = _pm_mean_ci([[r["full"]] for r in t["runs"]])
    body.append(
        ["all rows", "", f"{mean[0]:.3f} ± {half[0]:.3f}", *[""] * (len(t["fractions"]) - 1)]
    )
    return table(["strategy", "keep", *(f"{f:.0%}" for f in t["fractions"])], body)


def pruning_metrics_noise(data: dict[str, Any], task: str) -> str:
    """What flipped labels do: each score's detection AUROC of the flipped rows, the share of
    flipped rows among the kept ones, and the accuracy lost against the clean labels."""
    clean = next(t for t in data["tasks"] if t["task"] == task and not t["noise"])
    noisy = next(t for t in data["tasks"] if t["task"] == task and t["noise"])
    fr = noisy["fractions"]
    show = [i for i, f in enumerate(fr) if f in (0.1, 0.3, 0.5, 0.9)] or list(range(len(fr)))
    head = ["strategy", "AUROC for flipped rows"]
    head += [f"flipped kept at {fr[i]:.0%}: hard / easy" for i in show]
    head += [f"accuracy lost at {fr[i]:.0%}: hard / easy" for i in show]
    body = []
    for s in PM_STRATEGIES:
        auc, half = _pm_mean_ci([[r["auroc_flipped"][s]] for r in noisy["runs"]])
        kept = {v: _pm_runs(noisy, "flipped_kept", s, v).mean(axis=0) for v in ("hard", "easy")}
        lost = {
            v: (_pm_runs(clean, "accuracy", s, v) - _pm_runs(noisy, "accuracy", s, v)).mean(axis=0)
            for v in ("hard", "easy")
        }
        body.append(
            [
                s,
                f"{auc[0]:.3f} ± {half[0]:.3f}",
                *(f"{kept['hard'][i]:.1%} / {kept['easy'][i]:.1%}" for i in show),
                *(f"{lost['hard'][i]:+.3f} / {lost['easy'][i]:+.3f}" for i in show),
            ]
        )
    return table(head, body)


# ------------------------------------------------------------------------------- model_free.py
MODEL_FREE_METHODS = {
    "lava": "lava",
    "lava (noisy valuation set)": "lava, valuation labels also 10% flipped",
    "cgs": "cgs",
    "knn-shapley": "knn-shapley (K=5)",
    "data-oob (same time)": "data-oob, stopped at the time of the slower of lava/cgs",
    "data-oob (200 bags)": "data-oob, 200 bags",
}


def model_free_detection(data: dict[str, Any], dataset: str) -> str:
    """One dataset: AUROC and recall at the noise rate (mean ± sd), seconds, Data-OOB bags."""
    summary = data["datasets"][dataset]["summary"]
    body = []
    for m, e in summary.items():
        bags = f"{e['bags']:.0f}" if "bags" in e else ""
        body.append(
            [
                m,
                f"{e['auroc']:.3f} ± {e['auroc_sd']:.3f}",
                f"{e['recall_at_noise_rate']:.3f} ± {e['recall_at_noise_rate_sd']:.3f}",
                f"{e['seconds']:.2f}",
                bags,
            ]
        )
    return table(["method", "AUROC", "recall at 10%", "time (s)", "bags"], body)


def model_free_side_by_side(data: dict[str, Any]) -> str:
    """Every dataset side by side: AUROC (mean ± sd) and seconds; best AUROC per column bold."""
    names = list(data["datasets"])
    head = ["method"]
    best = {}
    for name in names:
        block = data["datasets"][name]
        head += [f"{name} ({block['runs'][0]['n_train']} rows) AUROC", "time (s)"]
        best[name] = max(e["auroc"] for e in block["summary"].values())
    body = []
    for m in data["datasets"][names[0]]["summary"]:
        cells = [MODEL_FREE_METHODS.get(m, m)]
        for name in names:
            e = data["datasets"][name]["summary"][m]
            auroc = f"{e['auroc']:.3f} ± {e['auroc_sd']:.3f}"
            cells += [f"**{auroc}**" if e["auroc"] == best[name] else auroc, f"{e['seconds']:.2f}"]
        if "bags" in data["datasets"][names[0]]["summary"][m] and m.endswith("(same time)"):
            bags = [f"{data['datasets'][n]['summary'][m]['bags']:.0f}" for n in names]
            cells[0] += f" ({'/'.join(dict.fromkeys(bags))} bags)"
        body.append(cells)
    return table(head, body)


def model_free_cgs_variants(data: dict[str, Any]) -> str:
    """CGS class-pair-wise (dataworth) against one-vs-rest (the authors' code, all rows)."""
    part = data["cgs_variants"]
    body = []
    for name, block in part["datasets"].items():
        cells = [name, str(block["n_train"]), str(block["n_classes"])]
        for variant in part["variants"]:
            a = [r[variant]["auroc"] for r in block["runs"]]
            s = [r[variant]["seconds"] for r in block["runs"]]
            cells += [
                f"{np.mean(a):.3f} ± {np.std(a, ddof=1) if len(a) > 1 else 0.0:.3f}",
                f"{np.mean(s):.3f}",
            ]
        body.append(cells)
    head = ["dataset", "training rows", "classes"]
    for variant in part["variants"]:
        head += [f"{variant} AUROC", "time (s)"]
    return table(head, body)


def model_free_lava_epsilon(data: dict[str, Any]) -> str:
    """LAVA's AUROC (mean ± sd over seeds) for each relative epsilon."""
    part = data["lava_epsilon"]
    eps = part["epsilons"]
    body = []
    for name, block in part["datasets"].items():
        means = [float(np.mean([r[str(e)]["auroc"] for r in block["runs"]])) for e in eps]
        cells = [name]
        for e, m in zip(eps, means, strict=True):
            a = [r[str(e)]["auroc"] for r in block["runs"]]
            sd = np.std(a, ddof=1) if len(a) > 1 else 0.0
            text = f"{m:.3f} ± {sd:.3f}"
            cells.append(f"**{text}**" if m == max(means) else text)
        body.append(cells)
    return table(["dataset", *(f"epsilon {e:g}" for e in eps)], body)


# -------------------------------------------------------------------------------- influence.py
def _influence_method(row: dict[str, Any], args: dict[str, Any]) -> str:
    name = row["method"]
    if name.startswith("arnoldi"):
        return name.replace("arnoldi", f"arnoldi (rank {args['rank']})", 1)
    return name


def influence_run(data: dict[str, Any]) -> str:
    """One influence.py run: seconds, pyDVL / dataworth, Pearson with the direct method."""
    body = []
    for r in data["rows"]:
        ours, theirs = r["dataworth_s"], r.get("pydvl_s")
        theirs_p = f3(r.get("pydvl_pearson"), ".4f")
        if "pydvl_error" in r:
            theirs_p += f" ({r['pydvl_error']})"
        body.append(
            [
                r["method"],
                f3(ours, ".2f"),
                f3(theirs, ".2f"),
                f"{theirs / ours:.1f}x" if theirs else "-",
                f3(r["dataworth_pearson"], ".4f"),
                theirs_p,
            ]
        )
    head = [
        "method",
        "dataworth s",
        "pyDVL s",
        "pyDVL / dataworth",
        "dataworth Pearson",
        "pyDVL Pearson",
    ]
    return table(head, body)


def influence_summary(runs: tuple[dict[str, Any], ...]) -> str:
    """Every influence.py run in one table: problem size, damping, seconds and Pearson (README)."""
    body = []
    for data in runs:
        a = data["args"]
        size = "300 x 100" if a["quick"] else "1,000 x 400"
        for r in data["rows"]:
            ours, theirs = r["dataworth_s"], r.get("pydvl_s")
            theirs_p = f3(r.get("pydvl_pearson"), ".3f")
            if r["method"] == "ekfac" and theirs is not None:
                theirs_p += " (float32)"
            body.append(
                [
                    _influence_method(r, a),
                    size,
                    f"{a['damping']:g}",
                    f3(ours, ".2f"),
                    f3(theirs, ".2f"),
                    f"{theirs / ours:.1f}x" if theirs else "-",
                    f3(r["dataworth_pearson"], ".3f"),
                    theirs_p,
                ]
            )
    head = [
        "method",
        "training x test rows",
        "damping",
        "dataworth s",
        "pyDVL s",
        "pyDVL / dataworth",
        "dataworth Pearson",
        "pyDVL Pearson",
    ]
    return table(head, body)


INFLUENCE_RUNS = (
    "influence-damping-0.001.json",
    "influence-cg-quick.json",
    "influence-damping-0.1.json",
    "influence-lissa-quick.json",
)


def influence_loo_table(data: dict[str, Any]) -> str:
    """Pearson of influence values with real leave-one-out refits, per setting, over seeds."""
    body = []
    for s in data["settings"]:
        p = s["pearson_by_seed"]
        body.append(
            [
                s["data"],
                f"{s['train_rows']} / {s['valid_rows']}",
                str(s["features"]),
                str(len(p)),
                f"{min(p):.3f}",
                f"{float(np.median(p)):.3f}",
                f"{max(p):.3f}",
            ]
        )
    head = [
        "data",
        "training / valuation rows",
        "features",
        "seeds",
        "Pearson min",
        "median",
        "max",
    ]
    return table(head, body)


# ----------------------------------------------------------------------------------- repairs.py
def repairs_accuracy(data: dict[str, Any]) -> str:
    """Per scenario and tool: cells changed, RMSE and bias of the repairs against the truth."""
    head = ["scenario", "tool", "cells changed", "RMSE", "bias", "seconds"]
    body = [
        [r["scenario"], r["tool"], str(r["changed"]), f"{r['rmse']:.4f}", f"{r['bias']:+.4f}",
         f"{r['seconds']:.1f}"]
        for r in data["listing"]
    ]  # fmt: skip
    return table(head, body, ["---", "---", "---:", "---:", "---:", "---:"])


def repairs_columns(data: dict[str, Any]) -> str:
    """The exact Shapley values of the input columns behind the explained repair."""
    body = [[c, f"{v:.5f}"] for c, v in data["explanation"]["by_column"].items()]
    return table(["column", "value"], body, ["---", "---:"])


def repairs_neighbours(data: dict[str, Any]) -> str:
    """The explained cell's KNN neighbours: their sampled row values and rank by |value|."""
    rows = data["explanation"]["by_row_neighbours"]
    body = [[str(r["row"]), f"{r['value']:.5f}", str(r["rank"])] for r in rows]
    return table(["row", "value", "rank by abs(value)"], body, ["---:", "---:", "---:"])


def repairs_effects(data: dict[str, Any]) -> str:
    """Per scenario and tool: R^2 without and with the repairs, and the columns that hurt."""
    head = ["scenario", "tool", "R^2 raw (mean-filled)", "R^2 repaired", "columns that hurt"]
    body = []
    for r in data["effects"]:
        ranked = sorted(r["values"].items(), key=lambda item: item[1])
        hurt = ", ".join(f"{c} {v:+.4f}" for c, v in ranked if v < 0) or "none"
        body.append([r["scenario"], r["tool"], f"{r['raw_score']:.4f}",
                     f"{r['repaired_score']:.4f}", hurt])  # fmt: skip
    return table(head, body, ["---", "---", "---:", "---:", "---"])


# ------------------------------------------------------------------------------------ registry
TABLES: dict[str, Table] = {
    # README
    "estimators": Table("estimators.json", estimators_summary),
    "estimators_real": Table("estimators_real.json", estimators_real_summary),
    "semivalues": Table("semivalues.json", semivalues_summary),
    "influence": Table(INFLUENCE_RUNS, influence_summary),
    "influence_loo": Table("influence_loo.json", influence_loo_table),
    "knn_large": Table("knn_large.json", knn_large_table),
    "cluster.speedup": Table("cluster.json", cluster_speedup),
    # benchmarks/*.md, docs/*.md
    "estimators_real.best": Table("estimators_real.json", estimators_real_best),
    "scale": Table("scale.json", scale_table),
    "cluster": Table("cluster.json", cluster_table),
    "clean.summary": Table("clean.json", clean_summary),
    "clean.methods": Table("clean.json", clean_methods),
    "clean.noisy_valuation": Table("clean.json", clean_noisy_valuation),
    "attacks.watermark": Table("attacks.json", attacks_watermark),
    "attacks.watermark_removal": Table("attacks.json", attacks_watermark_removal),
    "attacks.poison": Table("attacks.json", attacks_poison),
    "attacks.detection": Table("attacks.json", attacks_detection),
    "attacks.defence": Table("attacks.json", attacks_defence),
    "active_learning.curve": Table("active_learning.json", active_learning_curve),
    "active_learning.reach": Table("active_learning.json", active_learning_reach),
    "active_learning.needed": Table("active_learning.json", active_learning_needed),
    "active_learning.saved": Table("active_learning.json", active_learning_saved),
    "active_learning.junk": Table("active_learning.json", active_learning_junk),
    "active_learning_validation.variants": Table(
        "active_learning_validation.json", active_learning_variants
    ),
    "explain.confounders": Table("explain.json", explain_confounders),
    "explain.stability": Table("explain.json", explain_stability),
    "market_replication.attacks": Table("market_replication.json", market_attacks),
    "market_replication.by_model": Table("market_replication.json", market_by_model),
    "market_replication.honest": Table("market_replication.json", market_honest),
    "prune.compare": Table("prune.json", prune_compare),
    "prune.transfer": Table("prune.json", prune_transfer),
    "model_free.detection": Table("model_free.json", model_free_detection),
    "model_free.side_by_side": Table("model_free.json", model_free_side_by_side),
    "model_free.cgs_variants": Table("model_free.json", model_free_cgs_variants),
    "model_free.lava_epsilon": Table("model_free.json", model_free_lava_epsilon),
}
for _run in INFLUENCE_RUNS:
    TABLES[f"influence.run.{_run.removesuffix('.json')}"] = Table(_run, influence_run)
for _stem in ("estimators", "estimators-quick"):
    TABLES[f"{_stem}.games"] = Table(f"{_stem}.json", estimators_games)
    TABLES[f"{_stem}.best"] = Table(f"{_stem}.json", estimators_best)
    TABLES[f"{_stem}.counterparts"] = Table(f"{_stem}.json", estimators_counterparts)
    TABLES[f"{_stem}.game"] = Table(f"{_stem}.json", estimators_game)
for _stem in ("estimators_real", "estimators_real-quick"):
    TABLES[f"{_stem}.rows"] = Table(f"{_stem}.json", estimators_real_rows)
    TABLES[f"{_stem}.rankstable"] = Table(f"{_stem}.json", estimators_real_rankstable)
for _stem in ("semivalues", "semivalues-quick"):
    TABLES[f"{_stem}.table"] = Table(f"{_stem}.json", semivalues_table)
for _stem in ("pruning_metrics", "pruning_metrics-quick"):
    TABLES[_stem] = Table(f"{_stem}.json", pruning_metrics_crossover)
    TABLES[f"{_stem}.differences"] = Table(f"{_stem}.json", pruning_metrics_differences)
    TABLES[f"{_stem}.accuracy"] = Table(f"{_stem}.json", pruning_metrics_accuracy)
    TABLES[f"{_stem}.noise"] = Table(f"{_stem}.json", pruning_metrics_noise)
TABLES.update(
    {
        "repairs.accuracy": Table("repairs.json", repairs_accuracy),
        "repairs.columns": Table("repairs.json", repairs_columns),
        "repairs.neighbours": Table("repairs.json", repairs_neighbours),
        "repairs.effects": Table("repairs.json", repairs_effects),
    }
)
for _stem in ("results", "results-quick"):
    TABLES[f"{_stem}.summary"] = Table(f"{_stem}.json", results_summary)
    TABLES[f"{_stem}.details"] = Table(f"{_stem}.json", results_details)
    TABLES[f"{_stem}.references"] = Table(f"{_stem}.json", results_references)


# ----------------------------------------------------------------------------------- rendering
class TableError(Exception):
    """A marker names no registered table, or its table cannot be rendered from its JSON."""


def split_name(name: str) -> tuple[str, list[str]]:
    """``FAMILY:ARG:ARG`` -> (family, [args])."""
    family, *args = name.split(":")
    return family, args


def render_table(name: str, data: Any = None, *, base: Path = BENCH) -> str:
    """The table ``name`` (``FAMILY[:ARG...]``) rendered from ``data`` or its JSON file(s)."""
    family, args = split_name(name)
    if family not in TABLES:
        raise TableError(f"no table {family!r} in benchmarks/tables.py's TABLES")
    entry = TABLES[family]
    try:
        return entry.render(entry.load(base) if data is None else data, *args)
    except (OSError, KeyError, StopIteration, IndexError, ValueError, TypeError) as exc:
        raise TableError(
            f"table {name!r} cannot be rendered from {entry.source}: {type(exc).__name__}: {exc}"
        ) from exc


def block(name: str, data: Any = None) -> str:
    """``name``'s table between its markers (for a script writing its whole markdown)."""
    return f"<!-- table:{name} -->\n{render_table(name, data)}\n<!-- /table:{name} -->"


def render(text: str, *, base: Path = BENCH) -> str:
    """``text`` with every marked table rewritten from its JSON."""

    def sub(m: re.Match[str]) -> str:
        body = render_table(m.group("name"), base=base)
        return f"{m.group('open')}{body}\n{m.group('close')}"

    return MARKER.sub(sub, text)


def documents(root: Path = ROOT) -> list[Path]:
    """Every markdown file whose tables are rendered or checked."""
    return [
        root / "README.md",
        *sorted((root / "docs").glob("*.md")),
        *sorted((root / "benchmarks").glob("*.md")),
    ]


def markers(text: str) -> list[str]:
    """The table names marked in ``text``, in order."""
    return [m.group("name") for m in MARKER.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale tables (exit 1)")
    parser.add_argument("--list", action="store_true", help="list the registered families")
    parser.add_argument("files", nargs="*", type=Path, help="default: every document")
    args = parser.parse_args(argv)
    if args.list:
        for name, entry in TABLES.items():
            print(f"{name:40s} {entry.source}  {(entry.render.__doc__ or '').splitlines()[0]}")
        return 0
    paths = args.files or documents()
    changed, failed = [], []
    for path in paths:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        old = path.read_text(encoding="utf-8")
        try:
            new = render(old)
        except TableError as exc:  # report it, and go on with the other files
            print(f"error: {shown}: {exc}", file=sys.stderr)
            failed.append(path)
            continue
        if new != old:
            changed.append(path)
            print(f"{'stale' if args.check else 'rewrote'}: {shown}")
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if failed:
        return 2
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
