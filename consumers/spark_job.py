"""The same Bronze -> Silver -> Gold layers as a Spark Structured Streaming job.

It is kept small and documented: this machine cannot fetch Spark's connector jars,
so the job is not run here; its Gold SQL is the same files (``gold_sql/``) that the
embedded engines run and that the tests verify.

Run it with the Kafka, Avro and Delta packages matching your Spark (3.5 shown)::

    spark-submit \\
      --packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.3,\\
    org.apache.spark:spark-avro_2.12:3.5.3,io.delta:delta-spark_2.12:3.2.1 \\
      --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\
      --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \\
      consumers/spark_job.py --bootstrap-servers localhost:9092 \\
      --schema-registry-url http://localhost:8081 --topic flash_sale_events \\
      --warehouse /data/warehouse --checkpoints /data/checkpoints

* Bronze: the Kafka source as it is (topic, partition, offset, key, value, the schema
  id from the wire header, Kafka timestamp), appended to Delta with a checkpoint, so
  each micro-batch is written exactly once.
* Silver: ``foreachBatch`` over Bronze's stream: the Confluent header (magic byte and
  4-byte id) is stripped, each writer schema id's records are decoded with
  ``from_avro(body, writer_schema, {"avroSchema": reader_schema})`` (Avro schema
  resolution to the reader), deduplicated on ``event_id`` and MERGEd into Delta; the
  batch id is the Delta transaction version (``txnAppId``/``txnVersion``), so a
  replayed batch is skipped.
* Gold: each ``gold_sql/*.sql`` over the Silver table, written as Delta tables.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
READER = (HERE / "contracts" / "silver.avsc").read_text(encoding="utf-8")


def writer_schema(registry_url: str, schema_id: int) -> str:
    with urllib.request.urlopen(f"{registry_url}/schemas/ids/{schema_id}", timeout=10) as r:
        return str(json.loads(r.read())["schema"])


def main() -> None:  # pragma: no cover - needs Spark and its connector jars
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--schema-registry-url", required=True)
    parser.add_argument("--topic", default="flash_sale_events")
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--checkpoints", required=True)
    args = parser.parse_args()
    spark = SparkSession.builder.appName("flashsale-pipeline").getOrCreate()
    bronze_path, silver_path = f"{args.warehouse}/bronze/events", f"{args.warehouse}/silver/events"

    bronze = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap_servers)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(
            "topic",
            "partition",
            "offset",
            "key",
            "value",
            F.conv(F.hex(F.substring("value", 2, 4)), 16, 10).cast("int").alias("schema_id"),
            F.col("timestamp").alias("kafka_timestamp"),
            F.current_timestamp().alias("ingest_time"),
            F.current_date().cast("string").alias("ingest_date"),
        )
    )
    (
        bronze.writeStream.format("delta")
        .partitionBy("ingest_date")
        .option("checkpointLocation", f"{args.checkpoints}/bronze")
        .start(bronze_path)
    )

    def to_silver(batch: Any, batch_id: int) -> None:
        framed = batch.filter(F.substring("value", 1, 1) == F.lit(b"\x00"))
        decoded = None
        for (schema_id,) in framed.select("schema_id").distinct().collect():
            part = framed.filter(F.col("schema_id") == schema_id).select(
                from_avro(
                    F.expr("substring(value, 6, length(value) - 5)"),
                    writer_schema(args.schema_registry_url, schema_id),
                    {"avroSchema": READER, "mode": "PERMISSIVE"},
                ).alias("e"),
                F.col("partition").alias("kafka_partition"),
                F.col("offset").alias("kafka_offset"),
                F.col("schema_id").alias("writer_schema_id"),
            )
            decoded = part if decoded is None else decoded.unionByName(part)
        if decoded is None:
            return
        rows = (
            decoded.select("e.*", "kafka_partition", "kafka_offset", "writer_schema_id")
            .withColumnRenamed("timestamp", "event_time")
            .dropDuplicates(["event_id"])
        )
        rows.createOrReplaceTempView("incoming")
        if spark.catalog.tableExists(f"delta.`{silver_path}`"):
            spark.sql(
                f"MERGE INTO delta.`{silver_path}` t USING incoming s "
                "ON t.event_id = s.event_id WHEN NOT MATCHED THEN INSERT *"
            )
        else:
            (
                rows.write.format("delta")
                .option("txnAppId", "flashsale-silver")
                .option("txnVersion", batch_id)
                .mode("append")
                .save(silver_path)
            )
        spark.read.format("delta").load(silver_path).createOrReplaceTempView("silver_events")
        # The product dimension: written by the embedded pipeline from the products topic
        # (this job does not read that topic yet); Gold joins it for categories and brands.
        spark.read.format("delta").load(
            f"{args.warehouse}/silver/products"
        ).createOrReplaceTempView("silver_products")
        for sql in sorted((HERE / "gold_sql").glob("*.sql")):
            spark.sql(sql.read_text()).write.format("delta").mode("overwrite").option(
                "overwriteSchema", "true"
            ).save(f"{args.warehouse}/gold/{sql.stem}")

    (
        spark.readStream.format("delta")
        .load(bronze_path)
        .writeStream.foreachBatch(to_silver)
        .option("checkpointLocation", f"{args.checkpoints}/silver")
        .start()
        .awaitTermination()
    )


if __name__ == "__main__":
    main()
