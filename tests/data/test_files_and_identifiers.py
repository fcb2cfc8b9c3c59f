"""Issue 13, items 1, 2, 6, 7, 9, 11, 12, 14 and the Ctrl-C line: identifiers stay exact text,
one definition of a missing cell, outputs never destroy inputs and are written atomically with
the user's umask, spreadsheet formulas are neutralised, seeds are range-checked.

Each test drives the real command (in-process through :func:`dataworth.cli.main`, or as a
subprocess where a process-wide setting such as a file-size limit or the umask matters).
"""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataworth.cli import main
from dataworth.data import MISSING_TEXT, Dataset, is_missing, read_table
from dataworth.errors import DataworthError
from dataworth.fileio import atomic_output, check_output_paths, spreadsheet_safe
from dataworth.result import ValuationResult

#: Provider names that a float parser merges into 4 (7, 1234, 1e3 = 1000, 1.2345678901234568e16).
TRICKY_IDS = [
    "007",
    "7",
    "01234",
    "1234",
    "12345678901234567",
    "12345678901234568",
    "1e3",
    "1000",
]
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1,1)", "-2+3", "@x"]


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]
    assert "Traceback" not in err


def frame(n: int = 96, seed: int = 0, ids: list[str] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    data = {
        "a": rng.normal(size=n) + y,
        "b": rng.normal(size=n),
        "y": y,
    }
    if ids is not None:
        data["provider"] = [ids[i % len(ids)] for i in range(n)]
    return pd.DataFrame(data)


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


# ----------------------------------------------------------------- 1. identifiers are exact text
def test_group_ids_stay_distinct_and_exact_in_value(tmp_path, capsys) -> None:
    src = write_csv(frame(ids=TRICKY_IDS), tmp_path / "d.csv")
    out = tmp_path / "v.csv"
    code, _, err = run(capsys, "value", src, "--target", "y", "--group", "provider",
                       "--method", "loo", "--out", out)  # fmt: skip
    assert code == 0, err
    groups = [row["group"] for row in csv.DictReader(out.open())]
    assert sorted(groups) == sorted(TRICKY_IDS)


def test_providers_stay_distinct_and_exact_in_market(tmp_path, capsys) -> None:
    src = write_csv(frame(ids=TRICKY_IDS), tmp_path / "d.csv")
    out = tmp_path / "m.csv"
    code, _, err = run(capsys, "market", src, "--target", "y", "--group", "provider",
                       "--budget", "100", "--out", out)  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    assert sorted(r["provider"] for r in rows) == sorted(TRICKY_IDS)
    cents = sum(round(float(r["payout"]) * 100) for r in rows)
    assert cents == 10000


def test_parquet_group_column_is_exact_text(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    df = frame(ids=TRICKY_IDS)
    df.to_parquet(tmp_path / "d.parquet")
    ds = Dataset.from_file(tmp_path / "d.parquet", "y", group="provider")
    assert sorted(set(ds.groups.tolist())) == sorted(TRICKY_IDS)
    ints = frame().assign(provider=np.arange(96) % 3 + 10**17)  # int64 beyond float precision
    ints.to_parquet(tmp_path / "i.parquet")
    ds = Dataset.from_file(tmp_path / "i.parquet", "y", group="provider")
    assert sorted(set(ds.groups.tolist())) == [str(10**17), str(10**17 + 1), str(10**17 + 2)]


def test_report_reads_group_values_as_text(tmp_path, capsys) -> None:
    src = write_csv(frame(ids=TRICKY_IDS), tmp_path / "d.csv")
    out = tmp_path / "v.csv"
    assert run(capsys, "value", src, "--target", "y", "--group", "provider", "--method", "loo",
               "--out", out)[0] == 0  # fmt: skip
    result = ValuationResult.read(out)
    assert sorted(result.labels.tolist()) == sorted(TRICKY_IDS)


# ------------------------------------------------------------- 2. one definition of "missing"
@pytest.mark.parametrize("marker", ["NA", "N/A", "", "null", "NaN", "None", "#N/A"])
def test_missing_label_is_refused(tmp_path, capsys, marker) -> None:
    df = frame().astype({"y": object})
    df.loc[3, "y"] = marker
    df.loc[5, "y"] = "N/A" if marker != "N/A" else "NA"
    src = tmp_path / "d.csv"
    df.to_csv(src, index=False, na_rep="")
    code, _, err = run(capsys, "value", src, "--target", "y", "--method", "loo")
    one_error(code, err, "missing")


@pytest.mark.parametrize("role", ["feature", "group"])
def test_missing_marker_is_missing_in_features_and_groups(tmp_path, capsys, role) -> None:
    df = frame(ids=["p", "q", "r"]).astype({"a": object})
    if role == "feature":
        df.loc[4, "a"] = "NA"
    else:
        df.loc[4, "provider"] = "N/A"
    src = write_csv(df, tmp_path / "d.csv")
    strict = ["--impute", "refuse"] if role == "feature" else []  # blanks are filled by default
    code, _, err = run(capsys, "value", src, "--target", "y", "--group", "provider",
                       "--method", "loo", *strict)  # fmt: skip
    one_error(code, err, "missing")


def test_missing_is_one_definition() -> None:
    assert all(is_missing(m) and is_missing(f"  {m} ") for m in MISSING_TEXT)
    assert not any(is_missing(v) for v in ("0", "none", "n", "-", "NAN!"))


def test_two_spellings_of_one_label_are_refused(tmp_path, capsys) -> None:
    df = frame().astype({"y": object})
    df["y"] = [["1", "1.0", "zero"][i % 3] for i in range(len(df))]
    src = write_csv(df, tmp_path / "d.csv")
    code, _, err = run(capsys, "value", src, "--target", "y", "--method", "loo")
    one_error(code, err, "'1' and '1.0'")


def test_numbers_mixed_with_words_are_said(tmp_path, capsys) -> None:
    df = frame().astype({"y": object})
    df["y"] = [["1", "zero"][i % 2] for i in range(len(df))]
    src = write_csv(df, tmp_path / "d.csv")
    code, _, err = run(capsys, "value", src, "--target", "y", "--method", "loo")
    assert code == 0, err
    assert "mixes numbers" in err and "'zero'" in err


def test_parquet_list_column_is_refused(tmp_path, capsys) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    n = 40
    table = pa.table({"a": np.arange(n, dtype=float), "y": [[i % 2, 1] for i in range(n)]})
    pq.write_table(table, tmp_path / "l.parquet")
    code, _, err = run(capsys, "value", tmp_path / "l.parquet", "--target", "y", "--method", "loo")
    one_error(code, err, "'y'", "list")


def test_frame_with_lists_in_cells_is_refused() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [[0], [1], [0]]})
    with pytest.raises(DataworthError, match="one number or one text"):
        Dataset.from_frame(df, "y")


# ----------------------------------------------------------- 6. outputs never overwrite inputs
def _commands(src: Path, other: Path, tmp: Path) -> dict[str, list[object]]:
    """One invocation per command that writes files, with OUT standing for the output."""
    return {
        "value --out": ["value", src, "--target", "y", "--method", "loo", "--out", "OUT"],
        "value --checkpoint": ["value", src, "--target", "y", "--method", "tmc-shapley",
                               "--budget", "2", "--checkpoint", "OUT"],
        "value --save-result": ["value", src, "--target", "y", "--method", "loo",
                                "--save-result", "OUT"],
        "value --valid": ["value", src, "--target", "y", "--valid", other, "--method", "loo",
                          "--out", "OUT"],
        "clean --out": ["clean", src, "--target", "y", "--methods", "loo", "--out", "OUT"],
        "clean --json": ["clean", src, "--target", "y", "--methods", "loo", "--json", "OUT"],
        "prune --out": ["prune", src, "--target", "y", "--method", "loo", "--out", "OUT"],
        "market --out": ["market", src, "--target", "y", "--group", "provider", "--budget", "10",
                         "--out", "OUT"],
        "report -o": ["report", other, "--data", src, "--target", "y", "-o", "OUT"],
        "explain --json": ["explain", src, "--target", "y", "--json", "OUT"],
        "debug --json": ["debug", src, "--target", "y", "--class", "1", "--json", "OUT"],
        "influencers --json": ["influencers", src, "--target", "y", "--test", other, "--row",
                               "0", "--json", "OUT"],
        "robustness --json": ["robustness", src, "--target", "y", "--features", "a,b",
                              "--coef", "a", "--change", "sign", "--json", "OUT"],
    }  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [
        "value --out",
        "value --checkpoint",
        "value --save-result",
        "value --valid",
        "clean --out",
        "clean --json",
        "prune --out",
        "market --out",
        "report -o",
        "explain --json",
        "debug --json",
        "influencers --json",
        "robustness --json",
    ],
)
def test_an_output_naming_an_input_is_refused_before_any_work(tmp_path, capsys, command) -> None:
    df = frame(ids=["p", "q", "r"])
    src = write_csv(df, tmp_path / "train.csv")
    other = write_csv(df, tmp_path / "other.csv")
    target = other if command in ("value --valid", "report -o") else src
    link = tmp_path / "link.csv"
    os.link(target, link)  # a second name for the same file
    for spelling in (target, tmp_path / "." / target.name, link):
        before = target.read_bytes()
        args = [spelling if a == "OUT" else a for a in _commands(src, other, tmp_path)[command]]
        started = time.monotonic()
        code, _, err = run(capsys, *args)
        one_error(code, err, "input")
        assert time.monotonic() - started < 5
        assert target.read_bytes() == before


def test_output_directory_and_unwritable_places_are_refused_before_work(tmp_path, capsys) -> None:
    src = write_csv(frame(), tmp_path / "train.csv")
    code, _, err = run(capsys, "value", src, "--target", "y", "--method", "loo",
                       "--out", tmp_path)  # fmt: skip
    one_error(code, err, "directory")
    assert "valued" not in err
    code, _, err = run(capsys, "value", src, "--target", "y", "--method", "loo",
                       "--out", src / "x.csv")  # fmt: skip
    one_error(code, err, "not a directory")
    same = tmp_path / "v.csv"
    code, _, err = run(capsys, "value", src, "--target", "y", "--method", "loo",
                       "--out", same, "--save-result", same)  # fmt: skip
    one_error(code, err, "same file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_refused_before_work(tmp_path, capsys) -> None:
    src = write_csv(frame(), tmp_path / "train.csv")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run(capsys, "value", src, "--target", "y", "--method", "loo",
                       "--out", locked / "v.csv")  # fmt: skip
    one_error(code, err, "not writable")


def test_resume_may_name_the_checkpoint(tmp_path, capsys) -> None:
    src = write_csv(frame(), tmp_path / "train.csv")
    ck = tmp_path / "run.ckpt"
    args = ["value", src, "--target", "y", "--method", "tmc-shapley", "--budget", "2"]
    assert run(capsys, *args, "--checkpoint", ck)[0] == 0
    code, _, err = run(capsys, *args, "--checkpoint", ck, "--resume", ck)
    assert code == 0, err


def test_check_output_paths_allows_devices() -> None:
    check_output_paths({"--out": "/dev/null"}, ["/dev/zero"])


# ----------------------------------------------------------------- 7. atomic writes, 11. umask
def _cli(args: list[object], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataworth.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=120, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_file_size_limit_keeps_the_previous_output(tmp_path) -> None:
    src = write_csv(frame(n=400), tmp_path / "train.csv")
    out = tmp_path / "values.csv"
    args = ["value", src, "--target", "y", "--method", "knn-shapley", "--out", out]
    assert _cli(args, tmp_path).returncode == 0
    good = out.read_bytes()
    assert len(good) > 4096
    out.write_bytes(good[:100])  # an older, shorter good file that fits under the limit
    older = out.read_bytes()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = _cli(args, tmp_path, preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr
    assert "cannot write" in proc.stderr
    assert out.read_bytes() == older
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_atomic_output_keeps_the_old_file_on_error(tmp_path) -> None:
    out = tmp_path / "x.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(out) as fh:
        fh.write("new, partial")
        raise RuntimeError
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_every_output_follows_the_umask(tmp_path) -> None:
    src = write_csv(frame(), tmp_path / "train.csv")
    old = os.umask(0o027)
    try:
        runs = [
            ["value", src, "--target", "y", "--method", "loo", "--out", "v.csv",
             "--save-result", "v.npz"],
            ["value", src, "--target", "y", "--method", "tmc-shapley", "--budget", "2",
             "--checkpoint", "run.ckpt"],
            ["report", "v.csv", "--data", src, "--target", "y", "-o", "r.html"],
            ["clean", src, "--target", "y", "--methods", "loo", "--json", "c.json"],
        ]  # fmt: skip
        for args in runs:
            proc = _cli(args, tmp_path)
            assert proc.returncode == 0, proc.stderr
    finally:
        os.umask(old)
    for name in ("v.csv", "v.npz", "run.ckpt", "r.html", "c.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


# --------------------------------------------------------------------- 9. formula injection
def test_spreadsheet_safe_follows_owasp() -> None:
    for cell in [*FORMULAS, "\tx", "\rx", "=1"]:
        assert spreadsheet_safe(cell) == "'" + cell
    for cell in ["-2", "+1.5e3", "-.5", "abc", "7", "", "a=b"]:
        assert spreadsheet_safe(cell) == cell


@pytest.mark.parametrize("command", ["value", "market"])
def test_formula_group_names_are_neutralised(tmp_path, capsys, command) -> None:
    src = write_csv(frame(ids=FORMULAS), tmp_path / "d.csv")
    out = tmp_path / "o.csv"
    if command == "value":
        args = ["value", src, "--target", "y", "--group", "provider", "--method", "loo"]
    else:
        args = ["market", src, "--target", "y", "--group", "provider", "--budget", "10"]
    code, _, err = run(capsys, *args, "--out", out)
    assert code == 0, err
    cells = [row[0] for row in csv.reader(out.open())][1:]
    assert sorted(cells) == sorted("'" + f for f in FORMULAS)


# ------------------------------------------------------------------------------ 12. seeds
@pytest.mark.parametrize("command", ["value", "clean", "prune", "explain", "market"])
@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_seed_out_of_range_is_a_user_error(tmp_path, capsys, command, seed) -> None:
    src = write_csv(frame(ids=["p", "q"]), tmp_path / "d.csv")
    extra = ["--group", "provider", "--budget", "10"] if command == "market" else []
    code, _, err = run(capsys, command, src, "--target", "y", *extra, "--seed", seed)
    one_error(code, err, "--seed")


# ------------------------------------------------------------------------- Ctrl-C: one line
def test_interrupt_prints_one_line_and_no_blank_line(tmp_path) -> None:
    src = write_csv(frame(n=200), tmp_path / "d.csv")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataworth.cli", "value", str(src), "--target", "y",
         "--method", "permutation-shapley", "--budget", "100000", "--no-batch",
         "--out", str(tmp_path / "v.csv")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.splitlines()
    assert "" not in lines, err
    assert lines[-1].startswith("interrupted;"), err


def test_read_table_text_columns_keep_csv_text(tmp_path) -> None:
    path = write_csv(frame(ids=TRICKY_IDS), tmp_path / "d.csv")
    columns = read_table(path, text_columns=("provider",))
    assert columns["provider"].tolist()[:8] == TRICKY_IDS
    assert columns["a"].dtype == np.float64


def test_demo_out_dir_that_is_a_file_is_refused_before_work(tmp_path, capsys) -> None:
    afile = write_csv(frame(), tmp_path / "d.csv")
    for out_dir in (afile, afile / "sub"):
        started = time.monotonic()
        code, _, err = run(capsys, "demo", "--out-dir", out_dir)
        one_error(code, err, "d.csv")
        assert time.monotonic() - started < 5
