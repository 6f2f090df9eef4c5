#!/usr/bin/env bash
# The README's run command: install what is needed and start the dashboard on the demo data.
# The app builds the demo database by itself on first start (data/cx.duckdb, or $CX_DB).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec python -m streamlit run app.py "$@"
