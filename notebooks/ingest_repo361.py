# Databricks notebook source
# MAGIC %md
# MAGIC # Repo361 export -> Delta
# MAGIC
# MAGIC Ingests every new page of the Repo361 raw-data export into the target Delta table and records
# MAGIC the position in the watermark table (the next run resumes there). Credentials come from the
# MAGIC secret scope named below; nothing secret is typed into this notebook.
# MAGIC
# MAGIC Needs Databricks Runtime 17.3 LTS or later (Spark 4.0: spark-avro and Delta are built in), or
# MAGIC serverless. The job in `databricks.yml` runs the same code from the wheel without this notebook.

# COMMAND ----------

# MAGIC %pip install --no-deps "fastavro>=1.9,<2" "tenacity>=8.2,<10" /Volumes/main/repo361/artifacts/repo361_ingest-0.1.0-py3-none-any.whl
# MAGIC # --no-deps: the runtime provides pyspark, delta-spark, requests, pyarrow, pandas, pydantic and
# MAGIC # PyYAML; installing the wheel's pinned pyspark over the runtime's would break the cluster.
# MAGIC # Build and upload the wheel with `databricks bundle deploy` or `pip wheel --no-deps -w dist .`.

# COMMAND ----------

from repo361_ingest.databricks import conversations_per_day, declare_widgets, run_from_widgets

declare_widgets(dbutils)  # noqa: F821 - dbutils, spark and display are notebook globals

# COMMAND ----------

summary = run_from_widgets(spark, dbutils)  # noqa: F821
display(spark.createDataFrame([{k: str(v) for k, v in summary.items()}]))  # noqa: F821

# COMMAND ----------

# MAGIC %md Ingested conversations per day and media type (the whole target table).

# COMMAND ----------

per_day = conversations_per_day(spark, dbutils.widgets.get("table"))  # noqa: F821
display(per_day)  # noqa: F821
per_day.toPandas().pivot_table(
    index="day", columns="media_type", values="conversations", aggfunc="sum", fill_value=0
).plot.bar(stacked=True, figsize=(10, 4), title="Conversations per day by media type")
