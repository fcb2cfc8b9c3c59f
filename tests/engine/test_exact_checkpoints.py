"""Exact methods (loo, exact-shapley, least-core) checkpoint their finished chunks: a run
killed part-way resumes without re-evaluating them and ends with identical values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dataworth.errors import CheckpointError
from dataworth.methods import get_method
from dataworth.utility.base import UtilityBase


class Counting(UtilityBase):
    """A random game over 9 players that counts evaluations and can be told to die after k."""

    def __init__(self, die_after: int | None = None) -> None:
        rng = np.random.default_rng(0)
        self.n_players, self.player_names = 9, np.arange(9)
        self.table = rng.normal(size=2**9)
        self.powers = 2 ** np.arange(9)
        self.calls, self.die_after = 0, die_after

    def fingerprint_parts(self) -> dict[str, str]:
        import joblib

        return {"utility": str(joblib.hash(self.table))}

    def __call__(self, subset) -> float:
        return float(self.evaluate_many([self.mask_of(subset)])[0])

    def evaluate_many(self, subsets):
        masks = np.asarray(list(subsets), dtype=bool).reshape(-1, self.n_players)
        self.calls += masks.shape[0]
        if self.die_after is not None and self.calls > self.die_after:
            raise KeyboardInterrupt
        return self.table[masks @ self.powers]


METHODS = {"loo": {}, "exact-shapley": {}, "least-core": {}}


@pytest.mark.parametrize("name", list(METHODS))
def test_killed_run_resumes_with_identical_values(name, tmp_path, monkeypatch) -> None:
    import dataworth.engine.runner as runner

    monkeypatch.setattr(runner, "TASK_SAVE_SECONDS", 0.0)  # save after every wave
    cls = get_method(name)
    full = Counting()
    expected = cls().fit(full).result_.values
    path = tmp_path / f"{name}.ckpt"
    dying = Counting(die_after=full.calls // 2)
    with pytest.raises(KeyboardInterrupt):
        cls(checkpoint=path, **_small_chunks(name, monkeypatch)).fit(dying)
    assert path.exists()
    resumed_game = Counting()
    resumed = cls(checkpoint=path, resume=True).fit(resumed_game).result_
    np.testing.assert_array_equal(resumed.values, expected)
    assert resumed_game.calls < full.calls  # the saved chunks were not evaluated again


def _small_chunks(name: str, monkeypatch) -> dict:
    """Many chunks, so that half the evaluations leave finished waves on disk."""
    if name == "loo":
        monkeypatch.setattr(get_method("loo"), "chunk_size", 1)
    elif name == "least-core":
        import dataworth.methods.least_core as lc

        monkeypatch.setattr(lc, "CHUNK_SIZE", 8)
    else:
        import dataworth.methods.exact as exact

        original = exact.all_subset_utilities

        def small(utility, **kw):
            kw["chunk_size"] = 8
            return original(utility, **kw)

        monkeypatch.setattr(exact, "all_subset_utilities", small)
    return {}


def test_a_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    path = tmp_path / "loo.ckpt"
    get_method("loo")(checkpoint=path).fit(Counting())
    other = Counting()
    other.table = other.table + 1.0
    with pytest.raises(CheckpointError, match="different run"):
        get_method("loo")(checkpoint=path, resume=True).fit(other)


def test_resume_without_a_path_is_refused() -> None:
    with pytest.raises(CheckpointError, match="needs a checkpoint"):
        get_method("exact-shapley")(resume=True).fit(Counting())


# ------------------------------------------------------------- workflow commands (CLI)
def _cli(capsys, *args: object) -> tuple[int, str]:
    from dataworth.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> str:
    from sklearn.datasets import make_classification

    X, y = make_classification(80, 4, random_state=0)
    path = tmp_path_factory.mktemp("wf") / "train.csv"
    header = ",".join([f"x{i}" for i in range(4)] + ["label"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=header, comments="")
    return str(path)


@pytest.mark.parametrize("command", ["prune", "debug", "explain"])
def test_workflow_commands_checkpoint_and_resume_their_valuation(
    command, train_csv, tmp_path, capsys
) -> None:
    ckpt = tmp_path / f"{command}.ckpt"
    extra = {"debug": ["--class", "1"], "explain": ["--bootstrap", "0"]}.get(command, [])
    base = [command, train_csv, "--target", "label", "--method", "tmc-shapley", "--budget", 5,
            "--quiet", *extra]  # fmt: skip
    code, err = _cli(capsys, *base, "--json", tmp_path / "a.json", "--checkpoint", ckpt)
    assert code == 0 and ckpt.exists(), err
    code, err = _cli(capsys, *base, "--json", tmp_path / "b.json", "--resume", ckpt)
    assert code == 0, err
    import json

    first, second = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert first == second
    code, err = _cli(capsys, *base, "--checkpoint", ckpt, "--resume", tmp_path / "o.ckpt")
    assert code == 2 and "either --checkpoint or --resume" in err


def test_clean_checkpoints_each_method_beside_the_path(train_csv, tmp_path, capsys) -> None:
    """clean values with several methods: each Monte Carlo one writes PATH's stem.METHOD.suffix,
    and a resumed run ends with the same report (timings aside)."""
    import json

    ckpt = tmp_path / "run.ckpt"
    base = ["clean", train_csv, "--target", "label", "--methods", "knn-shapley,tmc-shapley",
            "--budget", 5, "--quiet"]  # fmt: skip
    code, err = _cli(capsys, *base, "--json", tmp_path / "a.json", "--checkpoint", ckpt)
    assert code == 0, err
    assert (tmp_path / "run.tmc-shapley.ckpt").exists()
    assert not (tmp_path / "run.knn-shapley.ckpt").exists()  # exact in closed form: none
    assert "checkpoints of the valuations" in err
    code, err = _cli(capsys, *base, "--json", tmp_path / "b.json", "--resume", ckpt)
    assert code == 0, err

    def timeless(d):
        if isinstance(d, dict):
            return {k: timeless(v) for k, v in d.items() if k != "seconds"}
        return [timeless(x) for x in d] if isinstance(d, list) else d

    first, second = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert timeless(first) == timeless(second)


@pytest.mark.parametrize("method", ["loo", "tmc-shapley"])
def test_a_data_file_given_as_resume_is_refused_without_advice_to_delete_it(
    method, train_csv, tmp_path, capsys
) -> None:
    """A CSV passed to --resume by mistake is not 'damaged': say it is no checkpoint, never
    tell the user to delete it (both loaders: exact chunks and Monte Carlo statistics)."""
    other = tmp_path / "other.csv"
    other.write_bytes(Path(train_csv).read_bytes())
    code, err = _cli(capsys, "value", train_csv, "--target", "label", "--method", method,
                     "--budget", 3, "--resume", other)  # fmt: skip
    assert code == 2 and "is not a dataworth checkpoint" in err, err
    assert "delete" not in err
    assert other.read_bytes() == Path(train_csv).read_bytes()
