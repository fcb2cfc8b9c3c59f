"""A bare ``import dataworth`` stays light: scikit-learn, scipy, pandas and torch are imported
only when a name that needs them is used (issue 16, start-up)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sklearn", "scipy", "pandas", "torch", "matplotlib", "ray", "dask")


def test_import_dataworth_defers_the_heavy_libraries() -> None:
    code = f"import sys, dataworth\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at once: {out.stdout.strip()}"


def test_public_names_resolve_on_first_use() -> None:
    import dataworth

    for name in dataworth.__all__:
        assert getattr(dataworth, name) is not None, name
    assert set(dataworth.__all__) <= set(dir(dataworth))
    from dataworth import MaxTime, value  # from-imports go through the same lookup

    assert callable(value) and MaxTime.__name__ == "MaxTime"
