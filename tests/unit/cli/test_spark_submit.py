"""`flashsale pipeline spark-submit`: the command for the user's cluster, its packages
coherent with the pinned `spark` extra, and no secret in anything it prints."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from consumers import spark_job
from producer.cli import main
from tests.unit.cli.test_config_secrets import PORT, assert_no_secret, flashsale, sources

ROOT = Path(__file__).resolve().parents[3]


def pins() -> dict[str, Requirement]:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {r.name: r for r in map(Requirement, extra["spark"])}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["pipeline", "spark-submit", *args], env={})
    return result.exit_code, result.stdout, result.stderr


def test_the_default_command_names_the_pinned_spark_line_and_its_packages() -> None:
    code, out, err = run(
        "--warehouse", "s3://lake/flash/", "--bootstrap-servers", "b1:9092,b2:9092",
        "--schema-registry-url", "https://sr.example:8081", "--currency", "USD",
        "--currency", "EUR",
    )  # fmt: skip
    assert (code, err) == (0, "")
    spark_version = spark_job.DEFAULT_SPARK
    pinned = pins()
    # The packages are built for a Spark the pinned pyspark is, with the delta-spark the
    # pinned delta-spark is (whose own wheel pins pyspark to the same line).
    assert pinned["pyspark"].specifier.contains(spark_version)
    scala, delta = spark_job.SPARK_LINES[spark_version.rsplit(".", 1)[0]]
    assert pinned["delta-spark"].specifier.contains(delta)
    assert (scala, delta) == ("2.12", "3.3.2")
    assert out == (
        "spark-submit \\\n"
        "    --packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.3,"
        "org.apache.spark:spark-avro_2.12:3.5.3,io.delta:delta-spark_2.12:3.3.2 \\\n"
        "    --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\\n"
        "    --conf spark.sql.catalog.spark_catalog="
        "org.apache.spark.sql.delta.catalog.DeltaCatalog \\\n"
        "    --conf spark.sql.session.timeZone=UTC \\\n"
        f"    --files {spark_job.READER},{','.join(map(str, spark_job.gold_sql_files()))} \\\n"
        f"    {Path(spark_job.__file__)} \\\n"
        "    --bootstrap-servers b1:9092,b2:9092 \\\n"
        "    --schema-registry-url https://sr.example:8081 \\\n"
        "    --topic flash_sale_events \\\n"
        "    --reader-schema silver.avsc \\\n"
        "    --currency USD \\\n"
        "    --currency EUR \\\n"
        "    --warehouse s3://lake/flash \\\n"
        "    --checkpoints s3://lake/flash/_checkpoints\n"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.4.4", "spark-sql-kafka-0-10_2.12:3.4.4,org.apache.spark:spark-avro_2.12:3.4.4,"
         "io.delta:delta-spark_2.12:2.4.0"),
        ("4.0.1", "spark-sql-kafka-0-10_2.13:4.0.1,org.apache.spark:spark-avro_2.13:4.0.1,"
         "io.delta:delta-spark_2.13:4.0.1"),
    ],
)  # fmt: skip
def test_the_packages_follow_the_users_spark_version(version: str, expected: str) -> None:
    code, out, _ = run("--spark-version", version)
    assert code == 0
    assert f"--packages org.apache.spark:{expected} \\\n" in out


@pytest.mark.parametrize("version", ["2.4.8", "3.5", "4.9.0", "three"])
def test_a_spark_the_job_is_not_packaged_for_is_refused_in_one_line(version: str) -> None:
    code, out, err = run("--spark-version", version)
    assert (code, out) == (2, "")
    assert (
        f"Error: Invalid value for '--spark-version': Spark {version} is not one the job is "
        "packaged for (3.4.x, 3.5.x, 4.0.x)"
    ) in err


@pytest.mark.parametrize("source", ["file", "env", "flags"])
def test_secrets_never_show_and_the_job_is_told_where_to_find_them(
    tmp_path: Path, source: str
) -> None:
    args, env = sources(tmp_path, ("pipeline",))[source]
    output = flashsale(tmp_path, "pipeline", "spark-submit", *args, env=env)
    assert output.startswith("0\n"), output
    assert_no_secret(output)
    out, err = output.split("\n", 1)[1].split("\n--stderr--\n")
    assert f"    --schema-registry-url http://127.0.0.1:{PORT} \\\n" in out  # no user info
    if source != "flags":  # SASL over the file's JAAS config or the environment
        assert "    --kafka-option security.protocol=SASL_PLAINTEXT \\\n" in out
        assert "    --kafka-option sasl.mechanism=PLAIN \\\n" in out
        assert (
            "the job reads FLASHSALE_SASL_PASSWORD, FLASHSALE_SASL_USERNAME, "
            "FLASHSALE_SCHEMA_REGISTRY_USER_INFO from its environment: set them where the "
            "driver runs\n"
        ) in err
    else:
        assert "the job reads FLASHSALE_SCHEMA_REGISTRY_USER_INFO from its environment" in err
    if source == "file":  # a key the job does not take is named, never its value
        assert "not handed to the job: ssl.key.password" in err


def test_the_job_takes_the_arguments_the_command_gives_it() -> None:
    submit = spark_job.submit_command(
        spark_version="3.5.3",
        kafka={"bootstrap.servers": "b:9092", "security.protocol": "SSL", "ssl.ca.location": "/ca"},
        registry={"url": "https://sr"},
        topic="t",
        reader_schema=spark_job.READER,
        warehouse="/w",
        checkpoints="/c",
        currencies=("EUR",),
    )
    job = submit.argv.index(str(Path(spark_job.__file__)))
    args = spark_job.arguments(submit.argv[job + 1 :])
    assert vars(args) == {
        "bootstrap_servers": "b:9092",
        "schema_registry_url": "https://sr",
        "topic": "t",
        "reader_schema": "silver.avsc",
        "currencies": ["EUR"],
        "kafka_option": [
            "security.protocol=SSL",
            "ssl.truststore.location=/ca",
            "ssl.truststore.type=PEM",
        ],
        "warehouse": "/w",
        "checkpoints": "/c",
        "topic_epoch": None,  # the epoch Bronze is in, unless given
    }
    assert (submit.environment, submit.left_out) == ([], {})
    given = spark_job.arguments([*submit.argv[job + 1 :], "--topic-epoch", "2"])
    assert given.topic_epoch == 2
