"""spark-submit entry point: Repo361 export pages -> Delta.

    spark-submit --properties-file conf/spark-defaults.conf \
        --py-files dist/repo361_ingest-<version>-py3-none-any.whl \
        jobs/ingest_conversations.py --table ... --watermark-table ... --staging ...

Same flags as ``repo361-ingest run`` (see README); the package does the work.
"""

import sys

from repo361_ingest.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main(sys.argv[1:]))
