"""Every measured table in the documentation is rendered from the benchmarks' JSON.

``benchmarks/tables.py`` rewrites each table between ``<!-- table:NAME -->`` and
``<!-- /table:NAME -->`` from its JSON. Here: (1) every marked table equals its rendering, so a
figure cannot drift from its data; (2) every other markdown table in README.md, docs/*.md and
benchmarks/*.md whose body holds a measured-looking number (a decimal, seconds, a ratio such
as ``12x`` or ``2×``, a percentage) is on :data:`ALLOWED`, with the reason it is not rendered, so
a number without a source cannot be added unnoticed. Pure JSON -> markdown: nothing here needs
the benchmark environment.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tables() -> ModuleType:
    # loaded from its path under its own name: "tables" is also PyTables' import name
    spec = importlib.util.spec_from_file_location(
        "dataworth_bench_tables", ROOT / "benchmarks" / "tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tables = _tables()

#: A decimal, seconds (``3 s``, ``12ms``), a ratio (``12.8x``, ``2×``) or a percentage.
MEASURED = re.compile(r"\d\.\d|\d\s?m?s\b|\d\s?[x×](?![\w-])|\d\s?%")

#: Whole files that are not rendered here, and why.
ALLOWED_FILES: dict[str, str] = {
    "benchmarks/gpu_logistic.md": (
        "written whole from gpu_logistic.json by gpu_logistic.py's render() (another work "
        "item's file, not edited here); to become marked tables"
    ),
    "benchmarks/whole_process.md": (
        "written whole from whole_process.json by whole_process.py's render() (another work "
        "item's file, not edited here); to become marked tables"
    ),
    "benchmarks/csv_load.md": (
        "written whole from csv_load.json by csv_load.py (another work item's file, not "
        "edited here); to become marked tables"
    ),
    "benchmarks/data_oob_trees.md": (
        "written whole from data_oob_trees.json by data_oob_trees.py's render() (another work "
        "item's file, not edited here); to become marked tables"
    ),
    "benchmarks/market_robust.md": (
        "written whole from market_robust.json by market_robust.py's render(); docs/market.md "
        "points to it and quotes no numbers"
    ),
    "benchmarks/pruning_metrics-quick.md": (
        "smoke run written whole by pruning_metrics.py (another work item's file, in progress)"
    ),
    "benchmarks/pruning_metrics.md": (
        "written whole by pruning_metrics.py (another work item's file, in progress)"
    ),
}

#: Unmarked tables with a number in them: (file, header row) -> why it is not rendered.
ALLOWED: dict[tuple[str, str], str] = {
    ("docs/attacks.md", "| function | what it does |"): (
        "API reference: the numbers are parameter ranges (0..20%), not measurements"
    ),
    ("docs/market.md", "| option | default | meaning |"): (
        "command-line options: defaults and a worked bandwidth rule, not measurements"
    ),
    ("docs/prune.md", "| setting | default | meaning |"): (
        "settings: relative defaults (5%, 0.1 x the median distance), not measurements"
    ),
    ("docs/prune.md", "| option | meaning |"): (
        "command-line options: example values (--keep 0.5), not measurements"
    ),
    ("benchmarks/README.md", "| file | what |"): (
        "the list of benchmark files; its only number is a Python version"
    ),
    ("benchmarks/README.md", "| task | dataworth | pyDVL 0.10.0 | OpenDataVal 1.3.0 |"): (
        "each library's settings per task (budgets, tolerances, peers' defaults), not measurements"
    ),
}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def unmarked_tables(text: str) -> list[tuple[int, str, str]]:
    """(line, header row, body) of each markdown table outside markers and code fences."""
    out = []
    lines = text.splitlines()
    fence = marked = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        elif re.match(r"<!-- table:\S+ -->$", line):
            marked = True
        elif re.match(r"<!-- /table:\S+ -->$", line):
            marked = False
        elif line.startswith("|") and not fence and not marked:
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out.append((i + 1, line, "\n".join(lines[i + 2 : j])))
            i = j
            continue
        i += 1
    return out


DOCUMENTS = tables.documents(ROOT)


@pytest.mark.parametrize("path", DOCUMENTS, ids=_rel)
def test_marked_tables_equal_their_rendering(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    names = tables.markers(text)
    unknown = sorted({n for n in names if tables.split_name(n)[0] not in tables.TABLES})
    assert not unknown, f"{_rel(path)}: no such table in benchmarks/tables.py: {unknown}"
    rendered = tables.render(text)
    stale = [
        name
        for name, old, new in zip(
            names,
            [m.group("body") for m in tables.MARKER.finditer(text)],
            [m.group("body") for m in tables.MARKER.finditer(rendered)],
            strict=True,
        )
        if old != new
    ]
    assert rendered == text, f"{_rel(path)}: stale {stale}; run: python benchmarks/tables.py"


@pytest.mark.parametrize("path", DOCUMENTS, ids=_rel)
def test_measured_tables_are_rendered_or_allowed(path: Path) -> None:
    name = _rel(path)
    if name in ALLOWED_FILES:
        return
    loose = [
        f"line {line}: {head[:80]}"
        for line, head, body in unmarked_tables(path.read_text(encoding="utf-8"))
        if MEASURED.search(body) and (name, head) not in ALLOWED
    ]
    assert not loose, (
        f"{name}: tables with measured-looking numbers that benchmarks/tables.py does not "
        "render (mark them and register their JSON, or add them to ALLOWED with a reason): "
        + "; ".join(loose)
    )


def test_allowlist_entries_still_exist() -> None:
    present = {
        (_rel(p), head) for p in DOCUMENTS for _, head, _ in unmarked_tables(p.read_text("utf-8"))
    }
    gone = [key for key in ALLOWED if key not in present]
    assert not gone, f"ALLOWED lists tables that are no longer there: {gone}"
    assert all(reason.strip() for reason in [*ALLOWED.values(), *ALLOWED_FILES.values()])


def test_the_detector_sees_measured_numbers() -> None:
    for body in ("| a | 0.5 |", "| a | 3 s |", "| a | 12.8x |", "| a | 2× |", "| a | 10% |"):
        assert MEASURED.search(body), body
    for body in ("| a | 39/40 |", "| `--k` | neighbours |", "| 2026 | x-axis |"):
        assert not MEASURED.search(body), body
    text = "| a |\n|---|\n| 1.5 |\n\n```\n| b |\n|---|\n| 2.5 |\n```\n"
    assert [head for _, head, _ in unmarked_tables(text)] == ["| a |"]


def test_render_fills_rewrites_and_refuses() -> None:
    empty = "x\n<!-- table:influence_loo -->\n<!-- /table:influence_loo -->\ny\n"
    filled = tables.render(empty)
    assert filled.startswith("x\n<!-- table:influence_loo -->\n| data |")
    assert filled.endswith("<!-- /table:influence_loo -->\ny\n")
    assert tables.render(filled) == filled
    wrong = filled.replace("| data |", "| stale |", 1)
    assert tables.render(wrong) == filled
    with pytest.raises(tables.TableError, match="no table 'nope'"):
        tables.render("<!-- table:nope -->\n<!-- /table:nope -->\n")
    with pytest.raises(tables.TableError, match="cannot be rendered"):
        tables.render_table("prune.compare:no-such-dataset:0.0")
    block = tables.block("knn_large", _knn_large())
    assert block.startswith("<!-- table:knn_large -->\n| training rows |")


def _knn_large() -> dict[str, object]:
    return {
        "train_rows": 10,
        "valid_rows": 5,
        "k": 3,
        "seconds": 1.25,
        "peak_rss_mib": 100.0,
        "load_average_at_start": 0.5,
        "date": "today",
    }


def test_renderer_needs_no_benchmark_environment() -> None:
    """tables.py imports neither dataworth nor a peer library nor scikit-learn."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import tables; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'dataworth', 'sklearn', 'torch', 'pydvl', 'opendataval', 'shapiq', 'cleanlab'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
