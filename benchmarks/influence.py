"""Influence functions on a small MLP: dataworth and pyDVL side by side, in one process.

The issue's setting: an MLP 64-32-10 (tanh) trained on 1,000 rows of scikit-learn's digits,
influence of every training row on the loss of 400 test rows (a 1,000 x 400 matrix), the same
damping for every method. For each inverse-Hessian method of each library: wall time (fit of the
method plus the whole matrix) and the Pearson correlation of the matrix with dataworth's direct
method (explicit Hessian). pyDVL's direct method is checked against it too.

    .venv-bench/bin/python benchmarks/influence.py            # every method, damping 1e-3
    .venv-bench/bin/python benchmarks/influence.py --quick    # 300 x 100 rows, a smoke run
    .venv-bench/bin/python benchmarks/influence.py --damping 0.1 --methods arnoldi,ekfac

Writes one JSON per run (``--out``; default ``benchmarks/influence-damping-<d>[-quick].json``)
and prints its table. ``benchmarks/influence.md`` and the README show the runs that
``benchmarks/tables.py`` lists (``INFLUENCE_RUNS``), rendered from their JSON by
``python benchmarks/tables.py``. Run in the benchmark environment (``bash benchmarks/setup.sh``);
without pyDVL only dataworth's rows are filled. One BLAS/torch thread per process unless
``--threads`` says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402


def make_problem(n_train: int, n_test: int, seed: int) -> dict[str, Any]:
    """Standardised digits, an MLP trained to (near) stationarity with full-batch L-BFGS."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    X = X[idx].astype(np.float64)
    y = y[idx]
    mean, std = X[:n_train].mean(0), X[:n_train].std(0)
    X = (X - mean) / np.where(std > 0, std, 1.0)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)
    ).double()
    Xt = torch.as_tensor(X[:n_train])
    yt = torch.as_tensor(y[:n_train], dtype=torch.long)
    weight_decay = 1e-3
    optimiser = torch.optim.LBFGS(model.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xt), yt)
        loss = loss + 0.5 * weight_decay * sum((p**2).sum() for p in model.parameters())
        loss.backward()
        return loss

    for _ in range(4):
        optimiser.step(closure)
    model.eval()
    for p in model.parameters():
        p.grad = None
    accuracy = float(
        (
            model(torch.as_tensor(X[n_train : n_train + n_test])).argmax(1).numpy()
            == y[n_train : n_train + n_test]
        ).mean()
    )
    return {
        "model": model,
        "X_train": X[:n_train],
        "y_train": y[:n_train],
        "X_test": X[n_train : n_train + n_test],
        "y_test": y[n_train : n_train + n_test],
        "weight_decay": weight_decay,
        "test_accuracy": accuracy,
        "n_params": sum(p.numel() for p in model.parameters()),
    }


# ------------------------------------------------------------------------------------ dataworth
def dataworth_methods(rank: int) -> dict[str, tuple[Any, str | None]]:
    """Each row: dataworth's solver and the pyDVL method it is compared with (same settings)."""
    from dataworth.influence import (
        ArnoldiSolver,
        CGSolver,
        DirectSolver,
        EKFACSolver,
        LiSSASolver,
    )

    return {
        "direct": (DirectSolver(), "direct"),
        "cg": (CGSolver(), "cg"),
        # pyDVL's LiSSA runs full-batch here (one DataLoader batch) for up to 1000 iterations
        # and stops at a relative residual of 1e-4: the same settings.
        "lissa": (LiSSASolver(batch_size=None, depth=1000, rtol=1e-4, random_state=0), "lissa"),
        "arnoldi": (ArnoldiSolver(rank=rank, random_state=0), "arnoldi"),
        "arnoldi-smallest": (
            ArnoldiSolver(rank=rank, complement="smallest", random_state=0),
            None,
        ),
        "ekfac": (EKFACSolver(), "ekfac"),
    }


def run_dataworth(problem: dict[str, Any], solver: Any, damping: float) -> np.ndarray:
    from dataworth.influence import TorchInfluence, influence_matrix

    influence = TorchInfluence(
        problem["model"],
        problem["X_train"],
        problem["y_train"],
        loss="cross-entropy",
        solver=solver,
        weight_decay=problem["weight_decay"],
        damping=damping,
    )
    return influence_matrix(influence, problem["X_test"], problem["y_test"])


# ---------------------------------------------------------------------------------------- pyDVL
def pydvl_methods(reg: float, rank: int) -> dict[str, Callable[[Any, Any], Any]] | None:
    try:
        from pydvl.influence.torch import (
            ArnoldiInfluence,
            CgInfluence,
            DirectInfluence,
            EkfacInfluence,
            LissaInfluence,
        )
    except ImportError:
        return None
    return {
        "direct": lambda m, loss: DirectInfluence(m, loss, regularization=reg),
        "cg": lambda m, loss: CgInfluence(m, loss, regularization=reg),
        "lissa": lambda m, loss: LissaInfluence(m, loss, regularization=reg),
        "arnoldi": lambda m, loss: ArnoldiInfluence(m, loss, regularization=reg, rank=rank),
        "ekfac": lambda m, loss: EkfacInfluence(m, hessian_regularization=reg),
    }


def run_pydvl(
    problem: dict[str, Any], factory: Callable[[Any, Any], Any], float32: bool = False
) -> np.ndarray:
    """pyDVL's influence matrix; ``float32`` for its EK-FAC, which fails on float64 models."""
    import copy

    from torch.utils.data import DataLoader, TensorDataset

    model = problem["model"]
    dtype = torch.float32 if float32 else torch.float64
    if float32:
        model = copy.deepcopy(model).float()

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(output, target)

    Xt = torch.as_tensor(problem["X_train"], dtype=dtype)
    yt = torch.as_tensor(problem["y_train"], dtype=torch.long)
    method = factory(model, loss)
    loader = DataLoader(TensorDataset(Xt, yt), batch_size=len(yt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = method.fit(loader)
        matrix = method.influences(
            torch.as_tensor(problem["X_test"], dtype=dtype),
            torch.as_tensor(problem["y_test"], dtype=torch.long),
            Xt,
            yt,
        )
    # pyDVL returns (n_test, n_train); dataworth (n_train, n_test).
    return np.asarray(matrix.detach().double().numpy(), dtype=np.float64).T


# ----------------------------------------------------------------------------------------- main
def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 x 100 rows instead.")
    parser.add_argument("--damping", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=100, help="Arnoldi rank.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON (default: influence-damping-<d>[-quick].json)"
    )
    parser.add_argument(
        "--methods",
        default=None,
        help=f"Comma-separated subset of {', '.join(dataworth_methods(1))} (direct always runs).",
    )
    parser.add_argument("--no-pydvl", action="store_true", help="dataworth's rows only.")
    args = parser.parse_args(argv)
    known = dataworth_methods(args.rank)
    chosen = None if args.methods is None else {"direct", *args.methods.split(",")}
    if chosen is not None and (unknown := sorted(chosen - set(known))):
        # a name with a comma in it once split into two unknown names and its row vanished
        parser.error(f"unknown methods {unknown}; choose from {', '.join(known)}")
    if args.out is None:
        args.out = HERE / f"influence-damping-{args.damping:g}{'-quick' if args.quick else ''}.json"
    n_train, n_test = (300, 100) if args.quick else (1000, 400)
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    with threadpool_limits(args.threads):
        problem = make_problem(n_train, n_test, args.seed)
        print(
            f"MLP 64-32-10, {problem['n_params']} parameters, {n_train} train x {n_test} test, "
            f"test accuracy {problem['test_accuracy']:.3f}, damping {args.damping:g}",
            flush=True,
        )
        reference: np.ndarray | None = None
        # pyDVL's Hessian is that of the loss it is given plus its regularisation: the weight
        # decay of the training objective goes into the regularisation, so H is the same.
        peers = (
            None
            if args.no_pydvl
            else pydvl_methods(args.damping + problem["weight_decay"], args.rank)
        )
        for name, (solver, peer) in known.items():
            if chosen is not None and name not in chosen:
                continue
            started = time.perf_counter()
            matrix = run_dataworth(problem, solver, args.damping)
            seconds = time.perf_counter() - started
            if reference is None:
                reference = matrix
            row: dict[str, Any] = {
                "method": name,
                "dataworth_s": seconds,
                "dataworth_pearson": pearson(matrix, reference),
            }
            if peers is not None and peer is not None:
                started = time.perf_counter()
                try:
                    theirs = run_pydvl(problem, peers[peer], float32=peer == "ekfac")
                    row["pydvl_s"] = time.perf_counter() - started
                    # pyDVL's "up" influence has the opposite sign to Koh & Liang's I.
                    row["pydvl_sign"] = float(np.sign(pearson(theirs, reference)))
                    row["pydvl_pearson"] = abs(pearson(theirs, reference))
                except Exception as exc:  # report, do not hide, a peer's failure
                    row["pydvl_error"] = f"{type(exc).__name__}: {exc}"[:200]
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {
        "rows": rows,
        "args": {**vars(args), "out": str(args.out)},
        "command": " ".join(
            ["python benchmarks/influence.py", *(shlex.quote(a) for a in sys.argv[1:])]
        ),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.processor() or platform.machine(),
        "problem": {
            "n_train": n_train,
            "n_test": n_test,
            "n_params": problem["n_params"],
            "test_accuracy": problem["test_accuracy"],
            "weight_decay": problem["weight_decay"],
        },
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(tables.influence_run(json.loads(args.out.read_text())))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
