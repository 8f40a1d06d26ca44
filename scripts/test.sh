#!/usr/bin/env bash
# The whole test suite: installs tickvault with its test dependencies into .venv, then runs
# ruff, mypy and pytest. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
# The dashboard's browser test drives Debian's chromium (browsers cannot be downloaded here).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null) || echo "warning: could not install chromium"
    fi
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
# Two test processes (pytest-xdist): most tests wait on subprocesses, servers and disks, so
# the whole suite takes about half the time of one process on 2 cores. TEST_WORKERS=0 runs
# it in this process (e.g. for a debugger).
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" "$@"
