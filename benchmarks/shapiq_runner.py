"""shapiq's Shapley-value approximators on exact game tables (run by the shapiq interpreter).

shapiq 1.8 needs Python >= 3.12, so it lives in its own virtual environment (``.venv-shapiq``,
built by ``benchmarks/setup_shapiq.sh``) and ``estimators.py`` runs this file there as a
subprocess. It imports only numpy and shapiq (never dataworth) and reads the tables written by
``estimators_games.py``: ``utility[code]`` is the utility of the coalition whose players are the
set bits of ``code``.

Each table is wrapped as a ``shapiq.Game`` whose ``value_function`` looks coalitions up (and
counts them); every approximator runs ``approximate(budget=..., game=...)`` for index ``"SV"`` at
every budget and seed, and its first-order values (player order) are written to JSON with the
wall seconds and the number of coalitions it evaluated. With ``--exact-check`` the values of
shapiq's ``ExactComputer`` are written too (and, to pin down shapiq's empty-set convention, those
of the same game shifted by +0.25 with and without normalisation).

    .venv-shapiq/bin/python benchmarks/shapiq_runner.py --games benchmarks/games/wine-13.npz \
        --budget-factors 10 50 200 --seeds 0 1 2 --out /tmp/shapiq.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import traceback
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

#: Approximators run by default: (shapiq class name, extra constructor arguments).
DEFAULT_APPROXIMATORS = (
    "RegressionMSR",
    "SVARM",
    "StratifiedSamplingSV",
    "KernelSHAP",
    "UnbiasedKernelSHAP",
    "LeverageSHAP",
    "OddSHAP",
    "PolySHAP",
    "PermutationSamplingSV",
    "OwenSamplingSV",
)
#: Constructor arguments beyond ``n`` and ``random_state`` (the shapiq 1.8 defaults otherwise).
EXTRA_KWARGS: dict[str, dict[str, Any]] = {
    "RegressionMSR": {"index": "SV"},  # proxy_model="xgboost" (its default)
    "SVARM": {"index": "SV"},
}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def make_game_class() -> type:
    import shapiq

    class LookupGame(shapiq.Game):
        """A shapiq game over a full table of coalition values (index = bitmask)."""

        def __init__(
            self, table: np.ndarray, n: int, *, shift: float = 0.0, normalize: bool = True
        ) -> None:
            self.table = np.asarray(table, dtype=np.float64) + shift
            self.bits = np.int64(1) << np.arange(n, dtype=np.int64)
            self.n_calls = 0
            empty = float(self.table[0])
            super().__init__(
                n_players=n,
                normalize=normalize,
                normalization_value=empty if normalize else None,
            )

        def value_function(self, coalitions: np.ndarray) -> np.ndarray:
            coalitions = np.asarray(coalitions, dtype=bool).reshape(-1, self.n_players)
            self.n_calls += coalitions.shape[0]
            return self.table[coalitions.astype(np.int64) @ self.bits]

    return LookupGame


def first_order(iv: Any, n: int) -> list[float]:
    values = np.asarray(iv.get_n_order_values(1), dtype=np.float64)
    assert values.shape == (n,)
    return values.tolist()


def exact_check(game_cls: type, table: np.ndarray, n: int) -> dict[str, Any]:
    """ExactComputer's SV on the game, and on the game + 0.25 (normalised and not)."""
    import shapiq

    out: dict[str, Any] = {}
    for label, shift, normalize in (
        ("table", 0.0, True),
        ("shifted_normalized", 0.25, True),
        ("shifted_raw", 0.25, False),
    ):
        game = game_cls(table, n, shift=shift, normalize=normalize)
        iv = shapiq.ExactComputer(game, n_players=n)("SV")
        values = first_order(iv, n)
        out[label] = {
            "shift": shift,
            "normalize": normalize,
            "values": values,
            "sum": math.fsum(values),
            "baseline_value": float(iv.baseline_value),
            "empty_value_seen_by_shapiq": float(game(np.zeros((1, n), dtype=bool))[0]),
            "full_value_seen_by_shapiq": float(game(np.ones((1, n), dtype=bool))[0]),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="shapiq approximators on exact game tables")
    parser.add_argument("--games", nargs="+", required=True, help=".npz tables")
    parser.add_argument("--budget-factors", nargs="+", type=int, default=[10, 50, 200])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--approximators", nargs="+", default=list(DEFAULT_APPROXIMATORS))
    parser.add_argument("--exact-check", nargs="*", default=[], help="game names to check")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import shapiq
    from shapiq import approximator as approximators

    game_cls = make_game_class()
    record: dict[str, Any] = {
        "python": platform.python_version(),
        "versions": {
            k: _version(k)
            for k in ("shapiq", "numpy", "scipy", "scikit-learn", "xgboost-cpu", "lightgbm")
        },
        "approximators": {},
        "runs": [],
        "exact_check": {},
        "warnings": {},
    }
    classes: dict[str, Any] = {}
    for name in args.approximators:
        cls = getattr(approximators, name, None)
        if cls is None:
            record["approximators"][name] = {"available": False, "error": "not in shapiq 1.8"}
        else:
            classes[name] = cls
            record["approximators"][name] = {
                "available": True,
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "kwargs": EXTRA_KWARGS.get(name, {}),
            }

    for path in args.games:
        with np.load(path, allow_pickle=False) as z:
            table = z["utility"].astype(np.float64)
            n = int(z["n"])
            game_name = str(z["name"])
        print(f"shapiq {shapiq.__version__}: {game_name} (n={n})", flush=True)
        if game_name in args.exact_check:
            record["exact_check"][game_name] = exact_check(game_cls, table, n)
        for name, cls in classes.items():
            for factor in args.budget_factors:
                budget = factor * n
                for seed in args.seeds:
                    game = game_cls(table, n)
                    row: dict[str, Any] = {
                        "game": game_name,
                        "approximator": name,
                        "budget_factor": factor,
                        "budget": budget,
                        "seed": seed,
                    }
                    try:
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            approx = cls(n=n, random_state=seed, **EXTRA_KWARGS.get(name, {}))
                            start = time.perf_counter()
                            iv = approx.approximate(budget=budget, game=game)
                            row["seconds"] = time.perf_counter() - start
                        row["values"] = first_order(iv, n)
                        row["evaluations"] = game.n_calls
                        row["index"] = str(iv.index)
                        row["baseline_value"] = float(iv.baseline_value)
                        for w in caught:
                            msg = f"{w.category.__name__}: {w.message}"
                            record["warnings"].setdefault(name, [])
                            if msg not in record["warnings"][name]:
                                record["warnings"][name].append(msg)
                    except Exception as exc:  # recorded, never skipped silently
                        row["error"] = f"{type(exc).__name__}: {exc}"
                        row["traceback"] = traceback.format_exc(limit=3)
                    record["runs"].append(row)
    Path(args.out).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
