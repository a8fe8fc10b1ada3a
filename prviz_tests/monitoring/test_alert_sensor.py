"""The alert sensor on a real instance: once per failure, once on recovery, retries, no secrets."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from prviz.monitoring.config import MonitoringConfig
from prviz.monitoring.resources import AlertLogNotifier, NotifierError, SlackWebhookNotifier
from prviz.monitoring.sensors import ALERT_SENSOR
from prviz_tests.monitoring.fakes import build_world, good_day, run_checks, seed_day, utc
from prviz_tests.monitoring.test_freshness import FRESHNESS, materialize

SECRET_PATH = "/services/T0000/B0000/s3cr3tT0k3n"


@pytest.fixture
def sensor_log(capfd):
    """What sensors write to their Dagster log (the tick's console log, on stderr)."""

    class Output:
        seen = ""

        @property
        def text(self) -> str:
            captured = capfd.readouterr()
            self.seen += captured.out + captured.err
            return self.seen

    return Output()


class Sensor:
    """Ticks the alert sensor like the daemon: same instance, cursor carried between ticks."""

    def __init__(self, world, instance, resources=None):
        self.world, self.instance, self.cursor = world, instance, None
        self.resources = resources or world.monitoring.resources
        self.sensor = world.defs.resolve_sensor_def(ALERT_SENSOR)

    def tick(self) -> str:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.resources,
            definitions=self.world.defs,
        )
        result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result.skip_message


def log_lines(world) -> list[dict]:
    path = world.monitoring.config.alert_log
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]
    except FileNotFoundError:
        return []


def late_yesterday(world, instance):
    for day in range(1, 7):
        materialize(instance, f"2025-01-0{day}")
    with freeze_time(utc(2025, 1, 8, 6, 30)):
        run_checks(world, instance, FRESHNESS)


def test_sensor_is_running_by_default_and_reads_every_monitored_check(world):
    sensor = world.defs.resolve_sensor_def(ALERT_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.required_resource_keys == {"alert_log_notifier"}
    assert len(world.monitoring.monitored_check_keys) == 12


def test_one_alert_per_failure_none_on_the_next_tick_then_one_recovery(world, instance):
    late_yesterday(world, instance)
    sensor = Sensor(world, instance)
    assert sensor.tick() == "2 alert(s) sent"
    lines = log_lines(world)
    assert [(a["kind"], a["asset"], a["day"], a["check"]) for a in lines] == [
        ("failure", "pr_curves", "2025-01-07", "freshness_check"),
        ("failure", "pr_dashboard", "2025-01-07", "freshness_check"),
    ]
    first = lines[0]
    assert first["title"] == "[prviz] ERROR pr_curves 2025-01-07: freshness_check failed"
    assert first["description"].startswith(
        "pr_curves for 2025-01-07 did not exist by its deadline 2025-01-08 06:00 UTC. "
    )
    assert first["link"] == (
        "http://127.0.0.1:3000/assets/pr_curves?view=partitions&partition=2025-01-07"
    )

    assert sensor.tick() == "no check changed state: nothing to send"
    assert len(log_lines(world)) == 2

    materialize(instance, "2025-01-07")  # the fix: yesterday is computed
    with freeze_time(utc(2025, 1, 8, 7, 0)):
        run_checks(world, instance, FRESHNESS)
    assert sensor.tick() == "2 alert(s) sent"
    recoveries = log_lines(world)[2:]
    assert [(a["kind"], a["asset"], a["day"]) for a in recoveries] == [
        ("recovery", "pr_curves", "2025-01-07"),
        ("recovery", "pr_dashboard", "2025-01-07"),
    ]
    assert recoveries[0]["title"].startswith("[prviz] RECOVERED pr_curves 2025-01-07")
    assert sensor.tick() == "no check changed state: nothing to send"


def test_a_late_day_fixed_after_the_next_deadline_still_recovers(world, instance):
    late_yesterday(world, instance)  # 2025-01-07 late
    sensor = Sensor(world, instance)
    sensor.tick()
    materialize(instance, "2025-01-07")  # fixed only on the 9th, when the 8th is due and missing
    with freeze_time(utc(2025, 1, 9, 6, 30)):
        run_checks(world, instance, FRESHNESS)
    assert sensor.tick() == "4 alert(s) sent"
    assert [(a["kind"], a["asset"], a["day"]) for a in log_lines(world)[2:]] == [
        ("failure", "pr_curves", "2025-01-08"),
        ("failure", "pr_dashboard", "2025-01-08"),
        ("recovery", "pr_curves", "2025-01-07"),
        ("recovery", "pr_dashboard", "2025-01-07"),
    ]


def test_quality_check_failures_alert_per_day_with_their_reason(world, instance):
    bad = good_day()
    bad["predictions"].update(
        quarantined_records=500, quarantined_by_reason={"unknown_encoding": 500}
    )
    seed_day(instance, world.figures.lake_uri, "2025-01-04", bad)
    seed_day(instance, world.figures.lake_uri, "2025-01-05")
    for day in ("2025-01-04", "2025-01-05"):
        run_checks(world, instance, ["pr_curves:capture_quarantine_rate"], day)
    sensor = Sensor(world, instance)
    assert sensor.tick() == "1 alert(s) sent"
    [alert] = log_lines(world)
    assert (alert["asset"], alert["check"], alert["day"], alert["severity"]) == (
        "pr_curves", "capture_quarantine_rate", "2025-01-04", "ERROR",
    )  # fmt: skip
    assert "5.00 % of the capture records of 2025-01-04" in alert["description"]
    assert "unknown_encoding 500" in alert["description"]
    assert alert["check_link"].endswith("?view=checks&checkDetail=capture_quarantine_rate")
    # re-evaluating another day, or the same day with the same result, says nothing new
    run_checks(world, instance, ["pr_curves:capture_quarantine_rate"], "2025-01-04")
    run_checks(world, instance, ["pr_curves:capture_quarantine_rate"], "2025-01-05")
    assert sensor.tick() == "no check changed state: nothing to send"


CHANNEL_DOWN = {"value": True}


class FlakyNotifier(AlertLogNotifier):
    """An alert log that is down while CHANNEL_DOWN says so (resources are frozen models)."""

    def send(self, alert):
        if CHANNEL_DOWN["value"]:
            raise NotifierError("the channel is down")
        super().send(alert)


def test_a_failing_channel_is_retried_next_tick_without_repeating_the_others(
    tmp_path, instance, sensor_log
):
    world = build_world(tmp_path)
    late_yesterday(world, instance)
    flaky_log = tmp_path / "flaky.log"
    resources = {
        **world.monitoring.resources,
        "slack_notifier": FlakyNotifier(path=str(flaky_log)),
    }
    sensor = Sensor(world, instance, resources)
    sensor.sensor = _sensor_with(world, ["alert_log_notifier", "slack_notifier"])
    CHANNEL_DOWN["value"] = True
    message = sensor.tick()
    assert message == "2 alert(s) sent; 2 not delivered via slack_notifier (retried next tick)"
    assert (
        "not delivered via slack_notifier, retried next tick: the channel is down"
        in sensor_log.text
    )
    assert len(log_lines(world)) == 2 and not flaky_log.exists()

    assert sensor.tick().startswith("0 alert(s) sent; 2 not delivered")  # still down
    CHANNEL_DOWN["value"] = False
    assert sensor.tick() == "2 alert(s) sent"
    assert len(flaky_log.read_text().splitlines()) == 2
    assert len(log_lines(world)) == 2  # the working channel was not told twice
    assert sensor.tick() == "no check changed state: nothing to send"


def _sensor_with(world, notifier_keys):
    from prviz.monitoring.sensors import build_alert_sensor

    return build_alert_sensor(
        world.monitoring.monitored_check_keys, notifier_keys, world.monitoring.config.ui_base_url
    )


@pytest.fixture
def slack_server():
    received, status = [], {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}", received, status
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_slack_alerts_and_the_webhook_url_stays_secret(
    tmp_path, instance, caplog, sensor_log, slack_server
):
    url, received, status = slack_server
    world = build_world(
        tmp_path,
        MonitoringConfig(alert_log=str(tmp_path / "alerts.log"), alert_channels=("log", "slack")),
    )
    late_yesterday(world, instance)
    resources = {
        **world.monitoring.resources,
        "slack_notifier": SlackWebhookNotifier(webhook_url=url),
    }
    sensor = Sensor(world, instance, resources)
    caplog.set_level(logging.DEBUG)

    status["code"] = 500
    assert "2 not delivered via slack_notifier" in sensor.tick()
    assert "Slack webhook answered HTTP 500" in sensor_log.text
    status["code"] = 200
    assert sensor.tick() == "2 alert(s) sent"
    assert [m["text"].split(":")[0] for m in received[-2:]] == [
        "[prviz] ERROR pr_curves 2025-01-07",
        "[prviz] ERROR pr_dashboard 2025-01-07",
    ]
    assert "alert sent via slack_notifier" in sensor_log.text
    everything = (
        sensor_log.text
        + caplog.text
        + (sensor.cursor or "")
        + (tmp_path / "alerts.log").read_text()
    )
    assert "s3cr3t" not in everything and SECRET_PATH not in everything
