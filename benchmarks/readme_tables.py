"""Render the README's estimator tables from the benchmarks' JSON (never pasted by hand).

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in README.md and
is rewritten from:

* ``estimators``: ``benchmarks/estimators.json`` (exact games, dataworth next to shapiq);
* ``estimators_real``: ``benchmarks/estimators_real.json`` (real utilities, equal wall time);
* ``semivalues``: ``benchmarks/semivalues.json`` (Beta(16, 1) and Banzhaf).

    python benchmarks/readme_tables.py          # rewrite README.md in place
    python benchmarks/readme_tables.py --check  # exit 1 if README.md is not up to date
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _geo(values: list[float]) -> float:
    return math.exp(sum(math.log(max(v, 1e-300)) for v in values) / len(values))


def _fmt(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


def estimators_table(data: dict[str, Any]) -> str:
    """Geometric mean over the games of the relative MSE, per method and budget."""
    factors = data["budget_factors"]
    games = [g["name"] for g in data["games"]]
    cells: dict[tuple[str, str], dict[int, list[float]]] = {}
    for s in data["summary"]:
        if s.get("rel_mse") is None or s["game"] not in games:
            continue
        cells.setdefault((s["library"], s["method"]), {}).setdefault(s["budget_factor"], [])
        cells[(s["library"], s["method"])][s["budget_factor"]].append(s["rel_mse"])
    rows = sorted(cells, key=lambda k: _geo(cells[k].get(factors[-1], [1.0])))
    head = "| library | method | " + " | ".join(f"{f}n" for f in factors) + " |"
    lines = [head, "|---|---|" + "---|" * len(factors)]
    for lib, method in rows:
        got = cells[(lib, method)]
        vals = [_fmt(_geo(got[f])) if len(got.get(f, [])) == len(games) else "-" for f in factors]
        lines.append(f"| {lib} | {method} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def estimators_real_table(data: dict[str, Any]) -> str:
    """Noisy-label AUROC (seed-to-seed Spearman) per method and (rows, seconds)."""
    settings = sorted({(s["rows"], s["T"]) for s in data["summary"]})
    cells = {(s["library"], s["method"], s["rows"], s["T"]): s for s in data["summary"]}

    def last_auroc(method: tuple[str, str]) -> float:
        cell = cells.get((*method, *settings[-1])) or {}
        return float(cell.get("auroc") or 0.0)

    methods = sorted({(s["library"], s["method"]) for s in data["summary"]}, key=last_auroc)
    methods.reverse()
    head = "| library | method | " + " | ".join(f"{r} rows, {t:g} s" for r, t in settings) + " |"
    lines = [head, "|---|---|" + "---|" * len(settings)]
    for lib, method in methods:
        vals = []
        for r, t in settings:
            s = cells.get((lib, method, r, t))
            if s is None or s.get("auroc") is None:
                vals.append("-")
            else:
                rho = s.get("seed_spearman")
                vals.append(f"{s['auroc']:.3f}" + ("" if rho is None else f" ({rho:.2f})"))
        lines.append(f"| {lib} | {method} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def semivalues_table(data: dict[str, Any]) -> str:
    """Geometric mean relative MSE over games, and today's estimator / this one."""
    rows = data["rows"]
    factors = sorted({r["factor"] for r in rows})
    lines = ["| semivalue | estimator | " + " | ".join(f"{f}n (today / this)" for f in factors)
             + " |", "|---|---|" + "---|" * len(factors)]  # fmt: skip
    for sv in dict.fromkeys(r["semivalue"] for r in rows):
        labels = list(dict.fromkeys(r["estimator"] for r in rows if r["semivalue"] == sv))
        today = {f: _geo([r["rel_mse"] for r in rows if r["semivalue"] == sv
                          and r["factor"] == f and r["estimator"] == labels[0]])
                 for f in factors}  # fmt: skip
        for label in labels:
            vals = []
            for f in factors:
                geo = _geo([r["rel_mse"] for r in rows if r["semivalue"] == sv
                            and r["factor"] == f and r["estimator"] == label])  # fmt: skip
                vals.append(f"{_fmt(geo)} ({today[f] / geo:.0f}x)")
            lines.append(f"| {sv} | {label} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


TABLES: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "estimators": ("estimators.json", estimators_table),
    "estimators_real": ("estimators_real.json", estimators_real_table),
    "semivalues": ("semivalues.json", semivalues_table),
}


def render(readme: str) -> str:
    for name, (source, make) in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n)(?:.*?\n)?(<!-- /table:{name} -->)", re.S)
        if not pattern.search(readme):
            continue
        table = make(json.loads((BENCH / source).read_text()))
        readme = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check README.md")
    args = parser.parse_args(argv)
    path = ROOT / "README.md"
    old = path.read_text()
    new = render(old)
    if args.check:
        return 0 if new == old else 1
    path.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
