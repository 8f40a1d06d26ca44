#!/usr/bin/env bash
# Quick start: install tickvault into .venv, backfill 20 tickers x 2 years of offline demo
# bars, then show how fresh they are and what the database holds.
# The database is $TICKVAULT_DB (default ./db); extra arguments go to `tickvault backfill`
# (e.g. --n-workers 4 or --scheduler processes).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
export TICKVAULT_DB=${TICKVAULT_DB:-db}
START=$(.venv/bin/python -c "import datetime as d; print(d.date.today() - d.timedelta(days=730))")

tickvault() {
    echo "\$ tickvault $*"
    .venv/bin/tickvault "$@"
}

tickvault backfill AAPL MSFT GOOG AMZN NVDA META TSLA JPM V UNH \
    XOM JNJ WMT PG MA HD CVX KO PEP BAC --source demo --start "$START" "$@"
echo
tickvault freshness --calendar XNYS || echo "(freshness exit code $?: something is stale)"
echo
tickvault info
