"""``dataworth demo``."""

from __future__ import annotations

from pathlib import Path

import click

from dataworth.cli._common import check_n_jobs, seed_option
from dataworth.errors import DataworthError
from dataworth.fileio import check_output_paths

__all__ = ["demo"]


@click.command()
@seed_option
@click.option("--n-jobs", type=int, default=2, show_default=True)
@click.option(
    "--out-dir",
    default="dataworth-demo",
    show_default=True,
    help="Where the demo writes its values and its review page (report.html).",
)
def demo(seed: int, n_jobs: int, out_dir: str) -> None:
    """Flip 10% of breast-cancer training labels and see which methods find them; writes the
    values and a review page (report.html) to --out-dir."""
    from dataworth.demo import run_demo

    check_n_jobs(n_jobs, "--n-jobs")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataworthError(f"--out-dir {out} is a file; name a directory.")
    check_output_paths({"--out-dir": out / "report.html"}, [])  # writable, before any work
    run_demo(seed=seed, n_jobs=n_jobs, out_dir=Path(out_dir), echo=click.echo)
