"""Throughput of batched logistic regression on each back end: numpy, torch on the CPU, CUDA.

Usage::

    python benchmarks/gpu_logistic.py --batches 256,1024,4096  # numpy, torch (CPU), CUDA if any
    python benchmarks/gpu_logistic.py --devices numpy,cuda --out benchmarks/gpu_logistic-cuda.json
    python benchmarks/gpu_logistic.py --tmc 10000  # also a TMC-Shapley run per device
    python benchmarks/gpu_logistic.py --render benchmarks/gpu_logistic.json  # only the markdown

``dataworth.utility.batched.logistic`` has one solver, written against the array API, which runs
on numpy arrays (``device="numpy"``) or torch tensors (``"cpu"``, ``"cuda[:N]"``). This measures
its fits per second on two binary problems, ``LogisticRegression()``, features standardised:

* ``200x30``: scikit-learn's breast cancer data (seeded shuffle), 200 training rows x 30
  features, the other 369 rows for validation;
* ``1000x64``: ``make_classification(1500, 64, n_informative=16, random_state=0)``, 1,000
  training rows x 64 features, 500 for validation.

A measurement is ``fit_predict`` on a batch of random subsets (sizes uniform in 2%..95% of the
rows, both classes present; predictions on the validation rows; numpy arrays in and out, so
every time includes the transfers), best of ``--repeats`` after a warm-up call (warm starts,
CUDA kernels, allocator). Batches grow; once one call takes more than ``--budget`` seconds, the
larger batches of that device and problem are skipped (recorded as such). ``--tmc N`` adds a
TMC-Shapley run (``N`` permutations, tolerance 0.01, seed 0, one process) on the 200x30 problem
per device: wall time, subsets fitted, subsets per trainer call, and how far its values are from
numpy's.

Every number, the versions, the thread settings and the GPU names go to a JSON file (``--out``),
and a markdown table rendered from that JSON beside it (same name, ``.md``). Set
``OMP_NUM_THREADS`` for comparable CPU figures. CUDA needs a CUDA build of torch (``pip install
"dataworth[torch]"`` on a machine with an NVIDIA GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression

import dataworth
from dataworth.data import Dataset
from dataworth.utility.batched import BatchedUtility
from dataworth.utility.batched.logistic import make_trainer

HERE = Path(__file__).resolve().parent
PROBLEMS = {
    "200x30": "breast cancer, 200 training rows x 30 features, 369 validation rows",
    "1000x64": "make_classification, 1,000 training rows x 64 features, 500 validation rows",
}


def problem(name: str) -> tuple[Dataset, Dataset]:
    """Training and validation data of ``name``, standardised with the training statistics."""
    if name == "200x30":
        X, y = load_breast_cancer(return_X_y=True)
        order = np.random.default_rng(0).permutation(y.size)
        X, y, n = X[order], y[order], 200
    else:
        X, y = make_classification(1500, 64, n_informative=16, random_state=0)
        n = 1000
    mean, std = X[:n].mean(axis=0), X[:n].std(axis=0)
    X = (X - mean) / std
    return Dataset(X[:n], y[:n]), Dataset(X[n:], y[n:])


def subsets(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` random 0/1 weight rows with both classes present."""
    rng = np.random.default_rng(seed)
    W = rng.random((size, y.size)) < rng.uniform(0.02, 0.95, size=(size, 1))
    W[:, np.flatnonzero(y == 0)[0]] = W[:, np.flatnonzero(y == 1)[0]] = True
    return W.astype(np.float64)


def trainer_device(device: str) -> str:
    """The trainer's device for a benchmark device name ("torch" is torch on the CPU)."""
    return "cpu" if device == "torch" else device


def measure(
    device: str, name: str, batches: list[int], dtype: str, repeats: int, budget: float
) -> list[dict[str, Any]]:
    """Fits per second of ``device`` on problem ``name``, batch by batch."""
    train, valid = problem(name)
    trainer = make_trainer(
        LogisticRegression(), train.X, train.y, 2, trainer_device(device), dtype=dtype
    )
    trainer.fit_predict(subsets(train.y, 64, seed=0), valid.X)  # warm-up
    rows: list[dict[str, Any]] = []
    slow = False
    for batch in batches:
        row: dict[str, Any] = {"problem": name, "device": device, "batch": batch}
        if slow:
            rows.append({**row, "skipped": f"a smaller batch took more than {budget:g} s"})
            continue
        W = subsets(train.y, batch, seed=batch)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            trainer.fit_predict(W, valid.X)  # returns numpy: includes the device synchronisation
            times.append(time.perf_counter() - start)
            if times[-1] > budget:
                break
        slow = max(times) > budget
        rows.append({**row, "seconds": min(times), "fits_per_second": batch / min(times)})
        print(
            f"{name} {device:>8} {batch:>7,} subsets: {batch / min(times):>10,.0f} fits/s",
            flush=True,
        )
    return rows


class Counting:
    """Wraps a trainer and counts its calls and the subsets fitted."""

    def __init__(self, trainer: Any) -> None:
        self.trainer, self.calls, self.fits = trainer, 0, 0

    def fit_predict(self, weights: np.ndarray, X_eval: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.fits += weights.shape[0]
        return self.trainer.fit_predict(weights, X_eval)


def tmc(device: str, n_perm: int) -> dict[str, Any]:
    """A TMC-Shapley run on the 200x30 problem with the trainer on ``device``."""
    train, valid = problem("200x30")
    utility = BatchedUtility(LogisticRegression(), train, valid, device=device)
    counter = Counting(utility.trainer)
    utility.trainer = counter
    method = dataworth.get_method("tmc-shapley")(budget=n_perm, tolerance=0.01, random_state=0)
    start = time.perf_counter()
    values = method.fit(utility).result_.values
    seconds = time.perf_counter() - start
    return {
        "device": device,
        "permutations": n_perm,
        "seconds": seconds,
        "fits": counter.fits,
        "calls": counter.calls,
        "values": values.tolist(),
    }


def environment(devices: list[str]) -> dict[str, Any]:
    """Versions, CPU and thread settings, and the name of each CUDA device used."""
    import array_api_compat
    import sklearn

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "array-api-compat": array_api_compat.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min": os.getloadavg()[0],  # other work on the machine at the start
    }
    if any(d != "numpy" for d in devices):
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        env["gpus"] = {
            d: torch.cuda.get_device_name(torch.device(d)) for d in devices if d.startswith("cuda")
        }
    return env


def render(record: dict[str, Any]) -> str:
    """The markdown report of a JSON record written by this script."""
    env, settings = record["environment"], record["settings"]
    devices = settings["devices"]
    gpus = env.get("gpus") or {}
    where = ", ".join(f"{d}: {name}" for d, name in gpus.items()) or "no GPU"
    lines = [
        "# Batched logistic regression: fits per second on each back end",
        "",
        f"`{record['command']}` ({where}; {env['cpus']} CPUs, load average "
        f"{env['load_average_1min']:.1f} at the start, OMP_NUM_THREADS="
        f"{env['OMP_NUM_THREADS'] or 'unset'}, torch threads {env.get('torch_threads', '-')}; "
        f"python {env['python']}, numpy {env['numpy']}, torch {env.get('torch', '-')}, "
        f"scikit-learn {env['scikit-learn']}, array-api-compat {env['array-api-compat']}).",
        "",
        f"`LogisticRegression()`, {settings['dtype']}; `fit_predict` on a batch of random "
        "subsets (2%..95% of the rows), predictions on the validation rows, numpy in and out; "
        f"best of {settings['repeats']} calls after a warm-up. `torch` is torch on the CPU.",
    ]
    for name, what in PROBLEMS.items():
        rows = [r for r in record["fits"] if r["problem"] == name]
        if not rows:
            continue
        lines += ["", f"## {name}: {what}", ""]
        lines += ["| subsets per call | " + " | ".join(f"{d} fits/s" for d in devices) + " |"]
        lines += ["|---:|" + "---:|" * len(devices)]
        for batch in settings["batches"]:
            cells = []
            for d in devices:
                hit = [r for r in rows if r["device"] == d and r["batch"] == batch]
                ok = hit and "fits_per_second" in hit[0]
                cells.append(f"{hit[0]['fits_per_second']:,.0f}" if ok else "-")
            lines.append(f"| {batch:,} | " + " | ".join(cells) + " |")
    runs = record.get("tmc") or []
    if runs:
        lines += ["", f"## TMC-Shapley on 200x30, {runs[0]['permutations']:,} permutations", ""]
        lines += [
            "| device | seconds | subsets fitted | subsets per call | fits/s | "
            "max abs. difference from numpy |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        ref = next((np.array(r["values"]) for r in runs if r["device"] == "numpy"), None)
        for r in runs:
            diff = "-" if ref is None else f"{np.abs(np.array(r['values']) - ref).max():.1e}"
            lines.append(
                f"| {r['device']} | {r['seconds']:.1f} | {r['fits']:,} | "
                f"{r['fits'] / max(r['calls'], 1):.1f} | {r['fits'] / r['seconds']:,.0f} | {diff} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--devices",
        default=None,
        help="comma-separated: numpy, torch (the CPU), cuda, cuda:N; default "
        "numpy,torch and cuda when available",
    )
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument(
        "--batches",
        default="1024,4096,16384,65536",
        help="comma-separated batch sizes (subsets per fit_predict call)",
    )
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds per call beyond which larger batches are skipped",
    )
    parser.add_argument("--tmc", type=int, default=0, help="TMC-Shapley permutations (0: none)")
    parser.add_argument("--out", type=Path, default=HERE / "gpu_logistic.json")
    parser.add_argument(
        "--render", type=Path, default=None, help="only write the markdown of this JSON record"
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        args.render.with_suffix(".md").write_text(render(json.loads(args.render.read_text())))
        return 0
    if args.devices is None:
        devices = ["numpy", "torch"]
        try:
            import torch

            devices += ["cuda"] if torch.cuda.is_available() else []
        except ImportError:
            devices = ["numpy"]
    else:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    record: dict[str, Any] = {
        "benchmark": "gpu_logistic",
        "command": " ".join(["python", "benchmarks/gpu_logistic.py", *sys.argv[1:]]),
        "environment": environment(devices),
        "settings": {
            "devices": devices,
            "problems": problems,
            "batches": batches,
            "dtype": args.dtype,
            "repeats": args.repeats,
            "budget_s": args.budget,
        },
        "fits": [],
        "tmc": [],
    }
    for name in problems:
        for device in devices:
            record["fits"] += measure(device, name, batches, args.dtype, args.repeats, args.budget)
    if args.tmc > 0:
        record["tmc"] = [tmc(device, args.tmc) for device in devices]
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render(record))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
