#!/usr/bin/env bash
# The README's run command: install what is needed and start the dashboard on the demo data.
# The app builds the demo database by itself on first start (data/cx.duckdb, or $CX_DB).
# The executive deck's chart images (kaleido) and the PDF need a headless chromium: Debian's
# chromium is installed when it is missing and we are root (as scripts/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
if ! command -v chromium >/dev/null 2>&1 && [ -z "${BROWSER_PATH:-}" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium (chart images in the exported deck and PDF)…" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core) >/dev/null \
      || echo "could not install chromium: the deck and PDF export will say so; HTML export still works" >&2
  else
    echo "chromium is missing and we are not root: the deck and PDF export will say so (install chromium" \
         "or set BROWSER_PATH); HTML export and everything else work" >&2
  fi
fi
exec python -m streamlit run app.py "$@"
