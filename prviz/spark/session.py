"""The local Spark session (the embedded default) and the Java check that precedes it.

One session serves a whole process: `local_session()` uses `getOrCreate`, so a test run, a
`prviz backfill` or a Dagster run process starts the JVM once (~8-10 s on a 2-core machine).
"""

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

MIN_JAVA = 17

LOCAL_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    # a day is small locally; the default 200 shuffle partitions are pure overhead on 2 cores
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
}


class JavaMissingError(RuntimeError):
    """Spark needs Java 17 or newer and none was found."""


def java_version() -> int:
    """The major version of the `java` Spark will use; JavaMissingError with a fix otherwise."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise JavaMissingError(
            "Java was not found. prviz runs Spark locally, which needs Java 17 or newer: "
            "install it (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) or set "
            "JAVA_HOME, then try again."
        )
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise JavaMissingError(f"`{java} -version` failed: {error}") from error
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise JavaMissingError(f"could not read the Java version from `{java} -version`")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise JavaMissingError(
            f"Java {major} was found at {java}, but Spark needs Java {MIN_JAVA} or newer: "
            "install openjdk-17 (or newer) and point JAVA_HOME at it."
        )
    return major


def local_session(app_name: str = "prviz", master: str = "local[*]"):
    """The process's local SparkSession (created on first use, with prviz's settings)."""
    java_version()
    log_config = Path(__file__).with_name("log4j2.properties")
    conf = {
        **LOCAL_SPARK_CONF,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{log_config}",
    }
    with warnings.catch_warnings():
        # pyspark 4.x warns that it is not tested with pandas 3 (we use Arrow, tested here):
        # keep it out of users' terminals
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.master(master).appName(app_name)
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
