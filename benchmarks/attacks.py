"""Attacks as robustness studies: trigger-set watermark removal and influence-based poisoning.

Usage::

    python benchmarks/attacks.py [--seeds 3] [--quick] [--parts watermark,poison] \
        [--out benchmarks/attacks.md]

Part 1, watermark (Adi et al. 2018; removal as in Jia et al., CVPR 2021). digits, pixels divided
by 16; per seed a stratified split into training (56%), valuation (19%) and held-out test (25%)
rows; 50 trigger points appended to the training rows
(:func:`dataworth.apps.attacks.add_trigger_set`) with pattern ``noise`` (uniform random pixels,
random label) or ``patch`` (a digit with a fixed stamp of about 6 lit pixels, labelled with
another class). The watermarked model is a 1-nearest-neighbour classifier (it memorises its
training rows). Values: knn-shapley (K=5), data-oob (100 bags of the 1-NN), loo (1-NN),
influence (multinomial logistic regression, C=1) and the negated self-influence of that
logistic regression. For each method: AUROC of the low values as a
detector of the trigger points, then the lowest-valued 0..20% of the rows removed, the 1-NN
retrained, and its accuracy on the trigger set and on the test rows; random removal (3 draws)
as the reference.

Part 2, poisoning (Koh & Liang 2017, 5.2; ``mode=add`` in the style of Koh, Steinhardt & Liang
2022). breast_cancer, and digits 1 vs 7, features standardised; per seed a stratified split into
training (45%), valuation (15%), attacker's target (15%) and held-out test (25%) rows. For k =
0.5%, 1%, 2%, 3% of the training rows, :func:`dataworth.apps.poison.craft_poison` with an
L-infinity budget of 1 standard deviation per feature inside the data's range, 20 rounds of
sign-gradient steps on the influence of the poison on the target loss (retraining after each),
against logistic regression (C=1); next to it a random perturbation of the same rows and
budget. Errors of the logistic regression trained on the poisoned rows are measured on the test
rows, which the attacker never sees. Detection: knn-shapley, data-oob (100 bags), loo,
influence, tmc-shapley (20 permutations) and the negated self-influence on the defender's clean
valuation set; the defence drops the lowest-valued 5% of the rows and retrains.

The two parts run the experiment harnesses :func:`dataworth.experiments.watermark_study` and
:func:`dataworth.experiments.poisoning_study` (which value through ``dataworth.api.value_many``
and measure with :func:`dataworth.apps.attacks.watermark_removal` and
:mod:`dataworth.apps.poison`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from dataworth.apps.attacks import add_trigger_set
from dataworth.data import Dataset
from dataworth.datasets import load_dataset
from dataworth.experiments import poisoning_study, watermark_study

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402

WM_FRACTIONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
WM_METHODS = ("knn-shapley", "data-oob", "loo", "influence")
POISON_FRACTIONS = (0.005, 0.01, 0.02, 0.03)
POISON_METHODS = ("knn-shapley", "data-oob", "loo", "influence", "tmc-shapley")
PARAMS = {"knn-shapley": {"k": 5}, "data-oob": {"budget": 100}, "tmc-shapley": {"budget": 20}}


def _standardise(*parts: Dataset) -> list[Dataset]:
    mean = parts[0].X.mean(axis=0)
    std = parts[0].X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [p.replace(X=(p.X - mean) / std) for p in parts]


def _json(obj: Any) -> Any:
    """NaN as null, numpy scalars as numbers."""
    if isinstance(obj, dict):
        return {k: _json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _ms(a: Any) -> str:
    a = np.asarray(a, dtype=float)
    return f"{np.nanmean(a):.3f} ± {np.nanstd(a):.3f}"


# ---------------------------------------------------------------------------------- part 1
def watermark(seeds: list[int], patterns: list[str], methods: tuple[str, ...]) -> dict[str, Any]:
    digits = load_dataset("digits")
    digits = digits.replace(X=digits.X / 16.0)
    out: dict[str, Any] = {"fractions": list(WM_FRACTIONS), "patterns": {}}
    for pattern in patterns:
        runs = []
        for seed in seeds:
            print(f"watermark: {pattern} seed {seed}", flush=True)
            rest, test = digits.split(0.25, random_state=seed)
            train, valid = rest.split(0.25, random_state=seed)
            marked, trig, _ = add_trigger_set(train, 50, random_state=seed, pattern=pattern)
            study = watermark_study(
                marked,
                valid,
                test,
                trig,
                methods=methods,
                model=KNeighborsClassifier(n_neighbors=1),
                influence_model=LogisticRegression(C=1.0, max_iter=1000),
                params=PARAMS,
                fractions=WM_FRACTIONS,
                n_random=3,
                random_state=seed,
            )
            runs.append(study.to_dict())
            print(study.table(), flush=True)
        out["patterns"][pattern] = runs
    return out


def _watermark_md(results: dict[str, Any]) -> list[str]:
    part = results["watermark"]
    lines = ["## 1. Watermark (trigger set) removal on digits", ""]
    for pattern, runs in part["patterns"].items():
        r0 = runs[0]
        lines += [
            f"### pattern `{pattern}`",
            "",
            f"{r0['n_trigger']} trigger points in {r0['n_train']} training rows; "
            f"{len(runs)} seeds. A 1-NN never trained on the triggers scores "
            f"{_ms([r['trigger_accuracy_without'] for r in runs])} on them "
            f"(1/classes = {r0['chance']:.3f}) and "
            f"{_ms([r['test_accuracy_without'] for r in runs])} on the test rows.",
            "",
            tables.block(f"attacks.watermark:{pattern}", results),
            "",
            "Trigger-set accuracy / clean test accuracy of the retrained 1-NN after removing "
            "the lowest-valued rows (mean over seeds):",
            "",
            tables.block(f"attacks.watermark_removal:{pattern}", results),
            "",
        ]
    return lines


# ---------------------------------------------------------------------------------- part 2
def _poison_data(name: str) -> Dataset:
    if name == "digits-1-vs-7":
        ds = load_dataset("digits")
        keep = np.flatnonzero(np.isin(ds.y, [1, 7]))
        return ds.take(keep)
    return load_dataset(name)


def poison(
    seeds: list[int], names: list[str], modes: list[str], methods: tuple[str, ...], steps: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"fractions": list(POISON_FRACTIONS), "cases": []}
    for name in names:
        data = _poison_data(name)
        for mode in modes:
            runs = []
            for seed in seeds:
                print(f"poison: {name} {mode} seed {seed}", flush=True)
                rest, test = data.split(0.25, random_state=seed)
                rest, target = rest.split(0.2, random_state=seed)
                train, valid = rest.split(0.25, random_state=seed)
                train, valid, target, test = _standardise(train, valid, target, test)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    study = poisoning_study(
                        train,
                        valid,
                        target,
                        test,
                        fractions=POISON_FRACTIONS,
                        budget=1.0,
                        steps=steps,
                        mode=mode,
                        model=LogisticRegression(C=1.0, max_iter=1000),
                        methods=methods,
                        params=PARAMS,
                        defence_fraction=0.05,
                        random_state=seed,
                    )
                print(study.table(), flush=True)
                runs.append(
                    {
                        **study.to_dict(),
                        "sizes": {
                            "train": train.n_samples,
                            "valid": valid.n_samples,
                            "target": target.n_samples,
                            "test": test.n_samples,
                        },
                    }
                )
            out["cases"].append({"data": name, "mode": mode, "runs": runs})
    return out


def _poison_md(results: dict[str, Any]) -> list[str]:
    lines = ["## 2. Influence-based poisoning of logistic regression", ""]
    for case in results["poison"]["cases"]:
        runs = case["runs"]
        sizes = runs[0]["sizes"]
        which = f"{case['data']}:{case['mode']}"
        lines += [
            f"### {case['data']}, mode `{case['mode']}`",
            "",
            f"{sizes['train']} training / {sizes['valid']} valuation / {sizes['target']} "
            f"target / {sizes['test']} test rows; {len(runs)} seeds; L-inf budget "
            f"{runs[0]['budget']:g} (standard deviations), {runs[0]['steps']} steps. "
            "Mean ± sd over seeds.",
            "",
            tables.block(f"attacks.poison:{which}", results),
            "",
            "Detection AUROC of the influence poison (low value = suspicious):",
            "",
            tables.block(f"attacks.detection:{which}", results),
            "",
            f"Defence: test error after dropping the lowest-valued "
            f"{runs[0]['defence_fraction']:.0%} of the rows and retraining (`remove-poison`: "
            "exactly the poisoned rows; `random`: as many random rows):",
            "",
            tables.block(f"attacks.defence:{which}", results),
            "",
        ]
    return lines


# ---------------------------------------------------------------------------------- report
def write_report(results: dict[str, Any], path: Path) -> None:
    lines = [
        "# Attacks as robustness studies: watermark removal and influence-based poisoning",
        "",
        "Commands: " + "; ".join(f"`{c}`" for c in results["commands"]) + "  ",
        f"Date: {results['date']}; Python {results['python']}; {results['machine']}; "
        f"{results.get('seconds', 0):.0f} s (last run).",
        "",
        "Setup and definitions: the docstring of `benchmarks/attacks.py`; the study functions "
        "are documented in `docs/attacks.md`. Every number is in the `.json` twin.",
        "",
    ]
    if "watermark" in results:
        lines += _watermark_md(results)
    if "poison" in results:
        lines += _poison_md(results)
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 seed; noise pattern; breast_cancer modify only; no loo or tmc-shapley",
    )
    parser.add_argument("--parts", default="watermark,poison")
    parser.add_argument("--steps", type=int, default=20, help="gradient rounds of the poison")
    parser.add_argument("--out", type=Path, default=HERE / "attacks.md")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    seeds = list(range(1 if args.quick else args.seeds))
    out_json = args.out.with_suffix(".json")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "commands": [" ".join(["python benchmarks/attacks.py", *sys.argv[1:]])],
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
    }

    def save() -> None:
        results["seconds"] = time.perf_counter() - started
        out_json.write_text(json.dumps(_json(results), indent=2) + "\n")
        write_report(json.loads(out_json.read_text()), args.out)

    if "watermark" in parts:
        patterns = ["noise"] if args.quick else ["noise", "patch"]
        methods = ("knn-shapley", "data-oob") if args.quick else WM_METHODS
        results["watermark"] = watermark(seeds, patterns, methods)
        save()
    if "poison" in parts:
        names = ["breast_cancer"] if args.quick else ["breast_cancer", "digits-1-vs-7"]
        modes = ["modify"] if args.quick else ["modify", "add"]
        methods = ("knn-shapley", "data-oob", "influence") if args.quick else POISON_METHODS
        results["poison"] = poison(seeds, names, modes, methods, args.steps)
        save()
    save()
    print(f"wrote {args.out} and {out_json}")


if __name__ == "__main__":
    main()
