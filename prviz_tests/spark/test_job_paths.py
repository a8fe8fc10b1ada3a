"""Which hour folders the Spark job reads: 00..23 only, as listed by Hadoop's own filesystem."""

import pytest

from prviz.config import JobConfig
from prviz.spark.job import capture_hour_folders, ground_truth_hour_folders


@pytest.mark.spark
def test_only_hours_00_to_23_are_read(spark, tmp_path):
    hours = ["00", "09", "10", "19", "20", "23", "24", "29", "2", "x1"]
    for hour in hours:
        (tmp_path / "capture" / "ep" / "v1" / "2025" / "01" / "02" / hour).mkdir(parents=True)
        (tmp_path / "gt" / "2025" / "01" / "02" / hour).mkdir(parents=True)
    config = JobConfig(
        capture_uri=str(tmp_path / "capture"),
        ground_truth_uri=str(tmp_path / "gt"),
        lake_uri=str(tmp_path / "lake"),
    )
    expected = ["00", "09", "10", "19", "20", "23"]
    capture = capture_hour_folders(spark, config, "2025-01-02")
    assert [p.rsplit("/", 1)[1] for p in capture] == expected
    assert all("/ep/v1/2025/01/02/" in p for p in capture)
    labels = ground_truth_hour_folders(spark, config, "2025-01-02")
    assert [p.rsplit("/", 1)[1] for p in labels] == expected
