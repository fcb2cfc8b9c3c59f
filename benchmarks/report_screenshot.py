"""Screenshot of the demo's review page for the README: ``docs/report.png``.

Runs ``dataworth demo`` (about 40 s on 2 cores; it writes ``report.html`` beside its values) and
photographs the page in headless Chromium at 1280 px wide. Needs Debian's ``chromium``
(``apt-get install -y chromium``); no network is used.

Usage::

    python benchmarks/report_screenshot.py                      # demo, then docs/report.png
    python benchmarks/report_screenshot.py --report dataworth-demo/report.html  # page only
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def screenshot(page: Path, out: Path, width: int, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs headless Chromium: apt-get install -y chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            browser,
            *FLAGS,
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    if not out.exists() or out.stat().st_size == 0:
        sys.exit(f"chromium wrote no screenshot to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=None, help="an existing report.html")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = args.report
        if page is None:
            from dataworth.demo import run_demo

            started = time.monotonic()
            run_demo(out_dir=Path(tmp), echo=print)
            print(f"demo: {time.monotonic() - started:.1f} s")
            page = Path(tmp) / "report.html"
        screenshot(page, args.out, args.width, args.height)
    print(f"screenshot of {args.width}x{args.height} px written to {args.out}")


if __name__ == "__main__":
    main()
