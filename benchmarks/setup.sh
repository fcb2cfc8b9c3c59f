#!/usr/bin/env bash
# Build the benchmark environment: dataworth (editable, from this checkout) next to the peer
# libraries pyDVL 0.10.0 and OpenDataVal 1.3.0, every package pinned by constraints-bench.txt.
#
#   bash benchmarks/setup.sh [VENV_DIR]        (default: .venv-bench at the repository root)
#   VENV_DIR/bin/python benchmarks/run.py --quick
#
# The peers are benchmark-only: nothing here touches the project's own environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(realpath -m "${1:-$ROOT/.venv-bench}")"
PYTHON="${PYTHON:-python3}"
CONSTRAINTS="$ROOT/benchmarks/constraints-bench.txt"
cd "$ROOT"

"$PYTHON" -m venv "$VENV"
# Keep the environment out of git (what `python -m venv` itself does from Python 3.13 on).
printf '*\n' >"$VENV/.gitignore"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --constraint "$CONSTRAINTS")

# 1. torch first, pinned: the CPU wheel. An unpinned torch (OpenDataVal wants torch~=2.1)
#    would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==2.13.0"

# 2. dataworth and pyDVL with their dependencies. pyDVL 0.10.0 needs numpy<2 (-> 1.26.4).
"${PIP[@]}" -e "$ROOT" "pydvl==0.10.0"

# 3. OpenDataVal without its dependencies: its metadata pins torch~=2.1.0, torchvision~=0.16.0,
#    numpy<1.26, pandas<2, transformers~=4.35, pykeops, pandera, typer, ... which cannot be
#    installed next to the above. What `import opendataval.dataval` and its valuation methods
#    on numpy data need beyond steps 1-2 (which bring numpy, scipy, scikit-learn, pandas, tqdm,
#    matplotlib, pillow):
#      requests      imported by its dataset registry (opendataval.dataloader)
#      transformers  imported unconditionally by opendataval.model (its BERT classifier)
#      geomloss      imported by its LAVA evaluator module (opendataval.dataval.lava)
#    torchvision is NOT installed: PyPI only has CUDA builds of it, whose C extension fails
#    against the CPU torch ("RuntimeError: operator torchvision::nms does not exist").
#    benchmarks/lib_opendataval.py puts an empty stand-in module in its place; only the
#    registration of OpenDataVal's image datasets imports it.
"$PY" -m pip install --no-deps "opendataval==1.3.0"
"${PIP[@]}" "requests==2.34.2" "transformers==4.57.6" "geomloss==0.2.6"

# 4. pyDVL's influence module (benchmarks/influence.py) imports dask.distributed and zarr 2,
#    which its metadata does not require.
"${PIP[@]}" "distributed==2026.8.0" "zarr==2.18.7"

# 5. cleanlab, the label-issue baseline of benchmarks/clean_vs_cleanlab.py.
"${PIP[@]}" "cleanlab==2.9.0"

# Smoke check: every library imports (OpenDataVal through the benchmark's adapter).
"$PY" - <<'EOF'
import sys
sys.path.insert(0, "benchmarks")
import lib_dataworth, lib_opendataval, lib_pydvl
for lib in (lib_dataworth, lib_pydvl, lib_opendataval):
    reason = lib.unavailable_reason()
    print(f"{lib.NAME} {lib.version()}: {'ok' if reason is None else reason}")
EOF
echo "benchmark environment ready: $VENV"
