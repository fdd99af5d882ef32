"""spark-submit entry point: Repo361 export pages -> Delta.

    spark-submit --properties-file conf/spark-defaults.conf \
        --py-files dist/repo361_ingest.zip \
        jobs/ingest_conversations.py --table ... --watermark-table ... --staging ...

Same flags as ``repo361-ingest run`` (see README); the package does the work.
``dist/repo361_ingest.zip`` is the built wheel under a ``.zip`` name: Spark puts only .zip/.egg/.jar
py-files on the executors' sys.path (README "Clusters and spark-submit").
"""

import sys

from repo361_ingest.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main(sys.argv[1:]))
