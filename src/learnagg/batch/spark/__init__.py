"""The spark engine of the batch jobs (docs/spark.md): archival and both exhaust reports as Spark jobs whose outputs are
byte-identical to the in-process engine's."""
