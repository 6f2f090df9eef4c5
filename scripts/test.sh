#!/usr/bin/env bash
# The README's test command: install what is needed, then run the whole suite.
# Installs Debian's chromium (browser tests, chart images, PDF) and poppler-utils (PDF checks) when missing (Playwright's own browser
# download is not available here), Debian's OpenJDK 17 headless when no `java` is found (the Spark
# engine tests, tests/test_spark.py, run on a local Spark session), then pytest. Exit code 5 ("no tests collected") is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
# The CDNOW reference data ships inside the (unmaintained) lifetimes wheel; the tests read its data
# files only, so it is installed without its dependencies and never imported.
python -m pip install --quiet --disable-pip-version-check --no-deps "lifetimes==0.11.3"
# lifelines is the tests' independent Kaplan–Meier; it declares pandas<3 (see requirements.txt).
python -m pip install --quiet --disable-pip-version-check --no-deps "lifelines>=0.30,<0.31"
if ! command -v chromium >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core poppler-utils) >/dev/null
  else
    echo "chromium is missing and we are not root: browser tests will fail" >&2
  fi
fi
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless) >/dev/null
  else
    echo "java is missing and we are not root: the Spark tests (tests/test_spark.py) will be skipped" >&2
  fi
fi
set +e
python -m pytest -n "${CX_TEST_WORKERS:-2}" --dist loadgroup "$@"
rc=$?
set -e
if [ "$rc" = "5" ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
