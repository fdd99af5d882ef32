# The README's commands. `make demo` and `make test` set everything up first.
.PHONY: setup demo test test-unit test-fast bench lint clean test-spark35 test-s3

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/repo361-ingest demo

test: setup
	bash scripts/test.sh

test-spark35:
	bash scripts/test_spark35.sh

test-s3: setup
	bash scripts/test_s3.sh

test-unit: setup
	.venv/bin/python -m pytest -m "not spark" -q

bench: setup
	.venv/bin/repo361-ingest bench $(BENCH_ARGS)

lint: setup
	.venv/bin/python -m mypy

clean:
	rm -rf out demo-output bench-results .pytest_cache build dist lib/*.egg-info spark-warehouse metastore_db derby.log
