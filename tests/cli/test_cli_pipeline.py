"""The steps the valuing commands share (``dataworth.cli._pipeline``, issue 17, item 2): every
command that takes ``--method``/``--methods`` takes ``--method-params`` the same way, one
``--standardize``, one ``--n-jobs`` check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_runner import run_cli
from dataworth.cli import cli
from dataworth.cli._common import STANDARDIZE_HELP
from dataworth.datasets import load_dataset


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Iris as a CSV (with a provider column for market), 90 rows."""
    folder = tmp_path_factory.mktemp("pipeline")
    iris = load_dataset("iris")
    rows = np.random.default_rng(0).permutation(iris.n_samples)[:90]
    X, y = iris.X[rows], iris.y[rows]
    lines = ["a,b,c,d,provider,label"]
    lines += [
        ",".join([*(f"{v:g}" for v in x), "pqr"[i % 3], str(int(t))])
        for i, (x, t) in enumerate(zip(X, y, strict=True))
    ]
    path = folder / "iris.csv"
    path.write_text("\n".join(lines) + "\n")
    return {"train": str(path), "folder": str(folder)}


#: command -> the arguments it needs besides TRAIN and --target
COMMANDS = {
    "debug": ["--class", "1", "--drop", "provider"],
    "explain": ["--bootstrap", "0", "--drop", "provider"],
    "prune": ["--drop", "provider"],
    "clean": ["--drop", "provider", "--review", "0", "--fix", "0"],
    "market": ["--group", "provider", "--budget", "100"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_valuing_command_refuses_an_unknown_method_parameter(files, capsys, command):
    method = ["--methods", "tmc-shapley"] if command == "clean" else ["--method", "tmc-shapley"]
    res = run_cli(capsys, command, files["train"], "--target", "label", *COMMANDS[command],
                  *method, "--method-params", '{"nope": 1}')  # fmt: skip
    assert res.code == 2 and len(res.err_lines) == 1, res.err
    assert "--method-params: tmc-shapley has no parameter 'nope'" in res.err


@pytest.mark.parametrize("command", ["debug", "explain"])
def test_method_params_reach_the_method(files, capsys, tmp_path, command):
    out = tmp_path / "out.json"
    res = run_cli(capsys, command, files["train"], "--target", "label", *COMMANDS[command],
                  "--method", "tmc-shapley", "--budget", "3", "--quiet",
                  "--method-params", '{"tolerance": 0.2, "budget": 50}', "--json", out)  # fmt: skip
    assert res.code == 0, res.err
    assert "budget=3" in res.out and "tolerance=0.2" in res.out  # the flag wins over the JSON
    if command == "explain":
        assert json.loads(out.read_text())["params"]["tolerance"] == 0.2


def test_clean_method_params_flat_or_per_method(files, capsys, tmp_path):
    out = tmp_path / "clean.json"
    common = ["clean", files["train"], "--target", "label", *COMMANDS["clean"], "--quiet",
              "--methods", "knn-shapley,data-oob", "--json", out]  # fmt: skip
    res = run_cli(capsys, *common, "--method-params", '{"k": 3, "data-oob": {"budget": 20}}')
    assert res.code == 0, res.err
    params = json.loads(out.read_text())["methods"]
    assert params["knn-shapley"]["params"]["k"] == 3
    assert params["data-oob"]["params"]["budget"] == 20  # over clean's default of 100
    res = run_cli(capsys, *common, "--method-params", '{"tolerance": 0.1}')
    assert res.code == 2 and "none of the methods knn-shapley, data-oob has" in res.err
    res = run_cli(capsys, *common, "--method-params", '{"data-oob": 5}')
    assert res.code == 2 and "must be a JSON object" in res.err


def test_standardize_has_one_definition_everywhere() -> None:
    seen = {}
    for name in cli.list_commands(None):  # type: ignore[arg-type]
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None
        for param in command.params:
            if param.name == "standardize":
                seen[name] = param
    assert {"value", "debug", "explain", "prune", "clean", "market", "select", "report"} <= set(
        seen
    )
    for name, param in seen.items():
        assert param.help is not None and param.help.startswith(STANDARDIZE_HELP), name
        assert param.opts == ["--standardize"] and param.secondary_opts == ["--no-standardize"]
        assert param.default is (name == "clean"), name
    assert "On by default" in (seen["clean"].help or "")


@pytest.mark.parametrize("command", ["value", *sorted(COMMANDS)])
def test_n_jobs_zero_is_refused_in_the_same_words(files, capsys, command):
    extra = [] if command == "value" else COMMANDS[command]
    res = run_cli(capsys, command, files["train"], "--target", "label", *extra, "--n-jobs", "0")
    assert res.code == 2
    assert res.err.startswith("error: --n-jobs must be a positive whole number, or negative")
