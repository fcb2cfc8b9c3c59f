"""The review page and the plots: escaping, self-containment, table contents, summaries, thumbnails,
the ``dataworth report`` command, and plots that leave pyplot alone.

Oracles are hand computations on small data (per-class means, lowest-10% counts, the removal order
with NaN last), an independent PNG decoder (zlib + the PNG chunk layout), SHA-256 of the inline
blocks against the Content-Security-Policy, and a 1-nearest-neighbour model whose in-sample
prediction would echo every label while the out-of-fold one does not. The real-browser checks are
in ``test_report_browser.py``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import math
import re
import struct
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from dataworth.apps.removal import removal_curves
from dataworth.cli import main
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.report.html import (
    CSP,
    build_report,
    image_shape_of,
    out_of_fold_predictions,
    png_gray,
    safe_json,
    write_report,
)
from dataworth.result import ValuationResult

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
CLOSE = "</script><!--<script>window.__pwned=3</script>"


# ------------------------------------------------------------------------------ helpers
class _Tables(HTMLParser):
    """Every <table id=...>: header texts and, per row, (text, data-v) per cell, plus img src."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, list]] = {}
        self._id: str | None = None
        self._cell: list | None = None
        self._row: list | None = None
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._id = a["id"]
            self.tables[self._id] = {"head": [], "rows": []}
        elif self._id is None:
            return
        elif tag == "th":
            self._in_th = True
            self.tables[self._id]["head"].append("")
        elif tag == "tr":
            self._row = []
        elif tag == "td":
            self._cell = ["", a.get("data-v"), None]
        elif tag == "img" and self._cell is not None:
            self._cell[2] = a.get("src")

    def handle_endtag(self, tag: str) -> None:
        if self._id is None:
            return
        if tag == "table":
            self._id = None
        elif tag == "th":
            self._in_th = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(tuple(self._cell))
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[self._id]["rows"].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._id is None:
            return
        if self._in_th:
            self.tables[self._id]["head"][-1] += data
        elif self._cell is not None:
            self._cell[0] += data


def tables(page: str) -> dict[str, dict[str, list]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def column(table: dict[str, list], name: str, part: int = 0) -> list:
    j = table["head"].index(name)
    return [row[j][part] for row in table["rows"]]


def embedded(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="dataworth-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def decode_png(data: bytes) -> np.ndarray:
    """An independent reader for 8-bit greyscale PNGs with filter type 0."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 0)
            size = (h, w)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(size[0], size[1] + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def small_data(n: int = 30, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] > 0, "yes", "no")
    return Dataset.from_arrays(X, y, feature_names=["a", "b", "c"], target_name="label")


@pytest.fixture(scope="module")
def digits() -> Dataset:
    d = load_digits()
    return Dataset.from_arrays(d.data[:60], d.target[:60], target_name="digit")


# ------------------------------------------------------------------------------ escaping
def test_dataset_supplied_text_is_escaped_everywhere():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 2))
    y = np.array([SCRIPT, IMG, CLOSE] * 4)
    data = Dataset.from_arrays(
        X, y, feature_names=[SCRIPT, IMG], target_name=CLOSE, groups=np.array([IMG, "b"] * 6)
    )
    page = build_report(
        data,
        {SCRIPT: rng.normal(size=12), CLOSE: rng.normal(size=12)},
        predictions=y[::-1],
        extra_columns={IMG: y},
        settings={SCRIPT: IMG, "nested": {"k": CLOSE}},
        notes=[SCRIPT],
        title=CLOSE,
    )
    for payload in (SCRIPT, IMG, CLOSE, "<img", "<!--"):
        assert payload not in page
    assert page.count("<script") == 2  # the JSON block and the page's own script
    assert page.count("</script>") == 2
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;" in page
    info = embedded(page)  # the JSON block round-trips the exact strings
    assert info["title"] == CLOSE and info["methods"] == [SCRIPT, CLOSE]
    assert info["settings"] == {SCRIPT: IMG, "nested": {"k": CLOSE}}
    # the table shows the payloads as text
    t = tables(page)["rows"]
    assert set(column(t, f"label ({CLOSE})")) == {SCRIPT, IMG, CLOSE}
    assert SCRIPT in t["head"] and IMG in t["head"]


def test_safe_json_cannot_close_its_block():
    text = safe_json({"a": CLOSE, "b": [float("nan"), np.float32(1.5), np.arange(2)]})
    assert "</" not in text and "<!--" not in text and "<" not in text
    assert json.loads(text) == {"a": CLOSE, "b": [None, 1.5, [0, 1]]}


# ------------------------------------------------------------------------------ self-contained
def test_page_is_self_contained_and_its_csp_matches_its_blocks(digits):
    page = build_report(digits, {"v": np.linspace(-1, 1, 60)}, curves=_tiny_curves())
    refs = re.findall(r"""\b(?:src|href|xlink:href|action)\s*=\s*["']?([^"'\s>]*)""", page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs
    assert "://" not in page and "url(" not in page and "@import" not in page
    assert "<link" not in page.replace('<link rel="icon" href="data:,">', "")
    # the policy comes first and allows exactly the inline script and style it carries
    head = page[: page.index("</head>")]
    assert head.index('http-equiv="Content-Security-Policy"') < head.index("<style>")
    assert "default-src 'none'" in CSP and "img-src data:" in CSP and "unsafe" not in CSP
    script = re.findall(r"<script>(.*?)</script>", page, re.S)
    style = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(script) == 1 and len(style) == 1

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert f"script-src {sha(script[0])}'" in CSP and f"style-src {sha(style[0])}'" in CSP
    assert " style=" not in page and not re.search(r"\son[a-z]+=", page)  # no inline handlers
    assert build_report(digits, {"v": np.linspace(-1, 1, 60)}, curves=_tiny_curves()) == page


def _tiny_curves() -> dict:
    return {
        "fractions": [0.0, 0.1, 0.2],
        "n_removed": [0, 6, 12],
        "metric": "accuracy",
        "lowest_first": {"v": [0.8, 0.85, 0.9]},
        "highest_first": {"v": [0.8, 0.7, 0.6]},
        "random": {"mean": [0.8, 0.79, 0.78], "std": [0.0, 0.01, 0.02]},
    }


def test_curves_with_a_nan_random_score_or_no_highest_first():
    """A NaN random mean (a failed fit) must not put "nan" in the band's points: Chromium logs an
    error there and stops drawing the band. ``highest_first=None``, which the curves check
    accepts, gives a page (it used to raise TypeError) without highest-first columns."""
    curves = _tiny_curves()
    curves["random"]["mean"][1] = float("nan")
    curves["highest_first"] = None
    page = build_report(small_data(8), {"v": np.linspace(-1, 1, 8)}, curves=curves)
    points = re.findall(r'<poly(?:gon|line) points="([^"]*)"', page)
    assert len(points) == 3 and not any("nan" in p for p in points)  # band, random, lowest
    assert len(points[0].split()) == 4  # the band's upper and lower edge at fractions 0 and 0.2
    head = tables(page)["curves-table"]["head"]
    assert head == ["removed (%)", "rows removed", "v lowest first", "random mean", "random sd"]
    assert [row[3][0] for row in tables(page)["curves-table"]["rows"]] == ["0.8", "nan", "0.78"]


# ------------------------------------------------------------------------------ contents
def test_table_lists_every_row_lowest_first_with_nan_last():
    data = small_data(8)
    v = np.array([0.3, -0.1, np.nan, 0.2, -0.5, 0.3, 0.0, 0.1])
    s = np.linspace(0.01, 0.08, 8)
    res = ValuationResult(values=v, stderr=s, method="m")
    page = build_report(data, {"m": res, "other": -v}, predictions=data.y)
    t = tables(page)
    rows = t["rows"]
    assert [int(x) for x in column(rows, "index")] == [4, 1, 6, 7, 3, 0, 5, 2]
    keys = column(rows, "m value", 1)
    assert keys[-1] == "" and [float(k) for k in keys[:-1]] == sorted(v[np.isfinite(v)])
    assert [float(k) for k in column(rows, "m stderr", 1)] == s[[4, 1, 6, 7, 3, 0, 5, 2]].tolist()
    assert "other stderr" not in rows["head"]  # plain arrays carry no standard errors
    assert column(rows, "agrees") == ["yes"] * 8
    assert [int(x) for x in column(t["lowest"], "index")] == [4, 1, 6, 7, 3, 0, 5]
    assert [int(x) for x in column(t["highest"], "index")] == [0, 5, 3, 7, 6, 1, 4]
    assert column(rows, "a", 1) == [repr(float(x)) for x in data.X[[4, 1, 6, 7, 3, 0, 5, 2], 0]]


def test_per_class_summary_matches_a_hand_computation():
    data = small_data(30)
    v = np.random.default_rng(3).normal(size=30)
    pred = np.where(np.arange(30) % 3 == 0, "yes", "no")
    info = embedded(build_report(data, {"m": v}, predictions=pred))
    n_low = 3  # round(0.1 * 30)
    low = np.argsort(v, kind="stable")[:n_low]
    for rec in info["per_class"]:
        sel = data.y == rec["class"]
        assert rec["rows"] == sel.sum()
        assert rec["m mean"] == pytest.approx(v[sel].mean())
        assert rec["m median"] == pytest.approx(np.median(v[sel]))
        assert rec["m in lowest 10%"] == np.isin(low, np.flatnonzero(sel)).sum()
        assert rec["agreement"] == pytest.approx(np.mean(pred[sel] == data.y[sel]))


def test_per_source_summary_and_group_values():
    data = small_data(12).replace(groups=np.array(["s1", "s2", "s3"] * 4))
    v = np.arange(12, dtype=float)
    info = embedded(build_report(data, {"m": v}))
    per = {r["source"]: r for r in info["per_source"]}
    assert per["s2"]["m total"] == v[1::3].sum() and per["s2"]["rows"] == 4
    res = ValuationResult(
        values=np.array([2.0, -1.0, 0.5]), labels=np.array(["s3", "s1", "s2"]), kind="group"
    )
    page = build_report(data, {"banzhaf": res})
    rows = tables(page)["rows"]
    assert column(rows, "source") == ["s1", "s2", "s3"]
    assert [float(x) for x in column(rows, "value", 1)] == [-1.0, 0.5, 2.0]
    assert [int(x) for x in column(rows, "rows")] == [4, 4, 4]
    bad = ValuationResult(values=np.array([1.0]), labels=np.array(["nope"]), kind="group")
    with pytest.raises(DataworthError, match="not in the data's groups"):
        build_report(data, {"m": bad})
    with pytest.raises(DataworthError, match="no groups"):
        build_report(small_data(12), {"m": res})


def test_max_rows_keeps_the_lowest_and_highest_and_says_so():
    data = small_data(30)
    v = np.random.default_rng(5).permutation(30).astype(float)
    page = build_report(data, {"m": v}, max_rows=10, max_features=1)
    rows = tables(page)["rows"]
    assert sorted(float(k) for k in column(rows, "value", 1)) == [
        0.0, 1.0, 2.0, 3.0, 4.0, 25.0, 26.0, 27.0, 28.0, 29.0,
    ]  # fmt: skip
    assert "a" in rows["head"] and "b" not in rows["head"]
    notes = embedded(page)["notes"]
    assert any("5 lowest- and 5 highest-valued of 30" in n for n in notes)
    assert any("first 1 of 3 features" in n for n in notes)


def test_histogram_counts_every_finite_value_once():
    data = small_data(30)
    v = np.random.default_rng(0).normal(size=30)
    v[:2] = np.nan
    page = build_report(data, {"m": v})
    svg = re.search(r'<svg class="chart".*?</svg>', page, re.S).group(0)
    counts = [int(c) for c in re.findall(r"<title>(?:yes|no): (\d+) in \[", svg)]
    assert sum(counts) == 28
    assert "2 not finite, not shown" in svg


def test_bad_inputs_are_refused():
    data = small_data(5)
    with pytest.raises(DataworthError, match="got 4 values for 5 rows"):
        build_report(data, {"m": np.zeros(4)})
    with pytest.raises(DataworthError, match="predictions"):
        build_report(data, {"m": np.zeros(5)}, predictions=np.zeros(3))
    with pytest.raises(DataworthError, match="image_shape 2x2 needs 4"):
        build_report(data, {"m": np.zeros(5)}, image_shape=(2, 2))
    bad_curves = {"fractions": [0, 0.1], "lowest_first": {"m": [0.5]}}
    with pytest.raises(DataworthError, match="has 1 points for 2 fractions"):
        build_report(data, {"m": np.zeros(5)}, curves=bad_curves)


# ------------------------------------------------------------------------------ thumbnails
def test_png_round_trips_through_an_independent_decoder():
    img = np.random.default_rng(0).integers(0, 256, size=(5, 7)).astype(np.uint8)
    assert np.array_equal(decode_png(png_gray(img)), img)


def test_image_rows_become_thumbnails(digits):
    assert image_shape_of(digits.X) == (8, 8)
    assert image_shape_of(np.ones((3, 30))) is None
    assert image_shape_of(-np.ones((3, 64))) is None
    v = np.random.default_rng(2).normal(size=60)
    page = build_report(digits, {"m": v})
    rows = tables(page)["rows"]
    assert "x0" not in rows["head"]  # pixel columns are replaced by the thumbnail
    srcs = column(rows, "image", 2)
    index = [int(i) for i in column(rows, "index")]
    for i, src in zip(index[:5], srcs[:5], strict=True):
        pixels = decode_png(base64.b64decode(src.split(",", 1)[1]))
        expected = np.rint(255 * (1 - digits.X[i].reshape(8, 8) / digits.X.max()))
        assert np.array_equal(pixels, expected.astype(np.uint8))
    flat = build_report(digits, {"m": v}, image_shape=None)
    head = tables(flat)["rows"]["head"]
    assert "x39" in head and "x40" not in head and "<img" not in flat


# ------------------------------------------------------------------------------ predictions
def test_out_of_fold_predictions_do_not_echo_the_rows_own_label():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    y = np.repeat([0, 1], 20)
    y[3] = 1  # a flipped label in the first cluster
    data = Dataset.from_arrays(X, y)
    knn = KNeighborsClassifier(n_neighbors=1)
    assert knn.fit(X, y).predict(X)[3] == 1  # in-sample: the row votes for itself
    pred = out_of_fold_predictions(knn, data, cv=5, random_state=0)
    assert pred[3] == 0 and np.array_equal(np.delete(pred, 3), np.delete(y, 3))


# ------------------------------------------------------------------------------ the command
def _run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """A digits CSV (120 rows) valued by knn-shapley with k=3 (CSV) and k=9 (npz of
    --save-result) with `dataworth value`."""
    root = tmp_path_factory.mktemp("report")
    d = load_digits()
    X, y = d.data, d.target
    train, with_source = root / "digits.csv", root / "digits_sources.csv"
    test = root / "digits_test.csv"  # 50 more rows, kept aside
    for path, extra, rows in (
        (train, False, range(120)),
        (with_source, True, range(120)),
        (test, True, range(120, 170)),
    ):
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([f"px{j}" for j in range(64)] + ["digit"] + ["source"] * extra)
            for i in rows:
                w.writerow([*map(int, X[i]), int(y[i])] + [f"s{i % 4}"] * extra)
    common = ["--data", str(with_source), "--target", "digit", "--group", "source"]
    plain = ["--data", str(train), "--target", "digit"]
    knn = root / "knn-shapley.csv"
    main(["value", str(train), "--target", "digit", "--method", "knn-shapley", "--k", "3",
          "--out", str(knn)])  # fmt: skip
    k9 = root / "k9.npz"
    main(["value", str(train), "--target", "digit", "--method", "knn-shapley", "--k", "9",
          "--out", str(root / "k9.csv"), "--save-result", str(k9)])  # fmt: skip
    groups = root / "groups.csv"
    groups.write_text("group,value,stderr,count\ns0,0.5,0.1,3\ns1,-0.2,0.1,3\ns2,0.1,,3\n")
    return {"root": root, "train": train, "knn": knn, "npz": k9, "groups": groups,
            "common": common, "plain": plain, "test": test}  # fmt: skip


def test_report_command_writes_the_page_with_curves_and_predictions(files, capsys):
    out = files["root"] / "page.html"
    code, stdout, err = _run(
        ["report", str(files["knn"]), str(files["npz"]), *files["common"], "--curves",
         "--cv", "3", "--model", "gaussian-nb", "-o", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert stdout.startswith("report: 96 rows, 2 methods, removal curves -> ")
    assert "24 (without --valid" in err  # the 24 valuation rows are announced as left out
    page = out.read_text()
    info = embedded(page)
    assert info["methods"] == ["knn-shapley", "knn-shapley (2)"]
    assert info["settings"]["knn-shapley (2) parameters"]["k"] == 9
    curves = info["curves"]
    assert curves["n_train"] + curves["n_test"] == 96 and curves["n_test"] == 20
    assert curves["n_valid"] == 0 and curves["fractions"][0] == 0.0
    rows = tables(page)["rows"]
    valued = np.loadtxt(files["knn"], delimiter=",", skiprows=1)
    assert sorted(int(i) for i in column(rows, "index")) == sorted(valued[:, 0].astype(int))
    by_index = dict(zip(valued[:, 0].astype(int), valued[:, 1], strict=True))
    for i, key in zip(column(rows, "index"), column(rows, "knn-shapley value", 1), strict=True):
        assert float(key) == by_index[int(i)]
    assert len(column(rows, "prediction")) == 96 and {"s0", "s3"} <= set(column(rows, "source"))
    assert "per-source" in tables(page)
    code, _, err = _run(
        ["report", str(files["knn"]), *files["common"], "--curves", "--test", str(files["test"]),
         "--no-predictions", "--model", "gaussian-nb", "-o", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    curves = embedded(out.read_text())["curves"]
    assert (curves["n_train"], curves["n_test"]) == (96, 50) and "held out as test" not in err


def test_report_command_reads_curves_csv_and_group_values(files, capsys):
    data = Dataset.from_arrays(np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2)
    tr, te = data.take(np.arange(30)), data.take(np.arange(30, 40))
    curves = removal_curves({"m": np.arange(30.0)}, tr, te, LogisticRegression(),
                            fractions=(0, 0.1), n_random=2, random_state=0)  # fmt: skip
    path = files["root"] / "curves.csv"
    with path.open("w", newline="") as fh:  # the format `dataworth clean --curves` writes
        w = csv.DictWriter(fh, ["method", "order", "fraction", "n_removed", "split", "score",
                                "std"])  # fmt: skip
        w.writeheader()
        w.writerows(curves.records())
    out = files["root"] / "c.html"
    code, _, err = _run(
        ["report", str(files["knn"]), *files["common"], "--curves-csv", str(path),
         "--no-predictions", "-o", str(out)], capsys,
    )  # fmt: skip
    assert code == 0, err
    got = embedded(out.read_text())["curves"]
    assert got["lowest_first"]["m"] == pytest.approx(curves.lowest["m"].tolist())
    assert got["random"]["mean"] == pytest.approx(curves.random_mean.tolist())
    out = files["root"] / "g.html"
    code, stdout, err = _run(
        ["report", str(files["groups"]), *files["common"], "-o", str(out)],
        capsys,
    )
    assert code == 0, err
    assert stdout.startswith("report: 3 sources")
    rows = tables(out.read_text())["rows"]
    assert column(rows, "source") == ["s1", "s2", "s0", "s3"]  # lowest first, no value last


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--curves", "--curves-csv", "x.csv"], "either --curves"),
        (["--image-shape", "eight"], "--image-shape must be HxW"),
        (["--cv", "1"], "--cv must be at least 2"),
    ],
)
def test_report_command_user_errors_are_one_line(files, capsys, extra, message):
    code, _, err = _run(["report", str(files["knn"]), *files["common"], *extra], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_report_command_refuses_files_that_do_not_fit(files, capsys):
    root = files["root"]
    far = root / "far.csv"
    far.write_text("index,value,stderr,count\n0,0.1,0,1\n500,0.2,0,1\n")
    bad = root / "bad.csv"
    bad.write_text("row,score\n0,1\n")
    dup = root / "dup.csv"
    dup.write_text("index,value\n3,0.1\n3,0.2\n")
    cases = [
        ([str(far)], "values row 500, but"),
        ([str(bad)], "is not a values file"),
        ([str(dup)], "index 3 appears more than once"),
        ([str(files["knn"]), str(files["groups"])], "mix per-row"),
    ]
    for args, message in cases:
        code, _, err = _run(["report", *args, *files["common"]], capsys)
        assert code == 2 and err.count("\n") == 1 and message in err, (args, err)
    code, _, err = _run(["report", str(files["groups"]), *files["plain"]], capsys)
    assert code == 2 and err.count("\n") == 1 and "pass --group COL" in err


def test_demo_report_writer(tmp_path):
    from dataworth import value
    from dataworth.datasets import flip_labels, load_dataset
    from dataworth.demo import _write_report

    data = load_dataset("breast_cancer")
    rest, test = data.split(0.3, random_state=0)
    train, valid = rest.split(0.25, random_state=0)
    mean, std = train.X.mean(axis=0), train.X.std(axis=0)
    train, valid, test = (d.replace(X=(d.X - mean) / std) for d in (train, valid, test))
    noisy, flipped = flip_labels(train, 0.1, random_state=0)
    results = {"knn-shapley": value("knn-shapley", noisy, valid, k=10)}
    model = LogisticRegression(max_iter=1000)
    path = _write_report(tmp_path / "r.html", model, noisy, valid, test, flipped, results, seed=0)
    rows = tables(path.read_text())["rows"]
    flags = dict(zip(column(rows, "index"), column(rows, "flipped"), strict=True))
    assert sum(f == "yes" for f in flags.values()) == flipped.size == 30
    assert {int(i) for i, f in flags.items() if f == "yes"} == set(noisy.row_labels[flipped])


def test_write_report_reports_unwritable_paths(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(DataworthError, match="cannot write"):
        write_report(target / "sub" / "r.html", small_data(4), {"m": np.zeros(4)})


# ------------------------------------------------------------------------------ plots
@pytest.fixture
def mpl():
    matplotlib = pytest.importorskip("matplotlib", reason='plots need "dataworth[report]"')
    import matplotlib.pyplot as plt

    plt.close("all")
    yield matplotlib
    assert plt.get_fignums() == []  # no plot touched pyplot's global figures


def test_plots_return_axes_without_pyplot(mpl):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from dataworth.apps.active_loop import LearningCurve
    from dataworth.report import (
        plot_learning_curves,
        plot_payouts,
        plot_removal_curves,
        plot_value_distribution,
        plot_value_vs_feature,
    )

    v = np.array([0.1, -0.2, 0.3, np.nan, 0.0, 0.2])
    ax = plot_value_distribution(v, by=["a", "b", "a", "b", "c", "c"], bins=5)
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    assert sum(p.get_height() for p in ax.patches) == 5  # NaN is not drawn ...
    assert any("1 not finite" in t.get_text() for t in ax.texts)  # ... and says so
    curves = removal_curves(
        {"m": np.arange(30.0)},
        small_data(30),
        small_data(20, seed=1),
        LogisticRegression(),
        fractions=(0, 0.1, 0.2),
        n_random=3,
        random_state=0,
    )
    own = Figure().add_subplot()
    assert plot_removal_curves(curves, ax=own) is own
    lines = {line.get_label(): line for line in own.get_lines()}
    assert lines["m, lowest first"].get_ydata().tolist() == curves.lowest["m"].tolist()
    assert lines["m, highest first"].get_xdata().tolist() == [0.0, 10.0, 20.0]
    assert len(own.collections) == 1  # the random band
    ax = plot_value_vs_feature(v, np.arange(6.0), feature_name="age", by=[0, 1, 0, 1, 0, 1])
    assert ax.get_xlabel() == "age" and len(ax.collections) == 2
    runs = [
        LearningCurve("random", s, np.array([5, 10]), np.array([0.5, a]), np.arange(10), 5, 0.0)
        for s, a in enumerate([0.6, 0.8])
    ]
    ax = plot_learning_curves({"random": runs})
    assert ax.get_lines()[0].get_ydata().tolist() == pytest.approx([0.5, 0.7])
    ax = plot_payouts(["p1", "p2", "p3"], [2.0, -1.0, 5.0], errors=[0.1, 0.1, 0.1])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["p2", "p1", "p3"]
    assert [float(p.get_width()) for p in ax.patches] == [-1.0, 2.0, 5.0]
    ax = plot_payouts(["p1", "p2"], [2.0, 1.0], sort=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["p2", "p1"]  # first at the top


def test_plot_inputs_are_checked(mpl):
    from dataworth.report import plot_payouts, plot_removal_curves, plot_value_distribution

    with pytest.raises(DataworthError, match="by has 2 entries for 3 values"):
        plot_value_distribution([1.0, 2.0, 3.0], by=["a", "b"])
    with pytest.raises(DataworthError, match="one entry per provider"):
        plot_payouts(["a"], [1.0, 2.0])
    with pytest.raises(DataworthError, match="RemovalCurves"):
        plot_removal_curves([1, 2])


def test_axis_ticks_and_cells_at_extreme_magnitudes() -> None:
    """Found in review: ticks overflowed on spans beyond the largest float and printed 21-digit
    labels at 1e20; infinite cells showed as "nan" and sorted with NaN."""
    from dataworth.report.svg import _tick_text, _ticks
    from dataworth.report.text import num_text, sort_key

    ticks, decimals = _ticks(-1.7e308, 1.7e308)
    assert np.all(np.isfinite(ticks)) and ticks[0] >= -1.7e308 and ticks[-1] <= 1.7e308
    assert [_tick_text(t, decimals) for t in ticks] == ["-1e+308", "0", "1e+308"]
    ticks, decimals = _ticks(0.0, 1e20)
    assert max(len(_tick_text(t, decimals)) for t in ticks) <= 6
    ticks, _ = _ticks(0.0, 1e-322)  # a degenerate span is widened, not divided by
    assert ticks.size >= 2
    assert (num_text(math.inf), num_text(-math.inf), num_text(math.nan)) == ("inf", "-inf", "nan")
    assert (sort_key(math.inf), sort_key(-math.inf), sort_key(math.nan)) == (
        "Infinity",
        "-Infinity",
        "",
    )


def test_curves_random_without_std_and_highest_first_none_plot() -> None:
    """The random baseline's sd defaults to 0 and highest_first may be None, for the page and
    for matplotlib alike."""
    from dataworth.report import plot_removal_curves
    from dataworth.report.plots import curve_dict

    curves = {"fractions": [0.0, 0.5], "lowest_first": {"knn": [0.8, 0.9]},
              "highest_first": None, "random": {"mean": [0.8, 0.79]}}  # fmt: skip
    d = curve_dict(curves)
    assert d["random"]["std"] == [0.0, 0.0] and d["highest_first"] == {}
    ax = plot_removal_curves(curves)
    assert len(ax.lines) == 2
    with pytest.raises(DataworthError, match=r"curves\['random'\]\['mean'\] has 1 points"):
        curve_dict({**curves, "random": {"mean": [0.8]}})
