"""The review page's data repairs section (issue 18): the changed cells of
``dataworth repairs --out`` and one repair's explanation (``--cell ... --out``), through
:func:`~dataworth.report.sections.repairs_section`, ``build_report(repairs=...)`` and
``dataworth report --repairs/--explanation``.

Oracles: the rows of the listing as written, the explanation's largest |values| picked by hand,
and an HTML parser that reads every table's cells back as text (so escaping round-trips exactly).
"""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from dataworth.cli import main
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.report.html import build_report
from dataworth.report.sections import repairs_section

SCRIPT = "<script>alert(1)</script>"


class _Tables(HTMLParser):
    """Each <table id=...>: its header texts and its rows of cell texts; <svg> <title> texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, list]] = {}
        self.titles: list[str] = []
        self._id: str | None = None
        self._cell: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table" and "id" in a:
            self._id = a["id"]
            self.tables[self._id] = {"head": [], "rows": []}
        elif self._id and tag == "tr":
            self._row: list[str] = []
            self._has_td = False
        elif self._id and tag in ("td", "th"):
            self._cell = []
            self._has_td = self._has_td or tag == "td"
        elif tag == "title":
            self._in_title = True
            self.titles.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._id = None
        elif self._id and tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell)
            self._row.append(text)
            if tag == "th":
                self.tables[self._id]["head"].append(text)
            self._cell = None
        elif self._id and tag == "tr" and self._has_td:
            self.tables[self._id]["rows"].append(self._row)
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.titles[-1] += data


def parse(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    return p


CHANGES = {
    "row": ["1", "3", "5"],
    "column": [SCRIPT, "a", "007"],
    "before": ["", "", "2.5"],
    "after": ["3.0", "4.0", ""],
}


def test_changed_cells_are_listed_as_given():
    p = parse(repairs_section(CHANGES))
    t = p.tables["repairs"]
    assert t["head"] == ["row", "column", "before", "after"]
    assert t["rows"] == [
        ["1", SCRIPT, "missing", "3"],
        ["3", "a", "missing", "4"],
        ["5", "007", "2.5", "missing"],  # the identifier stays exact text
    ]
    assert "repair-explanation" not in p.tables


def test_explanation_lists_the_largest_contributions_and_draws_them():
    values = [0.5, -2.0, 0.0, 1.0, -0.25, 3.0]
    expl = {"row": [str(i) for i in range(6)], "value": [str(v) for v in values]}
    html = repairs_section(CHANGES, expl, cell="1,x", top=3)
    p = parse(html)
    rows = p.tables["repair-explanation"]["rows"]
    assert p.tables["repair-explanation"]["head"] == ["row", "value"]
    assert [r[0] for r in rows] == ["5", "1", "3"]  # by |value|: 3, -2, 1
    assert "<svg" in html and "row 5: 3 ± 0" in p.titles and "row 1: -2 ± 0" in p.titles
    assert "add up to 2.25" in html and "Explanation of the repair of 1,x" in html
    by_cell = {
        "row": ["0", "0"],
        "column": [SCRIPT, "b"],
        "value": ["-1.5", "0.5"],
    }
    p = parse(repairs_section(CHANGES, by_cell))
    t = p.tables["repair-explanation"]
    assert t["head"] == ["row", "column", "value"]
    assert t["rows"] == [["0", SCRIPT, "-1.5"], ["0", "b", "0.5"]]
    by_column = {"column": [SCRIPT, "b"], "value": ["0.0", "0.0"]}
    assert "No input column contributed" in repairs_section(CHANGES, by_column)


def test_dataset_text_is_escaped():
    expl = {"column": [SCRIPT], "value": ["1.0"]}
    html = repairs_section(CHANGES, expl, cell=SCRIPT)
    assert "<script" not in html and "&lt;script&gt;" in html
    data = Dataset.from_arrays(np.eye(3), [0, 1, 1], feature_names=["p", "q", "r"])
    page = build_report(data, np.array([0.1, 0.2, 0.3]), repairs=CHANGES, repair_explanation=expl)
    assert page.count("<script") == 2  # the JSON block and the page's own script only
    assert '<section id="repairs"><h2>Data repairs</h2>' in page
    assert '<a href="#repairs">Data repairs</a>' in page


@pytest.mark.parametrize(
    ("changes", "explanation", "message"),
    [
        ({"row": ["0"], "column": ["a"], "before": ["1"]}, None, "lacks after"),
        ({**CHANGES, "row": ["x", "1", "2"]}, None, "row 'x' is not a 0-based row"),
        ({**CHANGES, "row": ["-1", "1", "2"]}, None, "row '-1' is not a 0-based row"),
        ({**CHANGES, "after": ["1", "two", "3"]}, None, "after 'two' is not a number"),
        ({**CHANGES, "after": ["1"]}, None, "differ in length"),
        (CHANGES, {"value": ["1"]}, "row,value, column,value or row,column,value"),
        (CHANGES, {"row": ["0"], "value": ["high"]}, "value 'high' is not a number"),
    ],
)
def test_bad_input_is_refused(changes, explanation, message):
    with pytest.raises(DataworthError, match=message):
        repairs_section(changes, explanation)


# ------------------------------------------------------------------------------ command
def _run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def files(tmp_path):
    raw = tmp_path / "raw.csv"
    raw.write_text(
        f"a,{SCRIPT.replace(',', '')},y\n1.0,2.0,0\n2.0,,1\n3.0,4.0,0\n,5.0,1\n5.0,6.0,0\n6.0,,1\n"
    )
    values = tmp_path / "values.csv"
    values.write_text(
        "index,value,stderr,count\n"
        + "".join(f"{i},{v},0,1\n" for i, v in enumerate([0.1, -0.2, 0.3, 0.0, 0.2, -0.1]))
    )
    return {"root": tmp_path, "raw": raw, "values": values}


def test_report_command_shows_what_dataworth_repairs_wrote(files, capsys):
    root, raw = files["root"], str(files["raw"])
    tool = ["--target", "y", "--tool", "knn-imputer", "--tool-params", '{"n_neighbors": 2}']
    listing, why, page = root / "rep.csv", root / "why.csv", root / "page.html"
    code, _, err = _run(["repairs", raw, *tool, "--out", str(listing)], capsys)
    assert code == 0, err
    code, _, err = _run(
        ["repairs", raw, *tool, "--cell", f"1,{SCRIPT}", "--by", "cell", "--out", str(why)],
        capsys,
    )
    assert code == 0, err
    code, stdout, err = _run(
        ["report", str(files["values"]), "--data", raw, "--target", "y", "--no-predictions",
         "--repairs", str(listing), "--explanation", str(why), "--explanation-cell",
         f"1,{SCRIPT}", "-o", str(page)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "data repairs ->" in stdout
    html = page.read_text()
    p = parse(html)
    assert p.tables["repairs"]["rows"] == [
        ["1", SCRIPT, "missing", "3"],
        ["3", "a", "missing", "4"],
        ["5", SCRIPT, "missing", "5"],
    ]
    expl = p.tables["repair-explanation"]["rows"]
    assert expl[0][:2] == ["4", SCRIPT]  # the largest |value| in the explanation file
    written = [line.split(",") for line in why.read_text().splitlines()[1:]]
    nonzero = [r for r in written if float(r[2]) != 0]
    assert len(expl) == min(10, len(nonzero))
    assert html.count("<script") == 2


def test_report_command_refuses_bad_repairs_files(files, capsys):
    root = files["root"]
    common = [str(files["values"]), "--data", str(files["raw"]), "--target", "y",
              "--no-predictions", "-o", str(root / "p.html")]  # fmt: skip
    wrong = root / "wrong.csv"
    wrong.write_text("index,value\n0,1\n")
    bad_row = root / "bad_row.csv"
    bad_row.write_text("row,column,before,after\nfirst,a,,1\n")
    good = root / "good.csv"
    good.write_text("row,column,before,after\n1,a,,1\n")
    empty = root / "empty.csv"
    empty.write_text("row,column,before,after\n")
    bad_expl = root / "bad_expl.csv"
    bad_expl.write_text("row,value\n0,lots\n")
    cases = [
        (["--repairs", str(wrong)], "is not a repairs listing"),
        (["--repairs", str(bad_row)], "row 'first' is not a 0-based row"),
        (["--repairs", str(root / "nope.csv")], "nope.csv"),
        (["--explanation", str(bad_expl)], "give --repairs too"),
        (["--repairs", str(good), "--explanation", str(wrong)], "is not a repair explanation"),
        (["--repairs", str(good), "--explanation", str(bad_expl)], "value 'lots' is not a number"),
        (["--repairs", str(good), "--explanation", str(empty)], "no data rows"),
    ]
    for extra, message in cases:
        code, _, err = _run(["report", *common, *extra], capsys)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), (extra, err)
        assert message in err, (extra, err)
    code, _, err = _run(["report", *common, "--repairs", str(empty)], capsys)  # nothing changed
    assert code == 0, err
    assert "The repair changed no cell." in (root / "p.html").read_text()
