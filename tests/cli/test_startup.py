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


def _heavy_after(args: list[str]) -> tuple[str, str]:
    """Run ``dataworth ARGS`` in a fresh interpreter; its output and the heavy modules loaded."""
    code = (
        "import contextlib, io, sys\n"
        "from dataworth.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        f"    main({args!r})\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(out.getvalue())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, _, text = out.stdout.partition("\n")
    return heavy.strip(), text


def test_help_and_listings_import_no_heavy_library() -> None:
    for args in (["--help"], ["methods"], ["models"], ["--version"]):
        heavy, text = _heavy_after(args)
        assert heavy == "", f"dataworth {' '.join(args)} imported {heavy}"
        assert text.strip(), args


def test_help_lists_every_command_with_its_docstring() -> None:
    from click.testing import CliRunner

    from dataworth.cli import COMMANDS, cli

    listing = CliRunner().invoke(cli, ["--help"]).output
    for name, (_, line) in COMMANDS.items():
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=10**6) == line, name
        assert f"  {name} " in listing
    assert cli.get_command(None, "no-such-command") is None  # type: ignore[arg-type]


def test_listing_reads_the_registries_without_loading_classes() -> None:
    from dataworth.estimators import ESTIMATORS
    from dataworth.methods import METHODS

    _, text = _heavy_after(["methods"])
    for name, entry in [*METHODS.items(), *ESTIMATORS.items()]:
        assert f"{name} " in text and entry.summary in text and entry.reference in text
    assert "(shapley only)" in text  # kernel-shap and friends say which semivalue they serve


def test_value_verbose_says_where_the_time_went(tmp_path, capsys) -> None:
    import re

    import numpy as np

    from dataworth.cli import main

    rng = np.random.default_rng(0)
    rows = ["a,b,y"] + [f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    main([
        "value", str(tmp_path / "t.csv"), "--target", "y", "--method", "loo",
        "--out", str(tmp_path / "v.csv"), "--verbose",
    ])  # fmt: skip
    err = capsys.readouterr().err
    laps = re.search(
        r"time: imports ([\d.]+) s, load ([\d.]+) s, set-up ([\d.]+) s, valuation ([\d.]+) s, "
        r"writing ([\d.]+) s; ([\d.]+) s in all",
        err,
    )
    assert laps is not None, err
    parts = [float(x) for x in laps.groups()]
    assert abs(sum(parts[:-1]) - parts[-1]) <= 0.05  # the laps add up (each rounded to 0.01)
