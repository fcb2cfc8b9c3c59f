"""PyTorch influence functions: TorchInfluence, its inverse-Hessian solvers and TracIn.

Oracles are independent of the library: per-sample gradients from plain autograd loops over
rows, Hessians from ``torch.autograd.functional.hessian`` of a hand-written forward pass on the
flat parameter vector (which also pins the parameter order), ``torch.linalg.solve``, closed-form
numpy gradients and Hessians for linear / logistic / softmax regression, real leave-one-out
refits, and TracIn summed by hand over two checkpoints. Everything runs in float64 on one CPU
thread (tiny models: torch's thread pool only adds overhead).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from dataworth.errors import DataworthError  # noqa: E402
from dataworth.influence.base import (  # noqa: E402
    influence_matrix,
    influence_on_parameters,
    influence_values,
    self_influence,
)
from dataworth.influence.solvers import (  # noqa: E402
    ArnoldiSolver,
    CGSolver,
    DirectSolver,
    LiSSASolver,
    NotPositiveDefiniteWarning,
)
from dataworth.influence.torch_model import TorchInfluence  # noqa: E402
from dataworth.influence.tracin import TracIn  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:.*torch.jit.script.* is deprecated:DeprecationWarning"
    ),
    pytest.mark.usefixtures("torch_one_thread"),
]

F = torch.nn.functional
D64 = torch.float64
WD = 0.1  # weight decay of the MLP objective


# --------------------------------------------------------------------------- problems


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]], dtype=D64)
    X = centres[y] + 1.2 * torch.randn(n, 4, generator=g, dtype=D64)
    return X, y


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(
        D64
    )


def _mlp_forward(theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The MLP by hand from the flat vector, in named_parameters() order, row-major."""
    W1, b1 = theta[:32].reshape(8, 4), theta[32:40]
    W2, b2 = theta[40:64].reshape(3, 8), theta[64:67]
    return torch.tanh(X @ W1.T + b1) @ W2.T + b2


def _train(model, X, y, loss, wd):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=2000,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        value = loss(model(X), y) + 0.5 * wd * sum((p**2).sum() for p in params)
        value.backward()
        return value

    opt.step(closure)
    opt.zero_grad(set_to_none=True)
    return model


@pytest.fixture(scope="module")
def mlp():
    """A 4-8-3 tanh MLP trained to a minimum of mean cross-entropy + 0.5 * WD * ||theta||^2."""
    X, y = _blobs(60, seed=1)
    Xt, yt = _blobs(15, seed=2)
    model = _train(_mlp(), X, y, F.cross_entropy, WD)
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def objective(th):
        return F.cross_entropy(_mlp_forward(th, X), y) + 0.5 * WD * th @ th

    grad_norm = torch.autograd.functional.jacobian(objective, theta).norm()
    assert grad_norm < 1e-7, grad_norm  # precondition: at a stationary point
    H = torch.autograd.functional.hessian(objective, theta)
    assert torch.linalg.eigvalsh(H).min() > 0  # precondition: a strict local minimum
    return {"model": model, "X": X, "y": y, "Xt": Xt, "yt": yt, "theta": theta, "H": H}


def _loop_gradients(theta, X, y, kind="loss"):
    """Per-row gradients by autograd, one row at a time, on the hand-written forward."""
    rows = []
    for i in range(X.shape[0]):
        th = theta.clone().requires_grad_(True)
        out = _mlp_forward(th, X[i : i + 1])
        f = F.cross_entropy(out, y[i : i + 1]) if kind == "loss" else out[0, y[i]]
        rows.append(torch.autograd.grad(f, th)[0])
    return torch.stack(rows)


def _rel(a, b) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def _pearson(a, b) -> float:
    return float(np.corrcoef(np.asarray(a), np.asarray(b))[0, 1])


# --------------------------------------------------------------------------- gradients, Hessian


def test_per_sample_gradients_match_autograd_loops(mlp):
    """train_gradients / test_gradients (loss and label logit) equal autograd loops to 1e-12."""
    inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD)
    assert inf.n_params == 67 and inf.n_train == 60
    assert inf.param_names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert torch.equal(inf.flat_params(), mlp["theta"])
    rows = np.array([5, 0, 59, 17])
    expected = _loop_gradients(mlp["theta"], mlp["X"][rows], mlp["y"][rows])
    torch.testing.assert_close(inf.train_gradients(rows), expected, rtol=0, atol=1e-12)
    Xt, yt = mlp["Xt"], mlp["yt"]
    for kind in ("loss", "prediction"):
        got = inf.test_gradients(Xt.numpy(), yt.numpy(), kind)  # numpy in, tensor out
        torch.testing.assert_close(
            got, _loop_gradients(mlp["theta"], Xt, yt, kind), rtol=0, atol=1e-12
        )
    small = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], block_size=7)  # blocks of 7 rows
    torch.testing.assert_close(
        small.train_gradients(np.arange(60)),
        _loop_gradients(mlp["theta"], mlp["X"], mlp["y"]),
        rtol=0,
        atol=1e-12,
    )


def test_hvp_and_hessian_match_autograd_hessian(mlp):
    """hessian() and hvp() equal torch.autograd.functional.hessian (+ damping) to 1e-10."""
    damping = 0.3
    inf = TorchInfluence(
        mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, damping=damping, block_size=16
    )
    H = mlp["H"] + damping * torch.eye(67, dtype=D64)
    torch.testing.assert_close(inf.hessian(), H, rtol=1e-10, atol=1e-12)
    V = torch.randn(5, 67, generator=torch.Generator().manual_seed(0), dtype=D64)
    torch.testing.assert_close(inf.hvp(V), V @ H, rtol=1e-10, atol=1e-12)
    # A minibatch Hessian: the mean loss over the given rows only.
    rows = np.array([3, 10, 11, 40])
    sub = torch.autograd.functional.hessian(
        lambda th: F.cross_entropy(_mlp_forward(th, mlp["X"][rows]), mlp["y"][rows]),
        mlp["theta"],
    ) + (WD + damping) * torch.eye(67, dtype=D64)
    torch.testing.assert_close(inf.hvp(V, rows=rows), V @ sub, rtol=1e-10, atol=1e-12)
    # Nothing leaks into the module: no .grad, parameters unchanged, eval mode.
    assert all(p.grad is None for p in mlp["model"].parameters())
    assert torch.equal(torch.cat([p.reshape(-1) for p in mlp["model"].parameters()]), mlp["theta"])
    assert not mlp["model"].training


# --------------------------------------------------------------------------- solvers


@pytest.fixture(scope="module")
def direct(mlp):
    inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, solver="direct")
    V = inf.test_gradients(mlp["Xt"], mlp["yt"])
    return inf, V, inf.solve(V)


def test_direct_solver_matches_linalg_solve(mlp, direct):
    """Cholesky solve against torch.linalg.solve on the autograd Hessian: 1e-9 relative."""
    inf, V, solved = direct
    assert isinstance(inf.solver, DirectSolver) and inf.solver.method_ == "cholesky"
    expected = torch.linalg.solve(mlp["H"], V.T).T
    assert _rel(solved, expected) < 1e-9
    one = inf.solve(V[0])  # a vector gives a vector
    assert one.shape == (67,)
    torch.testing.assert_close(one, expected[0])


def test_direct_solver_indefinite_hessian_uses_exact_inverse():
    """Away from a minimum H is indefinite (and, without weight decay, singular: shifting all
    logits by the same amount changes nothing): a warning, and the Moore-Penrose pseudo-inverse,
    equal to torch.linalg.pinv of the autograd Hessian to 1e-8, with x H = v exactly on the range
    of H."""
    X, y = _blobs(30, seed=3)
    model = _mlp(seed=5)  # untrained, no weight decay
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    H = torch.autograd.functional.hessian(lambda th: F.cross_entropy(_mlp_forward(th, X), y), theta)
    assert torch.linalg.eigvalsh(H).min() < -1e-6  # precondition: indefinite
    inf = TorchInfluence(model, X, y)
    V = torch.randn(3, 67, generator=torch.Generator().manual_seed(1), dtype=D64)
    with pytest.warns(NotPositiveDefiniteWarning, match="not positive definite"):
        x = inf.solve(V)
    assert inf.solver.method_ == "pseudo-inverse"
    pinv = torch.linalg.pinv(H, hermitian=True)
    assert _rel(x, V @ pinv) < 1e-8
    evals, evecs = torch.linalg.eigh(H)
    rng = evecs[:, evals.abs() > 1e-10]
    assert rng.shape[1] == 67 - 9  # 1 bias + 8 weight directions of the last layer
    V_range = V @ rng @ rng.T
    assert _rel(inf.solve(V_range) @ H, V_range) < 1e-8


def test_cg_matches_direct(mlp, direct):
    """CG (rtol 1e-10), plain and with a diagonal preconditioner: within 1e-6 relative of the
    direct solve; every row reports convergence."""
    _, V, expected = direct
    diag = torch.diagonal(mlp["H"]).numpy()
    for pre in (None, "fisher", diag):
        solver = CGSolver(rtol=1e-10, preconditioner=pre)
        inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, solver=solver)
        assert _rel(inf.solve(V), expected) < 1e-6
        assert solver.converged_.all() and solver.converged_.shape == (V.shape[0],)
        assert np.all(solver.residual_norms_ <= 1e-10)
        assert 0 < solver.n_iter_.max() <= 10 * 67


def test_cg_warns_when_not_converged(mlp):
    solver = CGSolver(maxiter=2)
    inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, solver=solver)
    with pytest.warns(ConvergenceWarning, match="did not reach"):
        inf.solve(inf.train_gradients(np.arange(3)))
    assert not solver.converged_.any() and (solver.n_iter_ == 2).all()


def test_cg_zero_right_hand_side(mlp):
    inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, solver="cg")
    out = inf.solve(torch.zeros(2, 67, dtype=D64))
    assert torch.equal(out, torch.zeros(2, 67, dtype=D64))
    assert inf.solver.converged_.all() and (inf.solver.n_iter_ == 0).all()


def test_arnoldi_full_rank_matches_direct(direct, mlp):
    """Arnoldi with rank = n_params: the exact inverse, within 1e-6 relative."""
    _, V, expected = direct
    solver = ArnoldiSolver(rank=67, random_state=0)
    inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, solver=solver)
    assert _rel(inf.solve(V), expected) < 1e-6
    assert solver.rank_ == 67
    evals = torch.linalg.eigvalsh(mlp["H"])
    torch.testing.assert_close(solver.eigenvalues_.sort().values, evals, rtol=1e-8, atol=1e-10)


def test_arnoldi_low_rank_ranks_influence(direct, mlp):
    """Arnoldi with rank 10 of 67 (50 iterations): the top eigenvalues to 1e-6 relative, the
    solve equal to the truncated eigen-expansion of the autograd Hessian
    V U diag(1/l) U^T (complement dropped) or + (V - V U U^T) / l_10 ("smallest") to 1e-4,
    and influence values with Pearson > 0.9 against the exact ones (measured 0.98 / 0.98)."""
    inf_direct, V, _ = direct
    evals, evecs = torch.linalg.eigh(mlp["H"])
    top, U = evals.flip(0)[:10], evecs.flip(1)[:, :10]
    exact = influence_values(inf_direct, mlp["Xt"], mlp["yt"]).values
    for complement in ("drop", "smallest"):
        solver = ArnoldiSolver(rank=10, complement=complement, random_state=0)
        inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, solver=solver)
        inf.fit_solver()
        torch.testing.assert_close(solver.eigenvalues_, top, rtol=1e-6, atol=0)
        expected = ((V @ U) / top) @ U.T
        if complement == "smallest":
            expected = expected + (V - V @ U @ U.T) / top[-1]
        assert _rel(inf.solve(V), expected) < 1e-4
        approx = influence_values(inf, mlp["Xt"], mlp["yt"]).values
        assert _pearson(approx, exact) > 0.9, complement


def test_lissa_matches_direct(mlp):
    """LiSSA against the direct solve, both with damping 0.1 (lambda_min ~ 0.11, scale ~ 1.7,
    so the truncation error after 200 steps is ~ 0.94^200 ~ 4e-6 of the answer): the full-batch
    recursion (deterministic) to relative error < 1e-4 (measured 4e-8). Minibatches of 30 of
    the 60 rows, 2 runs of depth 100: stochastic, so only Pearson of influence values > 0.98
    and relative error < 0.25 (measured 0.995 and 0.13 with this seed; 0.99-0.998 and 0.09-0.14
    over seeds and settings)."""
    model, X, y = mlp["model"], mlp["X"], mlp["y"]
    ref = TorchInfluence(model, X, y, weight_decay=WD, damping=0.1)
    V = ref.test_gradients(mlp["Xt"], mlp["yt"])
    expected = ref.solve(V)
    full = LiSSASolver(depth=200, batch_size=None, random_state=0)
    inf = TorchInfluence(model, X, y, weight_decay=WD, damping=0.1, solver=full)
    assert _rel(inf.solve(V), expected) < 1e-4
    top = float(torch.linalg.eigvalsh(mlp["H"]).max()) + 0.1
    assert top <= full.lambda_max_ * (1 + 1e-3) and full.scale_ > top  # scale above lambda_max
    mini = LiSSASolver(depth=100, batch_size=30, n_samples=2, random_state=0)
    inf = TorchInfluence(model, X, y, weight_decay=WD, damping=0.1, solver=mini)
    values = influence_values(inf, mlp["Xt"], mlp["yt"]).values
    assert _pearson(values, influence_values(ref, mlp["Xt"], mlp["yt"]).values) > 0.98
    assert _rel(inf.solve(V), expected) < 0.25


def test_lissa_stops_early_at_rtol(mlp):
    """Full batch with rtol: fewer steps than depth, and the error stays within
    rtol / (1 - rate) (rate ~ 0.94 here, so < 20 * rtol)."""
    model, X, y = mlp["model"], mlp["X"], mlp["y"]
    ref = TorchInfluence(model, X, y, weight_decay=WD, damping=0.1)
    V = ref.test_gradients(mlp["Xt"], mlp["yt"])
    solver = LiSSASolver(depth=2000, batch_size=None, rtol=1e-8, random_state=0)
    inf = TorchInfluence(model, X, y, weight_decay=WD, damping=0.1, solver=solver)
    assert _rel(inf.solve(V), ref.solve(V)) < 20 * 1e-8
    assert solver.n_steps_ < 2000
    with pytest.raises(DataworthError, match="rtol"):
        TorchInfluence(
            model, X, y, damping=0.1, solver=LiSSASolver(batch_size=None, rtol=2.0)
        ).solve(V)


def test_lissa_diverges_loudly(mlp):
    solver = LiSSASolver(scale=1e-12, depth=10_000, batch_size=None)
    inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD, solver=solver)
    with pytest.raises(DataworthError, match="diverged"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        inf.solve(torch.ones(1, 67, dtype=D64))


def test_ekfac_solver_by_name_is_exact_for_linear_regression():
    """solver="ekfac" (imported lazily): one Linear layer with squared error is exactly
    Kronecker-factored, so EK-FAC equals the direct solve (1e-8 relative)."""
    pytest.importorskip("dataworth.influence.ekfac")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g, dtype=D64)
    y = X @ torch.tensor([1.0, -1.0, 0.5], dtype=D64) + 0.1 * torch.randn(
        40, generator=g, dtype=D64
    )
    model = torch.nn.Linear(3, 1).to(D64)
    V = torch.randn(4, 4, generator=g, dtype=D64)
    ekfac = TorchInfluence(model, X, y, loss="mse", solver="ekfac", damping=1e-3)
    exact = TorchInfluence(model, X, y, loss="mse", solver="direct", damping=1e-3)
    assert type(ekfac.solver).__name__ == "EKFACSolver"
    assert _rel(ekfac.solve(V), exact.solve(V)) < 1e-8


# --------------------------------------------------------------------------- closed forms


def _logistic_problem(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X @ [1.5, -1.0, 0.5] + 0.8 * rng.normal(size=n) > 0).astype(np.float64)
    return X, y


def _bce(out, target):
    return F.binary_cross_entropy_with_logits(out[:, 0], target, reduction="none")


def test_logistic_regression_matches_closed_form():
    """Binary logistic regression as torch.nn.Linear(3, 1) with a callable per-sample loss,
    against numpy: g_i = (p_i - y_i) [x_i, 1], H = X~^T diag(p(1-p)) X~ / n + wd I,
    I = -g_test^T H^-1 g_train (loss and logit targets), to 1e-9 relative."""
    X, y = _logistic_problem()
    Xv, yv = _logistic_problem(12, seed=1)
    model = torch.nn.Linear(3, 1).to(D64)
    wd = 0.05
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    _train(model, Xt, yt, lambda out, t: _bce(out, t).mean(), wd)
    theta = np.concatenate([model.weight.detach().numpy().ravel(), model.bias.detach().numpy()])

    def design(A):
        return np.column_stack([A, np.ones(len(A))])

    Xa, Xva = design(X), design(Xv)
    p = 1 / (1 + np.exp(-Xa @ theta))
    pv = 1 / (1 + np.exp(-Xva @ theta))
    G = (p - y)[:, None] * Xa
    Gv = (pv - yv)[:, None] * Xva
    H = Xa.T @ ((p * (1 - p))[:, None] * Xa) / len(y) + wd * np.eye(4)
    expected = -G @ np.linalg.solve(H, Gv.T)
    expected_logit = -G @ np.linalg.solve(H, Xva.T)
    for solver in ("direct", "cg", "arnoldi"):
        inf = TorchInfluence(model, X, y, loss=_bce, weight_decay=wd, solver=solver)
        got = influence_matrix(inf, Xv, yv)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        got = influence_matrix(inf, Xv, yv, target="prediction")
        np.testing.assert_allclose(got, expected_logit, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(inf.hessian(), torch.as_tensor(H), rtol=1e-10, atol=1e-12)


def test_logistic_values_are_the_derivative_of_refits():
    """The meaning and sign of a value, by real refits: with row i's weight 1 - eps in the
    objective (1/n) sum_j w_j loss_j + 0.5 wd ||theta||^2, the mean validation loss moves by
    eps * value_i / n (value > 0: a helpful row whose removal raises the loss). Refits by
    Newton's method in numpy (to machine precision; LBFGS stops too early for a finite
    difference); central differences with eps = 1e-3 agree with value_i / n to 1e-5 relative
    (measured ~1e-7); rows with flipped labels get low values."""
    X, y = _logistic_problem(30, seed=3)
    y[[2, 7]] = 1 - y[[2, 7]]  # two flipped labels
    Xv, yv = _logistic_problem(50, seed=4)
    Xa, Xva = np.column_stack([X, np.ones(30)]), np.column_stack([Xv, np.ones(50)])
    wd = 0.05

    def fit(weights):
        theta = np.zeros(4)
        for _ in range(30):
            p = 1 / (1 + np.exp(-Xa @ theta))
            g = Xa.T @ (weights * (p - y)) / 30 + wd * theta
            H = Xa.T @ ((weights * p * (1 - p))[:, None] * Xa) / 30 + wd * np.eye(4)
            theta -= np.linalg.solve(H, g)
        assert np.linalg.norm(g) < 1e-14
        return theta

    def valid_loss(theta):
        z = Xva @ theta
        return float(np.mean(np.logaddexp(0, z) - yv * z))

    theta = fit(np.ones(30))
    model = torch.nn.Linear(3, 1).to(D64)
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(theta[:3])[None, :])
        model.bias.copy_(torch.as_tensor(theta[3:]))
    values = influence_values(TorchInfluence(model, X, y, loss=_bce, weight_decay=wd), Xv, yv)
    values = values.values
    eps = 1e-3
    for i in (0, 2, 7, 19):
        w = np.ones(30)
        w[i] = 1 - eps
        down = valid_loss(fit(w))
        w[i] = 1 + eps
        up = valid_loss(fit(w))
        slope = (down - up) / (2 * eps)  # d loss / d (removing a fraction eps of row i)
        assert slope * 30 == pytest.approx(values[i], rel=1e-5), i
    assert np.argmin(values) == 2 and values[[2, 7]].mean() < np.delete(values, [2, 7]).mean()


def test_softmax_regression_matches_closed_form():
    """Multinomial logistic regression, torch.nn.Linear(3, 3) + loss="cross-entropy", against
    numpy: J_i = [kron(I_C, x_i^T), I_C] (weight row-major, then bias),
    H = mean_i J_i^T (diag(p_i) - p_i p_i^T) J_i + wd I; influence_values and self_influence
    to 1e-9 relative."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(45, 3))
    y = np.arange(45) % 3
    X[np.arange(45), y] += 1.5
    Xv = rng.normal(size=(10, 3))
    yv = np.arange(10) % 3
    model = torch.nn.Linear(3, 3).to(D64)  # untrained: the formulas hold at any theta
    wd = 0.1
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()

    def jac_and_grad(A, labels):
        logits = A @ W.T + b
        P = np.exp(logits - logits.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        J = np.stack([np.hstack([np.kron(np.eye(3), a[None, :]), np.eye(3)]) for a in A])
        G = np.einsum("ncp,nc->np", J, P - np.eye(3)[labels])
        return J, P, G

    J, P, G = jac_and_grad(X, y)
    _, _, Gv = jac_and_grad(Xv, yv)
    S = np.stack([np.diag(p) - np.outer(p, p) for p in P])
    H = np.einsum("ncp,ncd,ndq->pq", J, S, J) / 45 + wd * np.eye(12)
    Hinv = np.linalg.inv(H)
    inf = TorchInfluence(model, X, y, weight_decay=wd)
    np.testing.assert_allclose(
        influence_values(inf, Xv, yv).values, G @ Hinv @ Gv.mean(0), rtol=1e-9
    )
    np.testing.assert_allclose(self_influence(inf), np.einsum("np,pq,nq->n", G, Hinv, G), rtol=1e-9)


def test_linear_regression_mse_matches_closed_form():
    """loss="mse" on torch.nn.Linear(2, 1): loss_i = (x~_i theta - y_i)^2, g_i = 2 r_i x~_i,
    H = 2 X~^T X~ / n + damping I; influence_values and influence_on_parameters to 1e-9."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(25, 2))
    y = X @ [2.0, -1.0] + 0.3 * rng.normal(size=25)
    model = torch.nn.Linear(2, 1).to(D64)
    theta = np.concatenate([model.weight.detach().numpy().ravel(), model.bias.detach().numpy()])
    Xa = np.column_stack([X, np.ones(25)])
    G = 2 * (Xa @ theta - y)[:, None] * Xa
    H = 2 * Xa.T @ Xa / 25 + 0.01 * np.eye(3)
    inf = TorchInfluence(model, X, y, loss="mse", damping=0.01)
    np.testing.assert_allclose(
        influence_values(inf, X, y).values, G @ np.linalg.solve(H, G.mean(0)), rtol=1e-9
    )
    np.testing.assert_allclose(
        influence_on_parameters(inf, rows=[4, 0]), -np.linalg.solve(H, G[[4, 0]].T).T, rtol=1e-9
    )
    # target="prediction" of a single-output regressor: the gradient of the output, x~.
    torch.testing.assert_close(
        inf.test_gradients(X[:3], y[:3], "prediction"), torch.as_tensor(Xa[:3])
    )


# --------------------------------------------------------------------------- block-wise functions


def test_block_functions_with_torch_influence(mlp, tmp_path):
    """influence_matrix (in memory, blocks, streamed to .npy), influence_values, self_influence
    and influence_on_parameters against numpy formulas on autograd gradients and Hessian."""
    G = _loop_gradients(mlp["theta"], mlp["X"], mlp["y"]).numpy()
    Gt = _loop_gradients(mlp["theta"], mlp["Xt"], mlp["yt"]).numpy()
    Hinv = np.linalg.inv(mlp["H"].numpy())
    expected = -G @ Hinv @ Gt.T
    inf = TorchInfluence(mlp["model"], mlp["X"], mlp["y"], weight_decay=WD)
    np.testing.assert_allclose(
        influence_matrix(inf, mlp["Xt"], mlp["yt"]), expected, rtol=1e-8, atol=1e-12
    )
    out = influence_matrix(
        inf, mlp["Xt"], mlp["yt"], rows=[7, 3], block_size=4, out=tmp_path / "m.npy"
    )
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), expected[[7, 3]], rtol=1e-8)
    assert out.shape == (2, 15)
    np.testing.assert_allclose(
        influence_values(inf, mlp["Xt"], mlp["yt"], block_size=4).values,
        -expected.mean(1),
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        self_influence(inf, block_size=9), np.einsum("np,pq,nq->n", G, Hinv, G), rtol=1e-8
    )
    np.testing.assert_allclose(
        influence_on_parameters(inf, rows=[1, 2]), -G[[1, 2]] @ Hinv, rtol=1e-8, atol=1e-14
    )


def test_float32_model_and_dtypes():
    """Device and dtype follow the parameters: float64 inputs are cast to float32, integer
    regression targets to float; results come back as float64 numpy arrays."""
    model = torch.nn.Linear(2, 1)
    X = np.arange(12, dtype=np.float64).reshape(6, 2) / 10
    inf = TorchInfluence(model, X, np.arange(6), loss="mse", weight_decay=0.1)
    assert inf.X.dtype == torch.float32 and inf.y.dtype == torch.float32
    assert inf.dtype == torch.float32 and inf.device == torch.device("cpu")
    values = influence_values(inf, X, np.arange(6)).values
    assert values.dtype == np.float64 and values.shape == (6,)
    ref = TorchInfluence(
        copy.deepcopy(model).double(), X, np.arange(6), loss="mse", weight_decay=0.1
    )
    np.testing.assert_allclose(values, influence_values(ref, X, np.arange(6)).values, rtol=1e-4)


# --------------------------------------------------------------------------- TracIn


def test_tracin_matches_hand_sum_over_two_checkpoints(tmp_path):
    """TracIn(z, z') = sum_k lr_k g_k(z) . g_k(z'), hand-summed over two checkpoints from autograd
    loops: influence_matrix = -TracIn, influence_values = mean_j TracIn(z, z'_j),
    self_influence = sum_k lr_k ||g_k(z)||^2; state dicts, modules and files agree."""
    X, y = _blobs(20, seed=7)
    Xt, yt = _blobs(6, seed=8)
    model = _mlp(seed=3)
    lrs = [0.3, 0.1]
    checkpoints = []
    for lr in lrs:
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(model(X), y).backward()
            opt.step()
        checkpoints.append(copy.deepcopy(model.state_dict()))
    thetas = [torch.cat([v.reshape(-1) for v in c.values()]) for c in checkpoints]
    tracin = sum(
        lr * _loop_gradients(th, X, y) @ _loop_gradients(th, Xt, yt).T
        for lr, th in zip(lrs, thetas, strict=True)
    ).numpy()
    selfinf = sum(
        lr * (_loop_gradients(th, X, y) ** 2).sum(1) for lr, th in zip(lrs, thetas, strict=True)
    ).numpy()
    with torch.no_grad():  # the template's own parameters must not matter
        for p in model.parameters():
            p.add_(1.0)
    model.zero_grad(set_to_none=True)

    modules = []
    for c in checkpoints:
        m = _mlp(seed=9)
        m.load_state_dict(c)
        modules.append(m)
    paths = []
    for k, c in enumerate(checkpoints):
        torch.save(c, tmp_path / f"ckpt{k}.pt")
        paths.append(tmp_path / f"ckpt{k}.pt")
    for ckpts in (checkpoints, modules, paths):
        t = TracIn(model, ckpts, X, y, learning_rates=lrs, block_size=8)
        assert t.n_params == 2 * 67 and t.n_train == 20
        np.testing.assert_allclose(influence_matrix(t, Xt, yt), -tracin, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(
            influence_values(t, Xt, yt).values, tracin.mean(1), rtol=1e-10, atol=1e-14
        )
        np.testing.assert_allclose(self_influence(t), selfinf, rtol=1e-10)
    assert all(p.grad is None for p in model.parameters())
    one = TracIn(model, checkpoints[:1], X, y, learning_rates=2.0)
    np.testing.assert_allclose(
        influence_matrix(one, Xt, yt),
        -2.0 * (_loop_gradients(thetas[0], X, y) @ _loop_gradients(thetas[0], Xt, yt).T).numpy(),
        rtol=1e-10,
        atol=1e-14,
    )


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_dataworth_error(mlp):
    model, X, y = mlp["model"], mlp["X"], mlp["y"]
    cases = [
        (lambda: TorchInfluence(model, X, y[:-1]), "same number of rows"),
        (lambda: TorchInfluence(model, X, y, loss="hinge"), "loss must be one of"),
        (lambda: TorchInfluence(model, X, y, loss=3), "loss must be one of"),
        (lambda: TorchInfluence(model, X, y, solver="magic"), "solver must be one of"),
        (lambda: TorchInfluence(model, X, y, solver=object()), "solver must be one of"),
        (lambda: TorchInfluence(model, X, y, damping=-1.0), "damping"),
        (lambda: TorchInfluence(model, X, y, weight_decay=float("nan")), "weight_decay"),
        (lambda: TorchInfluence(model, X, y, block_size=0), "block_size"),
        (lambda: TorchInfluence("model", X, y), "torch.nn.Module"),
        (lambda: TorchInfluence(model, X, y + 3), r"labels .* must lie in 0\.\.2"),
        (lambda: TorchInfluence(model, X, y - 1), "negative class labels"),
        (lambda: TorchInfluence(model, X, y + 0.5), "integer class labels"),
        (lambda: TorchInfluence(model, X[:, :3], y), "model failed"),
        (lambda: TorchInfluence(model, X[:0], y[:0]), "no rows"),
        (lambda: TorchInfluence(model, np.array(["a"] * 60), y), "numeric"),
        (lambda: TorchInfluence(model, X, y, loss=lambda o, t: o.sum()), "one loss per row"),
        (lambda: TorchInfluence(model, X, y.double(), loss="mse"), "mse. needs one target per"),
    ]
    frozen = _mlp()
    for p in frozen.parameters():
        p.requires_grad_(False)
    cases.append((lambda: TorchInfluence(frozen, X, y), "no trainable parameters"))
    for make, match in cases:
        with pytest.raises(DataworthError, match=match):
            make()

    inf = TorchInfluence(model, X, y, weight_decay=WD)
    calls = [
        (lambda: inf.test_gradients(X, y, target="logit"), "target must be"),
        (lambda: inf.test_gradients(X[:3], y[:2]), "same number of rows"),
        (lambda: inf.test_gradients(X[:3, :2], y[:3]), "model failed"),
        (lambda: inf.test_gradients(X[:3], y[:3] + 5), "must lie in"),
        (lambda: inf.train_gradients(np.array([60])), r"rows must lie in \[0, 60\)"),
        (lambda: inf.solve(torch.zeros(2, 5, dtype=D64)), r"shape \(m, 67\)"),
        (lambda: influence_values(inf, X[:0], y[:0]), "empty"),
    ]
    reg = TorchInfluence(
        torch.nn.Linear(4, 2).to(D64), X, torch.zeros(60, 2, dtype=D64), loss="mse"
    )
    calls.append(
        (lambda: reg.test_gradients(X[:2], torch.zeros(2, 2), "prediction"), "single-output")
    )
    solvers = [
        (CGSolver(rtol=0.0), "rtol"),
        (CGSolver(maxiter=0), "maxiter"),
        (CGSolver(preconditioner="jacobi"), "preconditioner"),
        (CGSolver(preconditioner=-np.ones(67)), "preconditioner"),
        (ArnoldiSolver(rank=0), "rank"),
        (ArnoldiSolver(rank=10, n_iter=5), "n_iter"),
        (LiSSASolver(depth=0), "depth"),
        (LiSSASolver(batch_size=0), "batch_size"),
        (LiSSASolver(scale=-1.0), "scale"),
    ]
    for solver, match in solvers:
        calls.append(
            (
                lambda s=solver: TorchInfluence(model, X, y, solver=s).solve(torch.zeros(1, 67)),
                match,
            )
        )
    calls.append((lambda: CGSolver().solve(torch.zeros(1, 67)), "not fitted"))
    for call, match in calls:
        with pytest.raises(DataworthError, match=match):
            call()

    state = copy.deepcopy(model.state_dict())
    bad_shape = dict(state, **{"0.bias": torch.zeros(3, dtype=D64)})
    missing = {k: v for k, v in state.items() if k != "2.weight"}
    tracin_cases = [
        (lambda: TracIn(model, [], X, y), "non-empty list"),
        (lambda: TracIn(model, state, X, y), "non-empty list"),
        (lambda: TracIn(model, [missing], X, y), "no parameter '2.weight'"),
        (lambda: TracIn(model, [bad_shape], X, y), "shape"),
        (lambda: TracIn(model, [state, 3], X, y), "state dict, a module or a path"),
        (lambda: TracIn(model, [state], X, y, learning_rates=[0.1, 0.2]), "one number per"),
        (lambda: TracIn(model, [state], X, y, learning_rates=-0.1), ">= 0"),
        (lambda: TracIn(model, ["/nonexistent/ckpt.pt"], X, y), "cannot load checkpoint"),
    ]
    for make, match in tracin_cases:
        with pytest.raises(DataworthError, match=match):
            make()


def test_direct_solver_checks_the_hessian_memory(monkeypatch):
    import dataworth.memory

    monkeypatch.setattr(dataworth.memory, "available_memory", lambda: 1000)
    X = torch.randn(20, 30, dtype=torch.float64)
    y = (X[:, 0] > 0).long()
    model = torch.nn.Linear(30, 2).double()
    inf = TorchInfluence(model, X, y, weight_decay=0.1, solver="direct")
    with pytest.raises(DataworthError, match=r"62 x 62 Hessian \(62 parameters\).*CGSolver"):
        inf.fit_solver()
