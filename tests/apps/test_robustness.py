"""AMIP robustness (``dataworth.apps.robustness`` and ``dataworth robustness``).

Oracles: finite differences in the row weights for every influence (coefficient and standard
error), brute-force leave-one-out refits, statsmodels' OLS / Logit / IV2SLS for estimates and
standard errors, and, for every drop set the library reports, an independent refit (statsmodels
or numpy, never the library) that must reach the claimed change.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from cli_runner import Outcome, run_cli
from dataworth.apps.robustness import (
    OLS,
    EstimationError,
    Logit,
    SingularDesignError,
    TwoSLS,
    add_intercept,
    amip,
    parse_change,
)
from dataworth.cli import main
from dataworth.errors import DataworthError

sm = pytest.importorskip("statsmodels.api")
from statsmodels.sandbox.regression.gmm import IV2SLS  # noqa: E402

SM_COV = {"classical": "nonrobust", "hc0": "HC0", "hc1": "HC1"}


# ------------------------------------------------------------------------------------ data
@dataclass
class Problem:
    X: np.ndarray
    y: np.ndarray
    Z: np.ndarray | None = None  # full instrument matrix (2SLS)
    W: np.ndarray | None = None  # excluded instruments
    endog: tuple[int, ...] = ()
    coef: int = 1  # the coefficient put to the test


def ols_problem(n: int = 120, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    noise = rng.normal(size=n) * (0.6 + 0.6 * np.abs(x[:, 0]))  # heteroskedastic
    y = 0.5 + 0.45 * x[:, 0] - 0.4 * x[:, 1] + noise
    return Problem(add_intercept(x), y)


def logit_problem(n: int = 200, seed: int = 1) -> Problem:
    rng = np.random.default_rng(seed)
    X = add_intercept(rng.normal(size=(n, 2)))
    prob = 1.0 / (1.0 + np.exp(-(X @ [-0.3, 0.6, -0.5])))
    return Problem(X, (rng.random(n) < prob).astype(float))


def iv_problem(n: int = 150, seed: int = 2) -> Problem:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=n)  # exogenous control
    z = rng.normal(size=(n, 2))  # excluded instruments
    u = rng.normal(size=n)
    endo = z @ [0.8, 0.5] + 0.4 * w + u + rng.normal(size=n)
    y = 1.0 + 0.5 * w + 0.25 * endo + u + 0.5 * rng.normal(size=n)
    X = np.column_stack([np.ones(n), w, endo])
    Z = np.column_stack([np.ones(n), w, z])
    return Problem(X, y, Z=Z, W=z, endog=(2,), coef=2)


def estimator(model: str, prob: Problem, se: str = "classical"):
    if model == "ols":
        return OLS(prob.X, prob.y, cov_type=se)
    if model == "logit":
        return Logit(prob.X, prob.y)
    return TwoSLS(prob.X, prob.y, prob.Z, cov_type=se)


PROBLEMS = {"ols": ols_problem, "logit": logit_problem, "2sls": iv_problem}


# ------------------------------------------------------------------------------------ oracles
def iv_robust(y: np.ndarray, X: np.ndarray, Z: np.ndarray, se: str) -> tuple[np.ndarray, ...]:
    """2SLS with HC0/HC1 standard errors written out with numpy (linearmodels' ``robust``)."""
    xhat = Z @ np.linalg.lstsq(Z, X, rcond=None)[0]
    beta = np.linalg.lstsq(xhat, y, rcond=None)[0]
    e = y - X @ beta
    bread = np.linalg.inv(xhat.T @ xhat)
    cov = bread @ (xhat.T * e**2) @ xhat @ bread
    n, p = X.shape
    if se == "hc1":
        cov *= n / (n - p)
    return beta, np.sqrt(np.diag(cov))


def independent_fit(
    model: str, prob: Problem, se: str, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and SE on the kept rows, by statsmodels (or numpy for robust 2SLS)."""
    X, y = prob.X[keep], prob.y[keep]
    if model == "ols":
        res = sm.OLS(y, X).fit(cov_type=SM_COV[se])
        return np.asarray(res.params), np.asarray(res.bse)
    if model == "logit":
        res = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=200, tol=1e-12)
        return np.asarray(res.params), np.asarray(res.bse)
    assert prob.Z is not None
    if se == "classical":
        res = IV2SLS(y, X, prob.Z[keep]).fit()
        return np.asarray(res.params), np.asarray(res.bse)
    return iv_robust(y, X, prob.Z[keep], se)


def reaches(kind: str, delta: float | None, beta0: float, beta: float, se: float, alpha: float):
    """The documented targets, written out independently of the library."""
    z = scipy.stats.norm.ppf(1 - alpha / 2)
    lo, hi = beta - z * se, beta + z * se
    if kind == "sign":
        return np.sign(beta) == -np.sign(beta0)
    if kind == "significance":
        return lo <= 0 <= hi
    if kind == "opposite-significance":
        return hi < 0 if beta0 > 0 else lo > 0
    assert delta is not None
    return (beta - beta0) * np.sign(delta) >= abs(delta)


# ------------------------------------------------------------------------------------ influence
CASES = [
    ("ols", "classical"),
    ("ols", "hc0"),
    ("ols", "hc1"),
    ("logit", "classical"),
    ("2sls", "classical"),
    ("2sls", "hc0"),
    ("2sls", "hc1"),
]


@pytest.mark.parametrize(("model", "se"), CASES)
def test_influence_matches_finite_differences(model: str, se: str) -> None:
    """psi for the coefficient and its SE = central differences in the weights, every row."""
    prob = PROBLEMS[model](n=50)
    est = estimator(model, prob, se)
    fit = est.fit()
    eps = 1e-6
    fd_b = np.empty((est.n, est.p))
    fd_s = np.empty((est.n, est.p))
    for i in range(est.n):
        w = np.ones(est.n)
        w[i] = 1 + eps
        up = est.fit(w)
        w[i] = 1 - eps
        down = est.fit(w)
        fd_b[i] = (up.coef - down.coef) / (2 * eps)
        fd_s[i] = (up.se - down.se) / (2 * eps)
    for j in range(est.p):
        psi_b, psi_s = est.influence(fit, j)
        np.testing.assert_allclose(psi_b, fd_b[:, j], rtol=1e-5, atol=1e-7 * np.abs(psi_b).max())
        np.testing.assert_allclose(psi_s, fd_s[:, j], rtol=1e-5, atol=1e-7 * np.abs(psi_s).max())


def test_first_order_prediction_is_close_for_one_row() -> None:
    """Dropping one row changes beta by about -psi (an O(1/n^2) error for OLS)."""
    prob = ols_problem(n=400)
    est = OLS(prob.X, prob.y)
    fit = est.fit()
    psi, _ = est.influence(fit, 1)
    for i in (0, 17, 399):
        actual = est.refit_without([i]).coef[1] - fit.coef[1]
        assert abs(actual - (-psi[i])) < 0.05 * abs(psi[i]) + 1e-12


def test_exact_leave_one_out_equals_refits() -> None:
    prob = ols_problem(n=60)
    est = OLS(prob.X, prob.y)
    loo = est.loo_change(est.fit())
    beta = np.linalg.lstsq(prob.X, prob.y, rcond=None)[0]
    for i in range(est.n):
        keep = np.arange(est.n) != i
        refit = np.linalg.lstsq(prob.X[keep], prob.y[keep], rcond=None)[0]
        np.testing.assert_allclose(loo[i], refit - beta, rtol=0, atol=1e-8)


def test_ols_newton_update_is_the_exact_refit() -> None:
    prob = ols_problem(n=80)
    for se in ("classical", "hc1"):
        est = OLS(prob.X, prob.y, cov_type=se)
        fit = est.fit()
        drop = [3, 11, 40, 41, 79]
        coef, stderr = est.one_step(fit, drop)
        keep = np.setdiff1d(np.arange(80), drop)
        ref_b, ref_s = independent_fit("ols", prob, se, keep)
        np.testing.assert_allclose(coef, ref_b, rtol=1e-10)
        np.testing.assert_allclose(stderr, ref_s, rtol=1e-10)


# ------------------------------------------------------------------------------------ estimators
@pytest.mark.parametrize("se", ["classical", "hc0", "hc1"])
def test_ols_matches_statsmodels(se: str) -> None:
    prob = ols_problem()
    fit = OLS(prob.X, prob.y, cov_type=se).fit()
    res = sm.OLS(prob.y, prob.X).fit(cov_type=SM_COV[se])
    np.testing.assert_allclose(fit.coef, res.params, rtol=1e-10)
    np.testing.assert_allclose(fit.cov, res.cov_params(), rtol=1e-10)


def test_logit_matches_statsmodels() -> None:
    prob = logit_problem()
    fit = Logit(prob.X, prob.y).fit()
    res = sm.Logit(prob.y, prob.X).fit(disp=0, tol=1e-12)
    np.testing.assert_allclose(fit.coef, res.params, rtol=1e-7)
    np.testing.assert_allclose(fit.se, res.bse, rtol=1e-7)


@pytest.mark.parametrize("se", ["classical", "hc0", "hc1"])
def test_2sls_matches_statsmodels_and_manual_robust(se: str) -> None:
    prob = iv_problem()
    assert prob.Z is not None
    fit = TwoSLS(prob.X, prob.y, prob.Z, cov_type=se).fit()
    res = IV2SLS(prob.y, prob.X, prob.Z).fit()
    np.testing.assert_allclose(fit.coef, res.params, rtol=1e-10)
    if se == "classical":
        np.testing.assert_allclose(fit.se, res.bse, rtol=1e-10)
    else:
        np.testing.assert_allclose(fit.se, iv_robust(prob.y, prob.X, prob.Z, se)[1], rtol=1e-10)


def test_weights_zero_equal_dropping_rows() -> None:
    prob = iv_problem(n=90)
    assert prob.Z is not None
    est = TwoSLS(prob.X, prob.y, prob.Z, cov_type="hc1")
    w = np.ones(90)
    w[[0, 5, 6]] = 0
    weighted = est.fit(w)
    dropped = est.take(np.flatnonzero(w)).fit()
    np.testing.assert_allclose(weighted.coef, dropped.coef, rtol=1e-10)
    np.testing.assert_allclose(weighted.se, dropped.se, rtol=1e-10)


# ------------------------------------------------------------------------------------ amip
AMIP_CASES = [*CASES[:1], ("ols", "hc1"), ("logit", "classical"), ("2sls", "classical")]
AMIP_CASES.append(("2sls", "hc1"))
CHANGE_ARGS: list[str | float] = ["sign", "significance", "opposite-significance", 0.2, -0.2]


@pytest.mark.parametrize("mode", ["first-order", "greedy", "newton"])
@pytest.mark.parametrize(("model", "se"), AMIP_CASES)
def test_every_reported_set_reaches_the_claimed_change(model: str, se: str, mode: str) -> None:
    prob = PROBLEMS[model]()
    n = prob.X.shape[0]
    for change in CHANGE_ARGS:
        kind, delta = parse_change(change)
        j = prob.coef
        res = amip(
            prob.X, prob.y, prob.coef, change, model=model, se=se, mode=mode, max_fraction=0.4,
            instruments=prob.W, endog=prob.endog or None,
        )  # fmt: skip
        idx = np.asarray(res.indices, dtype=int)
        assert len(set(idx.tolist())) == idx.size == res.n_dropped
        assert idx.size <= math.floor(0.4 * n)
        assert np.all((idx >= 0) & (idx < n))
        assert res.fraction_dropped == pytest.approx(idx.size / n)
        full_b, full_s = independent_fit(model, prob, se, np.arange(n))
        assert res.original_estimate == pytest.approx(full_b[j], rel=1e-7)
        assert res.original_se == pytest.approx(full_s[j], rel=1e-7)
        keep = np.setdiff1d(np.arange(n), idx)
        beta, stderr = independent_fit(model, prob, se, keep)
        assert res.refit_estimate == pytest.approx(beta[j], rel=1e-6, abs=1e-9)
        assert res.refit_se == pytest.approx(stderr[j], rel=1e-6)
        ok = reaches(kind, delta, full_b[j], beta[j], stderr[j], res.alpha)
        label = f"{model}/{se}/{mode}/{change}: {res.message}"
        assert bool(ok) == res.achieved, label
        if kind != "opposite-significance":  # the data are built so that these are reachable
            assert res.achieved, label
        json.dumps(res.to_dict())


def test_greedy_unmasks_a_cluster() -> None:
    """Three nearly identical high-leverage rows hold the slope up; each masks the others, so
    first order ranks them low, while refitting after each drop finds them (Huang et al.)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=100), 4.0 + 0.05 * rng.normal(size=3)])
    y = np.concatenate([rng.normal(size=100), 2.4 + 0.05 * rng.normal(size=3)])
    X = add_intercept(x)
    first = amip(X, y, 1, "sign", mode="first-order", max_fraction=0.3)
    greedy = amip(X, y, 1, "sign", mode="greedy", max_fraction=0.3)
    assert first.achieved and greedy.achieved
    assert greedy.n_dropped <= first.n_dropped
    assert greedy.n_dropped < first.n_dropped / 2
    assert {100, 101, 102} <= set(greedy.indices)
    for res in (first, greedy):
        keep = np.setdiff1d(np.arange(103), res.indices)
        beta = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
        assert beta[1] < 0 < res.original_estimate


def test_not_achievable_within_max_fraction_is_reported() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    X = add_intercept(x)
    y = 2.0 * x + rng.normal(size=300)  # t ~ 30
    for mode in ("first-order", "greedy", "newton"):
        res = amip(X, y, 1, "sign", mode=mode, max_fraction=0.05)
        assert not res.achieved
        assert res.n_dropped <= 15
        assert "15 row(s)" in res.message
        keep = np.setdiff1d(np.arange(300), res.indices)
        beta = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
        assert res.refit_estimate == pytest.approx(beta[1])
        assert beta[1] > 0


def test_names_and_2sls_by_name() -> None:
    prob = iv_problem()
    names = ["const", "w", "endo"]
    res = amip(
        prob.X, prob.y, "endo", "sign", model="2sls", instruments=prob.W, endog=["endo"],
        feature_names=names, mode="greedy", max_fraction=0.3,
    )  # fmt: skip
    assert res.coef == "endo" and res.model == "2sls"
    assert res.to_dict()["indices"] == list(res.indices)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"change": "flip"}, "change must be"),
        ({"change": 0}, "non-zero"),
        ({"coef": "nope"}, "not a column"),
        ({"coef": 9}, "column index"),
        ({"mode": "exact"}, "mode must be"),
        ({"model": "probit"}, "model must be"),
        ({"alpha": 1.5}, "alpha"),
        ({"max_fraction": 0}, "max_fraction"),
        ({"se": "hc3"}, "not available"),
        ({"instruments": np.ones((120, 1))}, "only to model='2sls'"),
        ({"model": "2sls"}, "needs endog"),
        ({"refit_every": 0}, "refit_every"),
    ],
)
def test_bad_arguments(kwargs: dict, needle: str) -> None:
    prob = ols_problem()
    args = {"coef": 1, "change": "sign", **kwargs}
    with pytest.raises(DataworthError, match=needle):
        amip(prob.X, prob.y, args.pop("coef"), args.pop("change"), **args)


def test_user_errors_from_the_data() -> None:
    prob = ols_problem()
    dup = np.column_stack([prob.X, prob.X[:, 1]])
    with pytest.raises(SingularDesignError, match="singular"):
        amip(dup, prob.y, 1, "sign", feature_names=["c", "a", "b", "a2"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    with pytest.raises(DataworthError, match="not significant"):
        amip(add_intercept(x), rng.normal(size=60), 1, "significance")
    sep = add_intercept(np.arange(20.0))
    with pytest.raises(EstimationError, match="separated"):
        amip(sep, (np.arange(20) >= 10).astype(float), 1, "sign", model="logit")
    with pytest.raises(DataworthError, match="0/1"):
        amip(prob.X, prob.y, 1, "sign", model="logit")
    ivp = iv_problem()
    assert ivp.W is not None
    with pytest.raises(DataworthError, match="under-identified"):
        amip(ivp.X, ivp.y, 2, "sign", model="2sls", instruments=ivp.W[:, :0], endog=[1, 2])


# ------------------------------------------------------------------------------------ CLI



def assert_user_error(res: Outcome, *needles: str) -> None:
    assert "Traceback" not in res.err + res.out, res.err
    assert res.code == 2, f"exit {res.code}; stderr:\n{res.err}"
    lines = res.err_lines
    assert len(lines) == 1 and lines[0].startswith("error:"), res.err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("robustness")
    prob = ols_problem()
    frame = pd.DataFrame({"a": prob.X[:, 1], "b": prob.X[:, 2], "y": prob.y})
    frame["name"] = [f"r{i}" for i in range(len(frame))]  # unused text column
    frame["a_twice"] = 2 * frame["a"]
    gaps = frame.copy()
    gaps.loc[[0, 4, 9], "b"] = np.nan
    gaps.loc[[7], "y"] = np.nan
    ivp = iv_problem()
    assert ivp.W is not None
    iv = pd.DataFrame(
        {"w": ivp.X[:, 1], "endo": ivp.X[:, 2], "z1": ivp.W[:, 0], "z2": ivp.W[:, 1], "y": ivp.y}
    )
    lg = logit_problem()
    logit = pd.DataFrame({"a": lg.X[:, 1], "b": lg.X[:, 2], "y": lg.y.astype(int)})
    files = {"ols": frame, "gaps": gaps, "iv": iv, "logit": logit}
    out = {}
    for key, df in files.items():
        out[key] = root / f"{key}.csv"
        df.to_csv(out[key], index=False)
    return out


def test_cli_table_and_json(csv_files, tmp_path, capsys) -> None:
    js = tmp_path / "out" / "res.json"
    res = run_cli(
        capsys, "robustness", csv_files["ols"], "--target", "y", "--features", "a,b",
        "--coef", "a", "--change", "sign", "--se", "hc1", "--max-fraction", "0.2", "--json", js,
    )  # fmt: skip
    assert res.code == 0, res.err
    for needle in ("target", "rows to drop", "original", "predicted", "refitted", "achieved"):
        assert needle in res.out
    payload = json.loads(js.read_text())
    for key in (
        "indices", "n_dropped", "fraction_dropped", "original_estimate", "original_se",
        "predicted_estimate", "predicted_se", "refit_estimate", "refit_se", "achieved", "target",
        "mode", "model", "se", "alpha", "refit_ci",
    ):  # fmt: skip
        assert key in payload, key
    assert payload["achieved"] is True and payload["se"] == "hc1"
    frame = pd.read_csv(csv_files["ols"])
    keep = np.setdiff1d(np.arange(len(frame)), payload["indices"])
    X = add_intercept(frame[["a", "b"]].to_numpy())
    fit = sm.OLS(frame["y"].to_numpy()[keep], X[keep]).fit(cov_type="HC1")
    assert np.sign(fit.params[1]) == -np.sign(payload["original_estimate"])
    assert payload["refit_estimate"] == pytest.approx(fit.params[1])
    assert payload["refit_se"] == pytest.approx(fit.bse[1])
    shown = res.out.split("0-based data rows of")[1].split(":", 1)[1].split()
    assert [int(s) for s in shown] == payload["indices"]


def test_cli_missing_rows_are_dropped_with_a_note_and_indices_stay_file_rows(
    csv_files, tmp_path, capsys
) -> None:
    js = tmp_path / "gaps.json"
    res = run_cli(
        capsys, "robustness", csv_files["gaps"], "--target", "y", "--features", "a,b",
        "--coef", "a", "--change=-0.1", "--mode", "greedy", "--json", js,
    )  # fmt: skip
    assert res.code == 0, res.err
    assert "note: dropped 4 row(s) with missing values" in res.err
    payload = json.loads(js.read_text())
    assert payload["rows_dropped_for_missing_values"] == [0, 4, 7, 9]
    assert not set(payload["indices"]) & {0, 4, 7, 9}
    frame = pd.read_csv(csv_files["gaps"])
    drop = set(payload["indices"]) | {0, 4, 7, 9}
    keep = np.array([i for i in range(len(frame)) if i not in drop])
    beta = np.linalg.lstsq(
        add_intercept(frame[["a", "b"]].to_numpy()[keep]), frame["y"].to_numpy()[keep], rcond=None
    )[0]
    assert payload["achieved"] and beta[1] - payload["original_estimate"] <= -0.1


def test_cli_2sls_and_logit(csv_files, tmp_path, capsys) -> None:
    js = tmp_path / "iv.json"
    res = run_cli(
        capsys, "robustness", csv_files["iv"], "--target", "y", "--features", "w,endo",
        "--coef", "endo", "--change", "significance", "--model", "2sls", "--endog", "endo",
        "--instruments", "z1,z2", "--mode", "newton", "--json", js,
    )  # fmt: skip
    assert res.code == 0, res.err
    payload = json.loads(js.read_text())
    frame = pd.read_csv(csv_files["iv"])
    keep = np.setdiff1d(np.arange(len(frame)), payload["indices"])
    X = add_intercept(frame[["w", "endo"]].to_numpy())
    Z = add_intercept(frame[["w", "z1", "z2"]].to_numpy())
    fit = IV2SLS(frame["y"].to_numpy()[keep], X[keep], Z[keep]).fit()
    assert payload["achieved"]
    assert reaches("significance", None, payload["original_estimate"], fit.params[2], fit.bse[2],
                   0.05)  # fmt: skip
    res = run_cli(
        capsys, "robustness", csv_files["logit"], "--target", "y", "--features", "a,b",
        "--coef", "intercept", "--change", "0.3", "--model", "logit",
    )  # fmt: skip
    assert res.code == 0, res.err
    assert "intercept" in res.out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--features", "a,zz", "--coef", "a", "--change", "sign"], ["'zz'", "not found"]),
        (["--features", "a,name", "--coef", "a", "--change", "sign"], ["'name'", "not numeric"]),
        (["--features", "a,a_twice", "--coef", "a", "--change", "sign"], ["singular"]),
        (["--features", "a,b", "--coef", "c", "--change", "sign"], ["--coef", "'c'"]),
        (["--features", "a,b", "--coef", "a", "--change", "flip"], ["change must be"]),
        (["--features", "a,b", "--coef", "a", "--change", "sign", "--endog", "a"], ["2sls"]),
        (["--features", "a,b", "--coef", "a", "--change", "sign", "--model", "2sls"], ["--endog"]),
        (["--features", "a,b", "--coef", "a", "--change", "sign", "--model", "logit"], ["0/1"]),
        (["--features", "a,b", "--coef", "a", "--change", "sign", "--max-fraction", "2"],
         ["--max-fraction"]),
        (["--features", "a,b", "--coef", "a", "--change", "sign", "--mode", "exact"], ["--mode"]),
        (["--features", "a,,b", "--coef", "a", "--change", "sign"], ["--features"]),
        (["--features", "a,y", "--coef", "a", "--change", "sign"], ["target"]),
    ],
)  # fmt: skip
def test_cli_user_errors(csv_files, capsys, args: list[str], needles: list[str]) -> None:
    res = run_cli(capsys, "robustness", csv_files["ols"], "--target", "y", *args)
    assert_user_error(res, *needles)


def test_cli_missing_file_and_subprocess_has_no_traceback(tmp_path, capsys) -> None:
    res = run_cli(
        capsys, "robustness", tmp_path / "nope.csv", "--target", "y", "--features", "a",
        "--coef", "a", "--change", "sign",
    )  # fmt: skip
    assert_user_error(res, "not found")
    proc = subprocess.run(
        [sys.executable, "-m", "dataworth.cli", "robustness", str(tmp_path / "nope.csv"),
         "--target", "y", "--features", "a", "--coef", "a", "--change", "sideways"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "change must be" in lines[0]


def test_cli_refuses_values_whose_squares_overflow(tmp_path) -> None:
    """Found by the long hostile-input run: 1e306 in a column made the OLS fit's SVD fail with an
    internal error; such values are refused like everywhere else (beyond 1e150)."""

    rng = np.random.default_rng(0)
    path = tmp_path / "huge.csv"
    rows = "\n".join(f"{v!r},{i}" for i, v in enumerate(rng.normal(size=30) * 1e306))
    path.write_text("f0,label\n" + rows + "\n")
    with pytest.raises(SystemExit) as info:
        main(["robustness", str(path), "--target", "label", "--features", "f0", "--coef", "f0",
              "--change", "sign", "--model", "ols"])  # fmt: skip
    assert info.value.code == 2
