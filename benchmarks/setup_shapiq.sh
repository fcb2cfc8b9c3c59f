#!/usr/bin/env bash
# Build the shapiq environment of benchmarks/estimators.py: shapiq 1.8 needs Python >= 3.12,
# newer than the project's own environment, so it gets its own virtual environment, which only
# benchmarks/shapiq_runner.py uses (it imports numpy and shapiq, never dataworth).
#
#   bash benchmarks/setup_shapiq.sh [VENV_DIR]       (default: .venv-shapiq at the repository root)
#   PYTHON=/path/to/python3.12 bash benchmarks/setup_shapiq.sh
#
# Then: python benchmarks/estimators.py --quick   (from the project's environment; it runs
# VENV_DIR/bin/python benchmarks/shapiq_runner.py as a subprocess, see --shapiq-python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(realpath -m "${1:-$ROOT/.venv-shapiq}")"
if [[ -z "${PYTHON:-}" ]]; then
    for candidate in python3.12 python3.13 "$HOME/.pyenv/versions/3.12.1/bin/python"; do
        # (a pyenv shim may exist and still fail: try to run it)
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
            PYTHON="$candidate"
            break
        fi
    done
fi
"${PYTHON:?no Python >= 3.12 found; set PYTHON}" -c \
    'import sys; assert sys.version_info >= (3, 12), "shapiq 1.8 needs Python >= 3.12"'

"$PYTHON" -m venv "$VENV"
printf '*\n' >"$VENV/.gitignore"   # keep it out of git (.gitignore only names .venv*/ patterns)
PY="$VENV/bin/python"

# shapiq pulls numpy, scipy, scikit-learn, pandas, matplotlib, networkx, ...
# xgboost-cpu: RegressionMSR's default proxy ("xgboost"; the CPU-only wheel of the same module,
#   without the CUDA/NCCL wheels); without it shapiq falls back to LightGBM or a decision tree.
# lightgbm: OddSHAP's surrogate; without it OddSHAP warns and uses a DecisionTreeRegressor.
# threadpoolctl: the runner limits BLAS/OpenMP pools to one thread, as estimators.py does.
"$PY" -m pip install "shapiq==1.8.0" "xgboost-cpu==3.4.1" "lightgbm==4.7.0" "threadpoolctl"

"$PY" -c 'import shapiq, xgboost, lightgbm; print("shapiq", shapiq.__version__, "ok")'
echo "shapiq environment ready: $VENV"
