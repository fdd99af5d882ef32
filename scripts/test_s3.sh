#!/usr/bin/env bash
# Opt-in: object-storage staging end to end (executors write to a moto S3 server on loopback,
# spark-avro reads s3a://). Pre-fetches Spark 4.0.1's s3a connector into the local Maven repository
# first: hadoop-aws 3.4.1, its AWS SDK v2 bundle (558 MB, ~90 s here) and wildfly-openssl.
# Non-transitive on purpose: hadoop-aws' full dependency tree is already in pyspark's jars/.
set -euo pipefail
cd "$(dirname "$0")/.."
for coordinate in org.apache.hadoop:hadoop-aws:3.4.1 software.amazon.awssdk:bundle:2.24.6 \
                  org.wildfly.openssl:wildfly-openssl:1.1.3.Final; do
  group=${coordinate%%:*}; rest=${coordinate#*:}; artifact=${rest%%:*}; version=${rest#*:}
  if [ -f "$HOME/.m2/repository/${group//.//}/$artifact/$version/$artifact-$version.jar" ]; then
    echo "have $coordinate"; continue
  fi
  echo "fetching $coordinate with Maven"
  mvn -q -B dependency:get -Dartifact="$coordinate" -Dtransitive=false
done
.venv/bin/python -m pytest tests/integration/test_s3_staging.py -m s3 -q "$@"
