"""Hand-edited or damaged checkpoint and result files are refused, never trusted.

Every field of a checkpoint (:class:`dataworth.engine.checkpoint.Checkpoint`) and of a saved
result (:meth:`dataworth.result.ValuationResult.load`) is verified on load. The reported cases
(issue 13, item 5) run through the command line: ``dataworth value --resume`` and ``dataworth
report`` exit with 2 and one ``error:`` line instead of resuming with wrong values, placing
values on wrong rows, or ending in an internal error. A property-based test mutates valid files
(header entries, arrays, raw bytes) and checks that a load either gives a consistent object or
raises :class:`DataworthError`, nothing else. ``DATAWORTH_HYPOTHESIS_SCALE=20`` runs 20 times as
many examples, freshly random (see ``tests/test_hostile_input.py``).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import load_iris

from cli_runner import Outcome, run_cli
from dataworth.cli import main
from dataworth.engine.checkpoint import Checkpoint, Saved
from dataworth.engine.moments import Moments
from dataworth.errors import CheckpointError, DataworthError
from dataworth.estimators.reducers import reduce_state as estimate
from dataworth.result import ValuationResult

SCALE = int(os.environ.get("DATAWORTH_HYPOTHESIS_SCALE", "0"))
TARGET = "label"
N_TRAIN = 20


def _settings(n: int) -> settings:
    return settings(
        max_examples=n * max(SCALE, 1),
        deadline=None,
        derandomize=SCALE == 0,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# ------------------------------------------------------------------------------------ helpers



def assert_one_error_line(res: Outcome, *needles: str) -> str:
    """Exit code 2 and standard error is exactly one ``error:`` line (with every needle)."""
    lines = res.err.splitlines()
    assert res.code == 2, f"exit {res.code}; stderr:\n{res.err}"
    assert len(lines) == 1 and lines[0].startswith("error:"), res.err
    assert "internal error" not in lines[0] and "Traceback" not in res.err + res.out
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def read_arrays(path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """The decoded JSON header and the other arrays of an npz file."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("header"))), arrays


def write_arrays(path: Path, header: Any, arrays: dict[str, np.ndarray]) -> None:
    """Write an npz file as a hand edit would: the header as JSON text, the arrays as given."""
    with path.open("wb") as fh:
        np.savez(fh, header=np.array(json.dumps(header)), **arrays)


Edit = Callable[[Any, dict[str, np.ndarray]], tuple[Any, dict[str, np.ndarray]]]


def edited(path: Path, edit: Edit) -> None:
    header, arrays = read_arrays(path)
    write_arrays(path, *edit(header, arrays))


def _set(key: str, value: Any) -> Edit:
    def edit(header: Any, arrays: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
        return {**header, key: value}, arrays

    return edit


def _arrays(change: Callable[[str, np.ndarray], np.ndarray]) -> Edit:
    def edit(header: Any, arrays: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
        return header, {k: change(k, v) for k, v in arrays.items()}

    return edit


# ------------------------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("file-validation")
    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=["a", "b", "c", "d"])
    frame[TARGET] = iris.target
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.iloc[:N_TRAIN].to_csv(root / "train.csv", index=False)
    frame.iloc[100:115].to_csv(root / "valid.csv", index=False)
    return {"root": root, "train": root / "train.csv", "valid": root / "valid.csv"}


def _value_args(files: dict[str, Path], budget: int) -> list[object]:
    return ["value", files["train"], "--target", TARGET, "--valid", files["valid"],
            "--method", "tmc-shapley", "--seed", 0, "--budget", budget]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(files: dict[str, Path]) -> Path:
    """A valid checkpoint of 2 of 4 permutations of ``dataworth value`` on 20 rows."""
    path = files["root"] / "base.ckpt"
    args = [*_value_args(files, 2), "--checkpoint", path, "--out", files["root"] / "half.csv"]
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        assert not exc.code
    assert path.is_file()
    return path


# --------------------------------------------------- the reported checkpoint cases, via the CLI
def _rng(**change: Any) -> Edit:
    def edit(header: Any, arrays: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
        return {**header, "rng_state": {**header["rng_state"], **change}}, arrays

    return edit


CHECKPOINT_DAMAGE: dict[str, tuple[Edit, str]] = {
    "arrays cut to length 1": (_arrays(lambda k, v: v[:1]), "shape (1,)"),
    "one array cut to length 1": (
        _arrays(lambda k, v: v[:1] if k.endswith(".mean") else v),
        "'marginal.mean' has shape (1,)",
    ),
    "mean inf": (
        _arrays(lambda k, v: np.full_like(v, np.inf) if k.endswith(".mean") else v),
        "'marginal.mean' holds inf",
    ),
    "mean nan": (
        _arrays(
            lambda k, v: np.where(np.arange(v.size) == 3, np.nan, v) if k.endswith("mean") else v
        ),
        "'marginal.mean' holds nan",
    ),
    "m2 negative": (_arrays(lambda k, v: -1.0 - v if k.endswith(".m2") else v), "'marginal.m2'"),
    "count negative": (
        _arrays(lambda k, v: -v if k.endswith(".count") else v),
        "'marginal.count'",
    ),
    "count as floats": (
        _arrays(lambda k, v: v.astype(float) if k.endswith(".count") else v),
        "'marginal.count' holds float64",
    ),
    "count above n_updates": (
        _arrays(lambda k, v: v + 100 if k.endswith(".count") else v),
        "more than 'n_updates'",
    ),
    "n_updates -100": (_set("n_updates", -100), "'n_updates' is -100"),
    "n_updates 1.5": (_set("n_updates", 1.5), "'n_updates' is a number (1.5)"),
    "n_updates true": (_set("n_updates", True), "'n_updates' is a boolean"),
    "null count": (_set("n_updates", None), "'n_updates' is null"),
    "string count": (_set("n_failures", "3"), "'n_failures' is a string"),
    "n_players 1": (_set("n_players", 1), "'n_players' is 1, but this run has 20 players"),
    "header as list": (lambda h, a: ([h], a), "'header' is a list"),
    "header as null": (lambda h, a: (None, a), "'header' is null"),
    "identity as list": (_set("identity", ["x"]), "'identity' is a list"),
    "state_keys null": (_set("state_keys", None), "'state_keys' is null"),
    "state_keys unknown": (
        _set("state_keys", ["marginal", "other"]),
        "'state_keys' is ['marginal', 'other'], but this run keeps ['marginal']",
    ),
    "rng_state a string": (_set("rng_state", "PCG64"), "'rng_state' is a string"),
    "rng_state of another generator": (_rng(bit_generator="MT19937"), "'rng_state'"),
    "rng_state negative": (_rng(state={"state": -1, "inc": 3}), "'rng_state'"),
    "rng_state too large": (_rng(state={"state": 2**200, "inc": 3}), "'rng_state'"),
    "rng_state inner list": (_rng(state=[1, 2]), "'rng_state'"),
    "rng_state extra key": (_rng(seed=1), "'rng_state'"),
    "rng_state missing": (
        lambda h, a: ({k: v for k, v in h.items() if k != "rng_state"}, a),
        "'rng_state' is missing",
    ),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_DAMAGE))
def test_damaged_checkpoint_is_refused_on_resume(case, files, checkpoint, tmp_path, capsys) -> None:
    edit, needle = CHECKPOINT_DAMAGE[case]
    ck = tmp_path / "run.ckpt"
    shutil.copy(checkpoint, ck)
    edited(ck, edit)
    before = ck.read_bytes()
    res = run_cli(capsys, *_value_args(files, 4), "--resume", ck, "--out", tmp_path / "out.csv")
    line = assert_one_error_line(res, str(ck), needle)
    if case not in ("header as list", "header as null", "identity as list"):
        assert "is damaged" in line and "delete it" in line
    assert not (tmp_path / "out.csv").exists()
    assert ck.read_bytes() == before  # a refused checkpoint is left as it was


def test_resume_from_an_intact_checkpoint_still_works(files, checkpoint, tmp_path, capsys) -> None:
    """The control: the unedited checkpoint (re-saved the way the edits are) resumes."""
    ck = tmp_path / "run.ckpt"
    shutil.copy(checkpoint, ck)
    edited(ck, lambda h, a: (h, a))
    res = run_cli(capsys, *_value_args(files, 4), "--resume", ck, "--out", tmp_path / "out.csv")
    assert res.code == 0, res.err
    fresh = run_cli(capsys, *_value_args(files, 4), "--out", tmp_path / "fresh.csv")
    assert fresh.code == 0, fresh.err
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"PK\x03\x04junk", "npy", "zip-of-text", "pickled-object"],
)
def test_files_that_are_not_checkpoints(content, files, tmp_path, capsys) -> None:
    ck = tmp_path / "run.ckpt"
    if content == "npy":
        with ck.open("wb") as fh:
            np.save(fh, np.zeros(3))
    elif content == "zip-of-text":
        with zipfile.ZipFile(ck, "w") as zf:
            zf.writestr("header.npy", "not an array")
    elif content == "pickled-object":
        with ck.open("wb") as fh:
            np.savez(fh, header=np.array([{"format": 1}], dtype=object))
    else:
        assert isinstance(content, bytes)
        ck.write_bytes(content)
    res = run_cli(capsys, *_value_args(files, 4), "--resume", ck, "--out", tmp_path / "out.csv")
    assert_one_error_line(res, str(ck))


def test_checkpoint_load_checks_the_run_shape(tmp_path) -> None:
    """``load(n_players, state_keys)``: a checkpoint consistent in itself but not with the run."""
    rng = np.random.default_rng(0)
    ckpt = Checkpoint(tmp_path / "run.ckpt", {"data": "d"})
    state = {"marginal": Moments.from_samples(rng.normal(size=(3, 4)))}
    ckpt.save(Saved(state, dict(rng.bit_generator.state), 3, 0))
    assert ckpt.load(4, ("marginal",)).n_updates == 3
    with pytest.raises(CheckpointError, match="'n_players' is 4, but this run has 5"):
        ckpt.load(5, ("marginal",))
    with pytest.raises(CheckpointError, match=r"but this run keeps \['in', 'out'\]"):
        ckpt.load(4, ("in", "out"))


def test_checkpoint_without_n_players_still_loads(tmp_path) -> None:
    """Checkpoints written before ``n_players`` was recorded: arrays must agree in length."""
    rng = np.random.default_rng(0)
    path = tmp_path / "run.ckpt"
    ckpt = Checkpoint(path, {"data": "d"})
    state = {"marginal": Moments.from_samples(rng.normal(size=(3, 4)))}
    ckpt.save(Saved(state, dict(rng.bit_generator.state), 3, 0))
    edited(path, lambda h, a: ({k: v for k, v in h.items() if k != "n_players"}, a))
    assert ckpt.load().state["marginal"].count.tolist() == [3] * 4
    assert ckpt.load(4).n_updates == 3
    with pytest.raises(CheckpointError, match=r"shape \(4,\), not of shape \(5,\)"):
        ckpt.load(5)
    edited(path, _arrays(lambda k, v: v[:2] if k.endswith(".m2") else v))
    with pytest.raises(CheckpointError, match=r"'marginal.m2' has shape \(2,\)"):
        ckpt.load()


# ------------------------------------------------------- the reported result cases, via report
def _result(n: int = N_TRAIN, **fields: Any) -> ValuationResult:
    rng = np.random.default_rng(1)
    fields.setdefault("labels", np.arange(n))
    return ValuationResult.from_state(
        {"marginal": Moments.from_samples(rng.normal(size=(5, n)))},
        "mean",
        method="tmc-shapley",
        **fields,
    )


RESULT_LABELS: dict[str, tuple[np.ndarray, str]] = {
    "negative labels": (np.arange(N_TRAIN) - 5, "whole numbers >= 0"),
    "all-zero labels": (np.zeros(N_TRAIN, dtype=np.int64), "index 0 appears more than once"),
    "one duplicate label": (np.r_[np.arange(N_TRAIN - 1), 3], "index 3 appears more than once"),
    "label past the data": (np.arange(N_TRAIN) + 1, f"values row {N_TRAIN}, but"),
    "huge unsigned label": (np.arange(N_TRAIN, dtype=np.uint64) + np.uint64(2**63), "values row"),
    "float labels": (np.arange(N_TRAIN) + 0.0, "labelled by row position"),
}


def _report_args(files: dict[str, Path], tmp: Path, *values: Path) -> list[object]:
    return ["report", *values, "--data", files["train"], "--target", TARGET,
            "--no-predictions", "--out", tmp / "report.html"]  # fmt: skip


@pytest.mark.parametrize("case", sorted(RESULT_LABELS))
def test_report_refuses_row_labels_it_cannot_place(case, files, tmp_path, capsys) -> None:
    labels, needle = RESULT_LABELS[case]
    path = _result(labels=labels).save(tmp_path / "values.npz")
    res = run_cli(capsys, *_report_args(files, tmp_path, path))
    assert_one_error_line(res, str(path), needle)
    assert not (tmp_path / "report.html").exists()


def test_report_places_a_subset_of_rows(files, tmp_path, capsys) -> None:
    """The control: distinct labels within the data are accepted, in any order."""
    rows = np.array([7, 0, 19, 3])
    path = _result(rows.size, labels=rows).save(tmp_path / "values.npz")
    res = run_cli(capsys, *_report_args(files, tmp_path, path))
    assert res.code == 0, res.err
    assert (tmp_path / "report.html").is_file()


RESULT_DAMAGE: dict[str, tuple[Edit, str]] = {
    "header as list": (lambda h, a: ([h], a), "'header' is a list"),
    "kind null": (_set("kind", None), "'kind' is null"),
    "kind unknown": (_set("kind", "cell"), "'kind' is 'cell'"),
    "params a list": (_set("params", []), "'params' is a list"),
    "method a number": (_set("method", 3), "'method' is a number"),
    "estimator unknown": (_set("estimator", "median"), "'estimator' is 'median'"),
    "state_keys a string": (_set("state_keys", "marginal"), "'state_keys' is a string"),
    "state missing": (_set("state_keys", ["other"]), "'state.other.count' is missing"),
    "state of the wrong estimator": (_set("estimator", "difference"), "lacks 'in'"),
    "values cut to length 1": (
        _arrays(lambda k, v: v[:1] if k == "values" else v),
        "'stderr' has shape (20,), not of shape (1,)",
    ),
    "labels cut to length 1": (
        _arrays(lambda k, v: v[:1] if k == "labels" else v),
        "'labels' has shape (1,)",
    ),
    "counts negative": (_arrays(lambda k, v: -v if k == "counts" else v), "'counts'"),
    "counts as text": (
        _arrays(lambda k, v: v.astype(str) if k == "counts" else v),
        "'counts' holds <U",
    ),
    "values two-dimensional": (
        _arrays(lambda k, v: v[None, :] if k == "values" else v),
        "'values' has shape (1, 20)",
    ),
    "state mean inf": (
        _arrays(lambda k, v: v + np.inf if k == "state.marginal.mean" else v),
        "'state.marginal.mean' holds inf",
    ),
    "values missing": (
        lambda h, a: (h, {k: v for k, v in a.items() if k != "values"}),
        "'values' is missing",
    ),
}


@pytest.mark.parametrize("case", sorted(RESULT_DAMAGE))
def test_damaged_result_is_refused(case, files, tmp_path, capsys) -> None:
    edit, needle = RESULT_DAMAGE[case]
    path = _result().save(tmp_path / "values.npz")
    edited(path, edit)
    with pytest.raises(DataworthError) as info:
        ValuationResult.load(path)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message
    res = run_cli(capsys, *_report_args(files, tmp_path, path))
    assert_one_error_line(res, str(path), needle)


def test_report_refuses_a_repeated_group(files, tmp_path, capsys) -> None:
    """A result may repeat a label (the constructor allows it); the report, which places values
    by label, refuses it."""
    r = _result(3, labels=np.array(["a", "b", "a"]), kind="group")
    path = r.save(tmp_path / "g.npz")
    assert ValuationResult.load(path).labels.tolist() == ["a", "b", "a"]
    res = run_cli(capsys, *_report_args(files, tmp_path, path), "--group", "a")
    assert_one_error_line(res, str(path), "group a appears more than once")


def test_nan_and_infinite_values_are_kept(tmp_path) -> None:
    """What the constructor allows (a NaN value: no sample; inf) loads back unchanged."""
    r = ValuationResult(
        values=[np.nan, np.inf, 1.0], stderr=[np.nan, 0.0, np.nan], counts=[0, 1, 2]
    )
    back = ValuationResult.load(r.save(tmp_path / "r.npz"))
    assert back.values.tolist()[1:] == [math.inf, 1.0] and math.isnan(back.values[0])


# ------------------------------------------------------------------------------- fuzzing
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
DTYPES = ["int64", "int32", "uint64", "uint8", "float64", "float32", "float16", "bool",
          "complex128", "<U3", ">i8", ">f8"]  # fmt: skip


@st.composite
def replacement_arrays(draw: st.DrawFn, n: int) -> np.ndarray:
    """An array of a random dtype and shape near ``(n,)``, with random values."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(
        st.one_of(
            st.tuples(st.sampled_from([0, 1, n - 1, n, n + 1])),
            st.just(()),
            st.tuples(st.integers(1, 2), st.integers(0, n)),
        )
    )
    return draw(hnp.arrays(dtype, shape))


@st.composite
def mutations(draw: st.DrawFn, header_keys: list[str], n: int) -> list[tuple[Any, ...]]:
    """A few edits: ``("set", key, value)``, ``("del", key)``, ``("header", value)``,
    ``("nested", key, subkey, value)``, ``("cut", array, length)``, ``("array", name, array)``,
    ``("drop", array)`` or ``("bytes", how, position, byte)``."""
    keys = st.sampled_from([*header_keys, "extra"])
    edit = st.one_of(
        st.tuples(st.just("set"), keys, json_values),
        st.tuples(st.just("del"), keys),
        st.tuples(st.just("header"), json_values),
        st.tuples(
            st.just("nested"), keys, st.sampled_from(["state", "bit_generator", "x"]), json_values
        ),
        st.tuples(st.just("cut"), st.integers(0, 100), st.integers(0, n + 1)),
        st.tuples(st.just("array"), st.integers(0, 100), replacement_arrays(n)),
        st.tuples(st.just("drop"), st.integers(0, 100)),
        st.tuples(
            st.just("bytes"),
            st.sampled_from(["flip", "cut", "insert"]),
            st.floats(0, 1),
            st.integers(0, 255),
        ),
    )
    return draw(st.lists(edit, min_size=1, max_size=3))


def apply(path: Path, edits: list[tuple[Any, ...]]) -> None:
    """Apply the edits of :func:`mutations` to the npz file at ``path``."""
    header, arrays = read_arrays(path)
    raw: list[tuple[str, float, int]] = []
    for op, *args in edits:
        names = sorted(arrays)
        if op == "set" and isinstance(header, dict):
            header[args[0]] = args[1]
        elif op == "del" and isinstance(header, dict):
            header.pop(args[0], None)
        elif op == "header":
            header = args[0]
        elif op == "nested" and isinstance(header, dict) and isinstance(header.get(args[0]), dict):
            header[args[0]] = {**header[args[0]], args[1]: args[2]}
        elif op == "cut" and names:
            name = names[args[0] % len(names)]
            arrays[name] = arrays[name].reshape(-1)[: args[1]]
        elif op == "array" and names:
            arrays[names[args[0] % len(names)]] = args[1]
        elif op == "drop" and names:
            del arrays[names[args[0] % len(names)]]
        elif op == "bytes":
            raw.append((args[0], args[1], args[2]))
    try:
        text = json.dumps(header)
    except ValueError:  # a circular structure cannot be drawn; NaN and inf are written as such
        text = "null"
    buffer = io.BytesIO()
    np.savez(buffer, header=np.array(text), **arrays)
    data = bytearray(buffer.getvalue())
    for how, where, byte in raw:
        at = int(where * max(len(data) - 1, 0))
        if how == "flip" and data:
            data[at] ^= byte or 1
        elif how == "cut":
            del data[at:]
        else:
            data[at:at] = bytes([byte]) * 8
    path.write_bytes(bytes(data))


def assert_consistent_saved(saved: Saved, n: int, keys: tuple[str, ...]) -> None:
    assert isinstance(saved.n_updates, int) and saved.n_updates >= 0
    assert isinstance(saved.n_failures, int) and saved.n_failures >= 0
    assert sorted(saved.state) == sorted(keys)
    for mom in saved.state.values():
        for part in (mom.count, mom.mean, mom.m2):
            assert part.shape == (n,)
        assert mom.count.dtype == np.int64 and np.all(mom.count >= 0)
        assert np.all(mom.count <= saved.n_updates)
        assert np.all(np.isfinite(mom.mean)) and np.all(np.isfinite(mom.m2))
        assert np.all(mom.m2 >= 0)
    np.random.default_rng().bit_generator.state = saved.rng_state  # restoring never raises


FUZZ_N = 6
FUZZ_KEYS = ("in", "out")


@pytest.fixture(scope="module")
def fuzz_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    masks = rng.random((9, FUZZ_N)) < 0.5
    u = rng.normal(size=9)
    state = {"in": Moments.from_indicator(masks, u), "out": Moments.from_indicator(~masks, u)}
    path = tmp_path_factory.mktemp("fuzz") / "base.ckpt"
    Checkpoint(path, {"data": "d", "method": "m"}).save(
        Saved(state, dict(rng.bit_generator.state), 9, 2)
    )
    return path


CHECKPOINT_HEADER = ["format", "identity", "rng_state", "n_updates", "n_failures", "n_players",
                     "state_keys"]  # fmt: skip


@_settings(150)
@given(edits=mutations(CHECKPOINT_HEADER, FUZZ_N), expected=st.booleans())
def test_fuzz_checkpoint_load(fuzz_checkpoint, tmp_path, edits, expected) -> None:
    path = tmp_path / "run.ckpt"
    shutil.copy(fuzz_checkpoint, path)
    apply(path, edits)
    ckpt = Checkpoint(path, {"data": "d", "method": "m"})
    try:
        saved = ckpt.load(FUZZ_N, FUZZ_KEYS) if expected else ckpt.load()
    except CheckpointError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert_consistent_saved(saved, FUZZ_N, FUZZ_KEYS if expected else tuple(saved.state))


RESULT_HEADER = ["format", "method", "params", "metadata", "kind", "estimator", "state_keys"]


@pytest.fixture(scope="module")
def fuzz_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = _result(FUZZ_N, labels=np.arange(FUZZ_N) * 2, params={"budget": 5})
    return r.save(tmp_path_factory.mktemp("fuzz") / "base.npz")


@_settings(150)
@given(edits=mutations(RESULT_HEADER, FUZZ_N))
def test_fuzz_result_load(fuzz_result, tmp_path, edits) -> None:
    path = tmp_path / "values.npz"
    shutil.copy(fuzz_result, path)
    apply(path, edits)
    try:
        r = ValuationResult.load(path)
    except DataworthError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    n = len(r)
    for part in (r.values, r.stderr, r.counts, r.labels):
        assert part.shape == (n,)
    assert r.values.dtype == np.float64 and r.stderr.dtype == np.float64
    assert r.counts.dtype == np.int64 and np.all(r.counts >= 0)
    assert r.kind in ("row", "group") and isinstance(r.method, str)
    assert isinstance(r.params, dict) and isinstance(r.metadata, dict)
    if r.state is not None:
        assert r.estimator is not None
        estimate(r.estimator, r.state)  # the state and the estimator agree
        for mom in r.state.values():
            assert mom.count.shape == (n,) and np.all(np.isfinite(mom.mean))
