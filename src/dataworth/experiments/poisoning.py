"""The influence-poisoning study: held-out error as poisoned rows grow, and valuation as defence.

:func:`poisoning_study` poisons a growing share of the training rows with
:func:`dataworth.apps.poison.craft_poison` (next to a random perturbation of the same budget),
values every poisoned set with registered methods and the self-influence, and measures how well
each flags the poison (AUROC) and what removing the flagged rows gives back. It measures a
model's fragility and a defence; it needs white-box access to the model, the training data and
the target.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.apps.clean import detection_recall
from dataworth.apps.poison import craft_poison, target_loss
from dataworth.apps.removal import n_removed
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.experiments._valuing import fast_values, self_influence_values
from dataworth.models import default_model
from dataworth.ranking import as_values, detection_auroc, removal_order
from dataworth.result import ValuationResult
from dataworth.utility.model import fit_and_score

__all__ = ["DEFAULT_POISON_FRACTIONS", "PoisoningStudy", "poisoning_study"]

_F64 = NDArray[np.float64]

#: 0.5%, 1%, 2% and 3% of the training rows.
DEFAULT_POISON_FRACTIONS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03)


@dataclass(frozen=True, eq=False)
class PoisoningStudy:
    """Held-out error under poisoning, detection of the poison, and the defence.

    Attributes
    ----------
    attack_rows : list of dict
        One per (``k``, attack): ``k``, ``fraction`` (of the clean training rows), ``attack``
        (``"none"`` for the clean model, ``"influence"``, ``"random"``), ``target_loss``,
        ``target_error`` and ``test_error`` of the model trained on the poisoned data.
    detection_rows : list of dict
        One per (``k``, method) for the influence attack: ``auroc`` of ``-value`` as a detector
        of the poisoned rows, ``recall`` (share of the poison among the lowest
        ``defence_fraction`` of rows), ``test_error_after`` (held-out error after removing those
        rows and retraining), with ``test_error_poisoned`` next to it, and ``seconds``.
        ``method`` is a valuation method or ``"self-influence"``; the pseudo-methods
        ``"remove-poison"`` (oracle: exactly the poisoned rows) and ``"random"`` (as many random
        rows, mean over draws) are the references.
    budget : float
    mode, metric : str
    n_train : int
    defence_fraction : float
    """

    attack_rows: list[dict[str, Any]]
    detection_rows: list[dict[str, Any]]
    budget: float
    mode: str
    n_train: int
    defence_fraction: float
    steps: int
    metric: str = "error (1 - accuracy)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "budget": self.budget,
            "mode": self.mode,
            "steps": self.steps,
            "n_train": self.n_train,
            "defence_fraction": self.defence_fraction,
            "metric": self.metric,
            "attack": [dict(r) for r in self.attack_rows],
            "detection": [dict(r) for r in self.detection_rows],
        }

    def table(self) -> str:
        """Two plain-text tables: error as ``k`` grows, then detection and defence."""
        lines = [
            f"poisoning ({self.mode}, L-inf budget {self.budget:g}, {self.steps} steps) of "
            f"{self.n_train} training rows",
            f"{'k':>4} {'share':>6}  {'attack':<10} {'target loss':>11} {'target err':>10} "
            f"{'test err':>8}",
        ]
        for r in self.attack_rows:
            lines.append(
                f"{r['k']:>4} {r['fraction']:>6.1%}  {r['attack']:<10} {r['target_loss']:>11.4f} "
                f"{r['target_error']:>10.3f} {r['test_error']:>8.3f}"
            )
        lines.append("")
        lines.append(
            f"detection of the influence poison; defence = drop the lowest "
            f"{self.defence_fraction:.0%} of rows and retrain"
        )
        lines.append(
            f"{'k':>4}  {'method':<15} {'AUROC':>6} {'recall':>6} {'test err':>8} {'after':>6}"
        )
        for r in self.detection_rows:
            auroc = "" if np.isnan(r["auroc"]) else f"{r['auroc']:.3f}"
            recall = "" if np.isnan(r["recall"]) else f"{r['recall']:.2f}"
            lines.append(
                f"{r['k']:>4}  {r['method']:<15} {auroc:>6} {recall:>6} "
                f"{r['test_error_poisoned']:>8.3f} {r['test_error_after']:>6.3f}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    out = [float(f) for f in fractions]
    if not out or any(not (0 < f < 1) for f in out):
        raise DataworthError(f"fractions must be a non-empty list in (0, 1); got {fractions!r}.")
    return out


def poisoning_study(
    train: Dataset,
    valid: Dataset,
    target: Dataset,
    test: Dataset,
    *,
    fractions: Sequence[float] = DEFAULT_POISON_FRACTIONS,
    budget: float = 1.0,
    steps: int = 10,
    mode: str = "modify",
    model: Any = None,
    methods: Sequence[str] = ("knn-shapley", "data-oob", "loo", "influence"),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    valuer: Callable[[Dataset, Dataset], Mapping[str, ValuationResult | Any]] | None = None,
    self_influence: bool = True,
    random_baseline: bool = True,
    defence_fraction: float = 0.05,
    n_random: int = 5,
    random_state: int | None = None,
    n_jobs: int | None = 1,
) -> PoisoningStudy:
    """Held-out error as ``k`` poisoned rows grow, and how valuation flags and removes them.

    For each fraction ``f`` (of the ``n`` clean training rows), ``k = max(1, round(f n))`` rows
    are poisoned by :func:`craft_poison` against ``target`` (the attacker's sample of the data;
    keep it apart from ``test``, which only measures). The poisoned training set is then valued
    on the defender's clean ``valid`` set, each method's lowest ``defence_fraction`` of rows
    are removed and the model retrained.

    Parameters
    ----------
    train, valid, target, test : Dataset
        Clean training rows, the defender's valuation rows, the attacker's target rows, and
        held-out rows (class labels; standardised features suit the default budget).
    fractions : sequence of float, default=(0.005, 0.01, 0.02, 0.03)
    budget, steps, mode
        See :func:`craft_poison`.
    model : LogisticRegression, optional
        The attacked model (default: logistic regression, max_iter=1000); also the model the
        valuation methods and the defence retrain.
    methods : sequence of str
        Valuation methods run on each poisoned set through :func:`dataworth.api.value_many`
        (with ``params`` over the fast defaults of ``dataworth clean``, ``random_state`` and
        ``n_jobs``).
    params : dict, optional
        Per-method parameters.
    valuer : callable, optional
        ``valuer(poisoned_train, valid) -> {name: ValuationResult or array}``; replaces
        ``methods`` (values for any method computed any way, e.g. with another model).
    self_influence : bool, default=True
        Also score ``-self_influence`` of the model (high self-influence is suspicious).
    random_baseline : bool, default=True
        Also run ``attack="random"`` of the same size and budget.
    defence_fraction : float, default=0.05
        Share of rows the defender drops, lowest-valued first.
    n_random : int, default=5
        Draws of the random-removal reference.
    random_state : int, optional
    n_jobs : int, default=1
        Passed to the valuation methods.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> ds = load_dataset("breast_cancer")
    >>> ds = ds.replace(X=(ds.X - ds.X.mean(0)) / ds.X.std(0))
    >>> rest, test = ds.split(0.25, random_state=0)
    >>> rest, target = rest.split(0.2, random_state=0)
    >>> train, valid = rest.split(0.25, random_state=0)
    >>> study = poisoning_study(train, valid, target, test, fractions=(0.03,), steps=3,
    ...                         methods=["knn-shapley"], random_baseline=False, random_state=0)
    >>> [r["attack"] for r in study.attack_rows]
    ['none', 'influence']
    """
    fracs = _check_fractions(fractions)
    if not 0 < defence_fraction < 1:
        raise DataworthError(f"defence_fraction must lie in (0, 1); got {defence_fraction}.")
    if not is_categorical(train.y):
        raise DataworthError("poisoning_study measures error: it needs class labels.")
    for name, ds in (("valid", valid), ("target", target), ("test", test)):
        if ds.n_features != train.n_features:
            raise DataworthError(
                f"{name} has {ds.n_features} features; train has {train.n_features}."
            )
    model = default_model(train.y) if model is None else model
    n = train.n_samples
    evals = [target, test]
    rng = np.random.default_rng(random_state)

    def errors(ds: Dataset, rows: NDArray[np.intp] | None = None) -> list[float]:
        use = np.arange(ds.n_samples) if rows is None else rows
        return [1.0 - score for score in fit_and_score(model, ds, use, evals)]

    clean_target_err, clean_test_err = errors(train)
    attack_rows: list[dict[str, Any]] = [
        {
            "k": 0,
            "fraction": 0.0,
            "attack": "none",
            "target_loss": target_loss(train, target, model),
            "target_error": clean_target_err,
            "test_error": clean_test_err,
        }
    ]
    detection_rows: list[dict[str, Any]] = []
    common = {"budget": budget, "steps": steps, "mode": mode, "model": model}
    for f in fracs:
        k = max(1, int(np.floor(f * n + 0.5)))
        seed = int(rng.integers(2**31))
        attacks = ["influence", "random"] if random_baseline else ["influence"]
        poisoned_sets: dict[str, tuple[Dataset, NDArray[np.intp]]] = {}
        for attack in attacks:
            poisoned, rows = craft_poison(
                train, target, k, random_state=seed, attack=attack, **common
            )
            poisoned_sets[attack] = (poisoned, rows)
            t_err, s_err = errors(poisoned)
            attack_rows.append(
                {
                    "k": k,
                    "fraction": k / n,
                    "attack": attack,
                    "target_loss": target_loss(poisoned, target, model),
                    "target_error": t_err,
                    "test_error": s_err,
                }
            )
        poisoned, rows = poisoned_sets["influence"]
        m = poisoned.n_samples
        poisoned_err = attack_rows[-len(attacks)]["test_error"]
        if valuer is not None:
            values: dict[str, Any] = dict(valuer(poisoned, valid))
            seconds: dict[str, float] = {}
        else:
            results = fast_values(
                list(methods),
                poisoned,
                valid,
                model,
                params=params,
                random_state=seed,
                n_jobs=n_jobs,
            )
            values = dict(results)
            seconds = {
                name: float(r.metadata.get("seconds", np.nan)) for name, r in results.items()
            }
        if self_influence:
            t0 = time.perf_counter()
            values["self-influence"] = self_influence_values(model, poisoned)
            seconds["self-influence"] = time.perf_counter() - t0
        cut = n_removed(defence_fraction, m)
        for name, vals in values.items():
            v = as_values(vals, n=m)
            keep = np.sort(removal_order(v)[cut:])
            detection_rows.append(
                {
                    "k": k,
                    "method": str(name),
                    "auroc": detection_auroc(v, rows),
                    "recall": detection_recall(v, rows, defence_fraction),
                    "test_error_poisoned": poisoned_err,
                    "test_error_after": errors(poisoned, keep)[1],
                    "seconds": seconds.get(name, np.nan),
                }
            )
        oracle_keep = np.setdiff1d(np.arange(m), rows)
        detection_rows.append(
            {
                "k": k,
                "method": "remove-poison",
                "auroc": 1.0,
                "recall": 1.0,
                "test_error_poisoned": poisoned_err,
                "test_error_after": errors(poisoned, oracle_keep)[1],
                "seconds": np.nan,
            }
        )
        draws = [
            errors(poisoned, np.sort(rng.permutation(m)[cut:]))[1] for _ in range(max(1, n_random))
        ]
        detection_rows.append(
            {
                "k": k,
                "method": "random",
                "auroc": 0.5,
                "recall": np.nan,
                "test_error_poisoned": poisoned_err,
                "test_error_after": float(np.mean(draws)),
                "seconds": np.nan,
            }
        )
    return PoisoningStudy(
        attack_rows=attack_rows,
        detection_rows=detection_rows,
        budget=float(np.max(np.asarray(budget, dtype=np.float64))),
        mode=mode,
        n_train=n,
        defence_fraction=float(defence_fraction),
        steps=int(steps),
    )
