#!/usr/bin/env bash
# The integration tests on Spark 3.5 (Databricks Runtime 15.4 / 16.4 LTS): a second venv,
# .venv-spark35/, with pyspark 3.5.x and delta-spark 3.3.x; the package picks the Scala 2.12
# spark-avro/delta-spark coordinates from the installed pyspark (repo361_ingest.spark.jvm_packages)
# and scripts/fetch_jvm_packages.sh pre-fetches exactly those.
# The cluster and Connect tests are left out: they use conf/spark-defaults.conf (Spark 4.0 coordinates).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
venv=.venv-spark35
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.repo361-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "pyspark>=3.5.2,<3.6" "delta-spark>=3.3,<3.4" -e '.[dev]'
  touch "$stamp"
fi
PYTHON="$venv/bin/python" bash scripts/fetch_jvm_packages.sh
"$venv/bin/python" -c 'import pyspark; from repo361_ingest.spark import JVM_PACKAGES; print("pyspark", pyspark.__version__, JVM_PACKAGES)'
set +e
"$venv/bin/python" -m pytest tests/integration -m "not cluster and not connect and not s3" -q -p no:cacheprovider "$@"
code=$?
[ "$code" -eq 5 ] && { echo "test_spark35.sh: no tests collected" >&2; exit 1; }
exit "$code"
