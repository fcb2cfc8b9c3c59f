"""Exact games for ``estimators.py``: the utility of every subset of n = 12..18 data sources.

A game is a bundled scikit-learn dataset whose training rows are dealt into ``n`` groups (data
sources) of unequal size; all labels of a few groups are flipped (corrupted sources). The
utility of a coalition of groups is dataworth's own utility: the accuracy on held-out valuation
rows of ``LogisticRegression(max_iter=1000)`` trained on the rows of those groups, enumerated
for all ``2**n`` coalitions through ``BatchedUtility.evaluate_many`` (blocks of 4,096 masks).
dataworth's conventions hold: the empty coalition scores 0 (``default_score``), a coalition
whose rows all carry one label is scored by the constant predictor of that label.

Tables are cached as ``benchmarks/games/<name>.npz``: ``utility[code]`` is the utility of the
coalition whose players are the set bits of ``code`` (``code = sum of 2**i for i in S``), so a
lookup is one index operation. ``shapiq_runner.py`` (another interpreter) reads the same files.

Run as a script to (re)build the tables and check the exact Shapley values::

    python benchmarks/estimators_games.py [--rebuild] [--games NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

from dataworth.utility.base import UtilityBase

__all__ = [
    "GAMES",
    "GAMES_DIR",
    "GameSpec",
    "GameTable",
    "LookupGame",
    "exact_shapley",
    "load_or_build",
]

GAMES_DIR = Path(__file__).resolve().parent / "games"
#: Masks per ``evaluate_many`` call while enumerating a table.
BLOCK = 4096


@dataclass(frozen=True)
class GameSpec:
    """How one exact game is built (every field enters the cache key)."""

    name: str
    dataset: str  # "breast_cancer", "wine" or "digits"
    n: int  # players (groups of training rows)
    n_train: int  # training rows dealt into the n groups
    n_valid: int  # valuation rows (stratified)
    corrupted: tuple[int, ...]  # groups whose labels are all flipped
    seed: int = 0

    def key(self) -> str:
        """Hash of the spec and the format version: a cached table with another key is rebuilt."""
        text = json.dumps({**asdict(self), "format": 1}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: The games of the full run; ``--quick`` uses the first two.
GAMES: tuple[GameSpec, ...] = (
    GameSpec("breast_cancer-12", "breast_cancer", 12, 96, 200, (3, 8)),
    GameSpec("wine-13", "wine", 13, 104, 74, (2, 6, 11)),
    GameSpec("breast_cancer-14", "breast_cancer", 14, 112, 200, (1, 5, 12)),
    GameSpec("digits-15", "digits", 15, 150, 300, (4, 9)),
    GameSpec("wine-16", "wine", 16, 112, 66, (0, 7, 13)),
    GameSpec("breast_cancer-18", "breast_cancer", 18, 144, 200, (2, 9, 15)),
)
GAMES_BY_NAME = {g.name: g for g in GAMES}


@dataclass(frozen=True)
class GameTable:
    """A built game: the utility of every coalition, and how it was made."""

    spec: GameSpec
    utility: NDArray[np.float64]  # shape (2**n,), index = bitmask of the coalition
    group_sizes: NDArray[np.int64]
    description: str
    build_seconds: float
    path: Path

    @property
    def n(self) -> int:
        return self.spec.n


# --------------------------------------------------------------------------- building
def _load(name: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    loader = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def make_split(spec: GameSpec) -> dict[str, Any]:
    """Training rows, their groups (after flipping the corrupted groups' labels), valuation rows.

    Rows are split stratified (seed ``spec.seed``); group sizes are drawn once (between half and
    one and a half times the mean size, every group non-empty) and the shuffled training rows
    are dealt into them in order. A flipped binary label is ``1 - y``; a flipped multi-class label
    is a uniformly drawn other class. Features are standardised with training statistics.
    """
    from sklearn.model_selection import train_test_split

    X, y = _load(spec.dataset)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, train_size=spec.n_train, test_size=spec.n_valid, stratify=y, random_state=spec.seed
    )
    rng = np.random.default_rng(spec.seed + 1000 * spec.n)
    mean_size = spec.n_train / spec.n
    raw = rng.uniform(0.5, 1.5, size=spec.n) * mean_size
    sizes = np.maximum(1, np.floor(raw / raw.sum() * spec.n_train)).astype(np.int64)
    while sizes.sum() < spec.n_train:  # hand out the rounding remainder to the largest groups
        sizes[np.argmax(raw - sizes)] += 1
    while sizes.sum() > spec.n_train:
        sizes[np.argmax(sizes)] -= 1
    groups = np.repeat(np.arange(spec.n), sizes)
    order = rng.permutation(spec.n_train)
    X_tr, y_tr = X_tr[order], y_tr[order].copy()
    n_classes = int(np.unique(y).size)
    for g in spec.corrupted:
        rows = groups == g
        if n_classes == 2:
            y_tr[rows] = 1 - y_tr[rows]
        else:
            y_tr[rows] = (y_tr[rows] + rng.integers(1, n_classes, size=int(rows.sum()))) % (
                n_classes
            )
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0
    return {
        "X_train": (X_tr - mean) / std,
        "y_train": y_tr,
        "groups": groups,
        "X_valid": (X_va - mean) / std,
        "y_valid": y_va,
        "group_sizes": sizes,
        "n_classes": n_classes,
        "n_features": int(X.shape[1]),
    }


def masks_of(codes: NDArray[np.int64], n: int) -> NDArray[np.bool_]:
    """Boolean masks (len(codes), n) of bitmask codes: bit i of the code is player i."""
    return ((codes[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)


def codes_of(masks: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Bitmask codes of boolean masks (rows)."""
    masks = np.asarray(masks, dtype=bool)
    return masks.astype(np.int64) @ (np.int64(1) << np.arange(masks.shape[1], dtype=np.int64))


def build_table(spec: GameSpec) -> tuple[NDArray[np.float64], dict[str, Any], float]:
    """Enumerate the utility of every coalition with dataworth's batched utility."""
    from sklearn.linear_model import LogisticRegression

    from dataworth.api import make_utility
    from dataworth.data import Dataset

    s = make_split(spec)
    train = Dataset.from_arrays(s["X_train"], s["y_train"], groups=s["groups"])
    valid = Dataset.from_arrays(s["X_valid"], s["y_valid"])
    utility = make_utility(
        train, valid, model=LogisticRegression(max_iter=1000), by_group=True, device="numpy"
    )
    assert utility.n_players == spec.n
    assert np.array_equal(np.asarray(utility.player_names), np.arange(spec.n))
    start = time.perf_counter()
    table = np.empty(1 << spec.n)
    for lo in range(0, table.size, BLOCK):
        codes = np.arange(lo, min(lo + BLOCK, table.size), dtype=np.int64)
        table[lo : lo + codes.size] = utility.evaluate_many(masks_of(codes, spec.n))
    seconds = time.perf_counter() - start
    return table, s, seconds


def _describe(spec: GameSpec, s: dict[str, Any]) -> str:
    sizes = s["group_sizes"]
    return (
        f"{spec.dataset}: {spec.n_train} training rows in {spec.n} groups of "
        f"{int(sizes.min())}-{int(sizes.max())} rows, labels of groups "
        f"{', '.join(map(str, spec.corrupted))} flipped; {spec.n_valid} valuation rows "
        f"(stratified, seed {spec.seed}); {s['n_features']} standardised features, "
        f"{s['n_classes']} classes; LogisticRegression(max_iter=1000), accuracy"
    )


def load_or_build(spec: GameSpec, *, rebuild: bool = False, verbose: bool = True) -> GameTable:
    """The cached table of ``spec`` (rebuilt when missing, stale or ``rebuild``)."""
    path = GAMES_DIR / f"{spec.name}.npz"
    if path.exists() and not rebuild:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == spec.key():
                return GameTable(
                    spec=spec,
                    utility=z["utility"].astype(np.float64),
                    group_sizes=z["group_sizes"].astype(np.int64),
                    description=str(z["description"]),
                    build_seconds=float(z["build_seconds"]),
                    path=path,
                )
    if verbose:
        print(f"building {spec.name}: 2^{spec.n} = {1 << spec.n:,} coalitions ...", flush=True)
    table, s, seconds = build_table(spec)
    description = _describe(spec, s)
    GAMES_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        utility=table,
        n=np.int64(spec.n),
        group_sizes=s["group_sizes"],
        corrupted=np.asarray(spec.corrupted, dtype=np.int64),
        key=np.str_(spec.key()),
        name=np.str_(spec.name),
        description=np.str_(description),
        build_seconds=np.float64(seconds),
    )
    tmp.replace(path)
    if verbose:
        print(f"  {seconds:.1f} s, {path.stat().st_size / 1024:.0f} KiB", flush=True)
    return GameTable(spec, table, s["group_sizes"], description, seconds, path)


# --------------------------------------------------------------------------- exact values
def shapley_weights(n: int) -> NDArray[np.float64]:
    """``w(k) = k! (n-k-1)! / n! = 1 / (n C(n-1, k))`` for ``k = 0..n-1``."""
    k = np.arange(n, dtype=np.float64)
    return np.exp(gammaln(k + 1) + gammaln(n - k) - gammaln(n + 1))


def popcounts(n: int) -> NDArray[np.int64]:
    """Number of set bits of every code ``0 .. 2**n - 1``."""
    counts = np.zeros(1 << n, dtype=np.int64)
    for i in range(n):
        counts[1 << i : 1 << (i + 1)] = counts[: 1 << i] + 1
    return counts


def exact_shapley(utility: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Exact Shapley values from a full table (vectorised over coalitions, a loop over players).

    ``phi_i = sum over S not containing i of w(|S|) (u(S + i) - u(S))``.
    """
    codes = np.arange(1 << n, dtype=np.int64)
    sizes = popcounts(n)
    w = shapley_weights(n)
    phi = np.empty(n)
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        phi[i] = np.dot(w[sizes[without]], utility[without | (1 << i)] - utility[without])
    return phi


# --------------------------------------------------------------------------- lookup game
class LookupGame(UtilityBase):
    """A dataworth utility that looks coalitions up in a full table (O(1) per coalition).

    Every coalition looked up counts one evaluation (``n_evaluations``), the empty one included,
    whichever method asks (``__call__``, ``evaluate_many``, ``evaluate_prefixes``), so a run's
    count can be checked against its budget.
    """

    def __init__(self, utility: ArrayLike, n: int, name: str = "lookup") -> None:
        table = np.asarray(utility, dtype=np.float64)
        if table.shape != (1 << n,):
            raise ValueError(f"a table of {n} players needs {1 << n} entries; got {table.shape}.")
        self.table = table
        self.name = name
        self.n_players = int(n)
        self.player_names = np.arange(n)
        self.by_group = True
        self.n_failures = 0
        self.n_evaluations = 0
        self._bits = np.int64(1) << np.arange(n, dtype=np.int64)

    def fingerprint_parts(self) -> dict[str, str]:
        return {"utility": str(joblib.hash(("LookupGame", self.name, self.table)))}

    def __call__(self, subset: ArrayLike) -> float:
        self.n_evaluations += 1
        return float(self.table[int(self.mask_of(subset).astype(np.int64) @ self._bits)])

    def evaluate_many(self, subsets: Any) -> NDArray[np.float64]:
        if isinstance(subsets, np.ndarray) and subsets.dtype == bool and subsets.ndim == 2:
            masks = subsets
        else:
            masks = np.array([self.mask_of(s) for s in subsets], dtype=bool)
            masks = masks.reshape(-1, self.n_players)
        if masks.shape[1] != self.n_players:
            raise ValueError(f"masks must have {self.n_players} columns; got {masks.shape[1]}.")
        self.n_evaluations += masks.shape[0]
        return self.table[masks.astype(np.int64) @ self._bits]

    def evaluate_prefixes(
        self,
        order: NDArray[np.intp],
        *,
        truncate_below: float | None = None,
        total: float | None = None,
    ) -> NDArray[np.float64]:
        """As ``UtilityBase.evaluate_prefixes`` (same truncation rule), vectorised; only the
        prefixes up to the truncation point are counted."""
        order = np.asarray(order, dtype=np.intp)
        codes = np.concatenate([[0], np.cumsum(self._bits[order])])
        out = self.table[codes]
        used = out.size
        if truncate_below is not None and total is not None:
            hit = np.flatnonzero(np.abs(total - out[1:]) < truncate_below)
            if hit.size:
                k = int(hit[0]) + 1
                out[k + 1 :] = out[k]
                used = k + 1
        self.n_evaluations += used
        return out


# --------------------------------------------------------------------------- checks
def check_against_bruteforce(table: GameTable) -> float:
    """max |exact_shapley - dataworth.testing.games.exact_semivalue_bruteforce| on one game."""
    from dataworth.testing.games import exact_semivalue_bruteforce, shapley_weight

    game = LookupGame(table.utility, table.n, table.spec.name)
    ref = exact_semivalue_bruteforce(game, shapley_weight)
    return float(np.max(np.abs(exact_shapley(table.utility, table.n) - ref)))


def efficiency_gap(table: GameTable, phi: NDArray[np.float64]) -> float:
    """|sum(phi) - (u(N) - u(empty))|."""
    return abs(math.fsum(phi.tolist()) - (table.utility[-1] - table.utility[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", nargs="+", default=[g.name for g in GAMES])
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--bruteforce", default="breast_cancer-12", help="game checked by brute force"
    )
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    for name in args.games:
        t = load_or_build(GAMES_BY_NAME[name], rebuild=args.rebuild)
        phi = exact_shapley(t.utility, t.n)
        print(
            f"{name}: u(N)={t.utility[-1]:.4f} u(empty)={t.utility[0]:.4f} "
            f"efficiency gap {efficiency_gap(t, phi):.2e}; phi={np.round(phi, 4).tolist()}"
        )
        if name == args.bruteforce:
            print(f"  max |exact - exact_semivalue_bruteforce| = {check_against_bruteforce(t):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
