#!/usr/bin/env bash
# One-time set-up of a fresh clone: .venv with the package (editable) and its dev tools, and the
# Spark JVM packages in the local Maven repository. Needs Python 3.10+, Java 17 and Maven.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.repo361-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[spark,dev]'
  touch "$stamp"
fi
command -v java >/dev/null || { echo "setup: Java 17 is required (java not on PATH)" >&2; exit 2; }
command -v mvn >/dev/null || { echo "setup: Maven is required to pre-fetch the Spark packages" >&2; exit 2; }
bash scripts/fetch_jvm_packages.sh
echo "setup: ok (.venv/bin/repo361-ingest, .venv/bin/spark-submit)"
