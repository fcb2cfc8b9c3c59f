"""The README's benchmark tables are the rendering of the benchmarks' JSON, not pasted text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_estimator_tables_match_their_json() -> None:
    spec = importlib.util.spec_from_file_location(
        "readme_tables", ROOT / "benchmarks" / "readme_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    for name in module.TABLES:
        assert f"<!-- table:{name} -->" in readme, name
    assert module.render(readme) == readme, "run: python benchmarks/readme_tables.py"
