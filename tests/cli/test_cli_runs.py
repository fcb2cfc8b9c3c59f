"""What a Monte Carlo run says about itself, through the CLI: how noisy its values are and how
well two halves of its samples agree (with a budget that would make the ranking reliable);
which limit ended a run short of its target; what a resumed run took from its checkpoint and
why a checkpoint is refused; ``dataworth merge``; and what an interruption says about resuming.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from test_cli import assert_ok, assert_user_error, read_out

from cli_runner import run_cli
from dataworth.result import ValuationResult


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    X, y = make_classification(120, 5, n_informative=3, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["y"] = y
    frame.iloc[:60].to_csv(root / "train.csv", index=False)
    frame.iloc[60:].to_csv(root / "valid.csv", index=False)
    return root / "train.csv", root / "valid.csv"


def run_value(capsys, data, *args: object):
    train, valid = data
    return run_cli(capsys, "value", train, "--target", "y", "--valid", valid, *args)


def notes(res) -> list[str]:
    return [line[len("note: ") :] for line in res.err_lines if line.startswith("note: ")]


# ------------------------------------------------------------------- 3. noise and reliability
def test_a_noisy_run_says_so_and_suggests_a_budget(data, tmp_path, capsys) -> None:
    saved = tmp_path / "r.npz"
    res = run_value(capsys, data, "--method", "banzhaf", "--budget", 40, "--seed", 1,
                    "--save-result", saved, "--out", tmp_path / "v.csv")  # fmt: skip
    assert_ok(res)
    meta = ValuationResult.load(saved).metadata
    share = [n for n in notes(res) if "indistinguishable from zero" in n]
    assert len(share) == 1 and f"{100 * meta['share_near_zero']:.1f}%" in share[0]
    split = [n for n in notes(res) if n.startswith("split-half reliability")]
    assert len(split) == 1, res.err
    r = meta["split_half_spearman"]
    assert -1 <= r < 0.5 and f"{r:.2f}" in split[0]
    # Spearman-Brown: halves k times longer correlate k r / (1 + (k - 1) r) = 0.9
    budget = meta["suggested_budget"]
    assert f"budget of about {budget}" in split[0]
    k = budget / 40
    assert k * r / (1 + (k - 1) * r) == pytest.approx(0.9, abs=0.01)


def test_a_reliable_run_reports_its_split_half_correlation(data, tmp_path, capsys) -> None:
    saved = tmp_path / "r.npz"
    res = run_value(capsys, data, "--method", "banzhaf", "--budget", 2000,
                    "--save-result", saved, "--out", tmp_path / "v.csv")  # fmt: skip
    assert_ok(res)
    meta = ValuationResult.load(saved).metadata
    assert meta["split_half_spearman"] >= 0.5
    assert meta["split_half_samples"] == 2000
    assert "suggested_budget" not in meta
    (split,) = [n for n in notes(res) if n.startswith("split-half reliability")]
    assert "budget" not in split


def test_workflow_commands_say_it_too(data, capsys) -> None:
    train, _ = data
    res = run_cli(capsys, "prune", train, "--target", "y", "--method", "banzhaf",
                 "--budget", 40)  # fmt: skip
    assert_ok(res)
    assert any("indistinguishable from zero" in n for n in notes(res)), res.err
    assert any(n.startswith("split-half reliability") for n in notes(res)), res.err


def test_values_do_not_depend_on_a_rule_reading_the_halves(data, tmp_path, capsys) -> None:
    """The halves are always kept, so a run with --rank-stable (which stops on them) has the
    values of the same run without it, bit for bit, and so have n_jobs 1 and 2."""
    outs = []
    for i, extra in enumerate([[], ["--rank-stable", 0.999, "--n-jobs", 2], ["--n-jobs", 2]]):
        out = tmp_path / f"v{i}.csv"
        res = run_value(capsys, data, "--method", "tmc-shapley", "--budget", 24, "--seed", 3,
                        "--out", out, *extra)  # fmt: skip
        assert_ok(res)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


# ----------------------------------------------------------------- 4. stop targets and budgets
def test_a_stop_target_lifts_the_default_budget(data, tmp_path, capsys) -> None:
    """tmc-shapley's default budget is 100 permutations; with --stderr-below and no --budget
    the run goes on until the target is met."""
    saved = tmp_path / "r.npz"
    res = run_value(capsys, data, "--method", "tmc-shapley", "--stderr-below", 0.004,
                    "--time-limit", 120, "--save-result", saved,
                    "--out", tmp_path / "v.csv")  # fmt: skip
    assert_ok(res)
    result = ValuationResult.load(saved)
    assert result.metadata["n_updates"] > 100
    assert np.nanmax(result.stderr) < 0.004
    assert not any("before reaching its target" in n for n in notes(res)), res.err


def test_a_run_ended_by_its_budget_says_so(data, tmp_path, capsys) -> None:
    res = run_value(capsys, data, "--method", "tmc-shapley", "--stderr-below", 1e-6,
                    "--budget", 10, "--out", tmp_path / "v.csv")  # fmt: skip
    assert_ok(res)
    (line,) = [n for n in notes(res) if "before reaching its target" in n]
    assert "budget (10 samples)" in line and "below 1e-06" in line
    assert re.search(r"the largest is \d", line), line


def test_a_run_ended_by_its_time_limit_says_so(data, tmp_path, capsys) -> None:
    res = run_value(capsys, data, "--method", "tmc-shapley", "--stderr-below", 1e-6,
                    "--time-limit", 1, "--out", tmp_path / "v.csv")  # fmt: skip
    assert_ok(res)
    (line,) = [n for n in notes(res) if "before reaching its target" in n]
    assert "time limit (1 s)" in line and "raise the time limit" in line


# ------------------------------------------------------------------------- 13. resume, seed
def test_resume_says_how_many_samples_came_from_the_checkpoint(data, tmp_path, capsys) -> None:
    ck = tmp_path / "run.ckpt"
    common = ["--method", "tmc-shapley", "--seed", 5]
    assert_ok(run_value(capsys, data, *common, "--budget", 10, "--checkpoint", ck,
                        "--out", tmp_path / "a.csv"))  # fmt: skip
    res = run_value(capsys, data, *common, "--budget", 30, "--resume", ck,
                    "--out", tmp_path / "b.csv")  # fmt: skip
    assert_ok(res)
    assert (
        f"resumed from {ck}: 10 of the 30 samples came from the checkpoint, 20 were drawn "
        "now." in notes(res)
    )


def test_resumed_split_half_matches_an_uninterrupted_run(data, tmp_path, capsys) -> None:
    ck = tmp_path / "run.ckpt"
    common = ["--method", "tmc-shapley", "--seed", 5]
    metas = []
    for args in (["--budget", 12, "--checkpoint", ck], ["--budget", 24, "--resume", ck],
                 ["--budget", 24]):  # fmt: skip
        saved = tmp_path / "r.npz"
        assert_ok(run_value(capsys, data, *common, *args, "--save-result", saved,
                            "--out", tmp_path / "v.csv"))  # fmt: skip
        metas.append(ValuationResult.load(saved).metadata)
    assert metas[1]["split_half_samples"] == 24
    assert metas[1]["split_half_spearman"] == metas[2]["split_half_spearman"]


def test_a_checkpoint_of_another_seed_names_the_seed(data, tmp_path, capsys) -> None:
    ck = tmp_path / "run.ckpt"
    common = ["--method", "tmc-shapley", "--budget", 6]
    assert_ok(run_value(capsys, data, *common, "--seed", 3, "--checkpoint", ck,
                        "--out", tmp_path / "a.csv"))  # fmt: skip
    res = run_value(capsys, data, *common, "--seed", 4, "--resume", ck,
                    "--out", tmp_path / "b.csv")  # fmt: skip
    assert_user_error(res, "random_state 3 in the checkpoint, 4 in this run")


# ----------------------------------------------------------------------------------- 14. merge
def test_merge_equals_the_sum_of_the_parts(data, tmp_path, capsys) -> None:
    parts = []
    for seed in (1, 2):
        saved = tmp_path / f"part{seed}.npz"
        assert_ok(run_value(capsys, data, "--method", "banzhaf", "--budget", 32, "--seed", seed,
                            "--save-result", saved,
                            "--out", tmp_path / f"p{seed}.csv"))  # fmt: skip
        parts.append(saved)
    out, saved = tmp_path / "merged.csv", tmp_path / "merged.npz"
    res = run_cli(capsys, "merge", *parts, "--out", out, "--save-result", saved)
    assert_ok(res)
    assert "merged 2 banzhaf results over 60 rows: 64 samples" in res.err
    expected = ValuationResult.load(parts[0]) + ValuationResult.load(parts[1])
    header, rows = read_out(out)
    assert header == "index,value,stderr,count"
    np.testing.assert_array_equal([float(r[1]) for r in rows], expected.values)
    merged = ValuationResult.load(saved)
    assert merged.metadata["n_updates"] == 64
    assert "split_half_spearman" not in merged.metadata
    assert any("indistinguishable from zero" in n for n in notes(res))


def test_merge_refuses_csv_same_seed_and_other_data(data, tmp_path, capsys) -> None:
    train, valid = data
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert_ok(run_value(capsys, data, "--method", "banzhaf", "--budget", 16, "--seed", 1,
                        "--save-result", a, "--out", tmp_path / "a.csv"))  # fmt: skip
    res = run_cli(capsys, "merge", a, tmp_path / "a.csv")
    assert_user_error(res, "a.csv is not a result file", "--save-result")
    res = run_cli(capsys, "merge", a, a)
    assert_user_error(res, "random_state 1", "another --seed")
    res = run_cli(capsys, "merge", a)
    assert_user_error(res, "at least two")
    assert_ok(run_cli(capsys, "value", valid, "--target", "y", "--valid", train, "--method",
                     "banzhaf", "--budget", 16, "--seed", 2, "--save-result", b,
                     "--out", tmp_path / "b.csv"))  # fmt: skip
    assert_user_error(run_cli(capsys, "merge", a, b), "other data")
    res = run_cli(capsys, "merge", a, b, "--out", a)
    assert_user_error(res, "input")


# ----------------------------------------------------------------------- 15. interrupt hints
def _interrupt(tmp_path: Path, *args: str) -> str:
    X, y = make_classification(3000, 8, random_state=0)
    src = tmp_path / "d.csv"
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
    frame["y"] = y
    frame.to_csv(src, index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataworth.cli", *args[:1], str(src), "--target", "y", *args[1:]],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(6)
    assert proc.poll() is None, "the command finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["explain", "--method", "permutation-shapley", "--budget", "100000"], "interrupted."),
        (["value", "--method", "loo", "--no-batch", "--checkpoint", "c.npz"],
         "interrupted; every finished round is saved in c.npz: rerun the command with --resume "
         "c.npz in place of --checkpoint c.npz to continue."),
        (["value", "--method", "permutation-shapley", "--no-batch", "--budget", "100000"],
         "interrupted; nothing was saved: with --checkpoint PATH"),
        (["value", "--method", "permutation-shapley", "--no-batch", "--budget", "100000",
          "--checkpoint", "c.npz"],
         "interrupted; every finished round is saved in c.npz: rerun the command with --resume "
         "c.npz in place of --checkpoint c.npz to continue."),
    ],
)  # fmt: skip
def test_interrupt_mentions_checkpoints_only_where_true(tmp_path, args, expected) -> None:
    line = _interrupt(tmp_path, *args)
    assert line.startswith(expected), line
