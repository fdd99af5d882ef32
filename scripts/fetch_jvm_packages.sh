#!/usr/bin/env bash
# Pre-fetch the Spark JVM packages (spark-avro, delta-spark and their dependencies) into the local
# Maven repository (~/.m2/repository). Spark's package resolver (Ivy, for spark.jars.packages)
# reads that repository first, so local runs, tests and spark-submit resolve them with no other
# network access. Idempotent: Maven skips what is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$here/.venv/bin/python}"
packages=$("$py" -c 'from repo361_ingest.spark import JVM_PACKAGES; print(" ".join(JVM_PACKAGES))')
for coordinate in $packages; do
  group=${coordinate%%:*}; rest=${coordinate#*:}; artifact=${rest%%:*}; version=${rest#*:}
  jar="$HOME/.m2/repository/${group//.//}/$artifact/$version/$artifact-$version.jar"
  if [ -f "$jar" ]; then
    echo "have $coordinate"
    continue
  fi
  echo "fetching $coordinate (and its dependencies) with Maven"
  mvn -q -B dependency:get -Dartifact="$coordinate" -Dtransitive=true
done
