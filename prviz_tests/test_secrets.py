"""No credential, token or webhook URL in logs, metadata, alerts, files or the dashboard.

Distinctive secrets are put where prviz meets them in production: the AWS keys and session token
in the standard credential chain (environment), the Slack webhook URL (a token in its path and
in its query) through `dg.EnvVar`, and a wrong S3 secret for an S3 lake on the real test S3
server. Then the paths that write anything run for real: a run of the daily job (local Spark, a
real DagsterInstance on SQLite, tiny demo data) whose checks fail and alert, the alert sensor
delivering to a webhook server on 127.0.0.1 (first refusing with HTTP 500, then taking the
messages), a run on the S3 lake that fails on the wrong secret, the late-label sensor on that
lake, and the configuration errors. Everything they left behind is searched for every secret,
raw and encoded (URL-quoted, JSON/`repr`-escaped, base64 at any alignment): captured stdout and
stderr, Python logging, every event of every run (serialized), runs and snapshots, asset
metadata, the code location as the UI sees it, every file under the home and the Dagster
instance (lake, dashboard, alert log, SQLite databases), the webhook requests' headers and
bodies, sensor results, exceptions and the reprs of settings and resources.

The one place a secret may appear is the request line sent to the webhook server: the tests
check that it does (the secret was really used) and that it appears nowhere else.

Not searched: botocore's and urllib3's own DEBUG logs. At DEBUG, botocore logs the signed
request (its canonical request holds the session token); prviz never enables it (`prviz` holds
those loggers at WARNING, as this test does), and docs/operations.md says not to.
"""

# ruff: noqa: F811
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import secrets
import threading
import traceback
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from prviz.config import ConfigError, Settings
from prviz.definitions import DAILY_JOB, build_definitions
from prviz.demo.generator import DemoSpec, write_demo_data
from prviz.lake.s3 import S3Options
from prviz.lake.store import Lake, LakeError
from prviz.monitoring.alerts import Alert
from prviz.monitoring.config import MonitoringConfig
from prviz.monitoring.resources import NotifierError, SlackWebhookNotifier
from prviz.monitoring.sensors import ALERT_SENSOR, LATE_LABELS_SENSOR

# The session fixture `s3_server` is imported here (tests take it as an argument: F811).
from prviz_tests.s3_server import REGION, S3Server, s3_server  # noqa: F401

DAY = "2025-03-01"
WEBHOOK_PATH = f"/services/T0PRVIZ/B0PRVIZ/prvizHookPath{secrets.token_hex(12)}"
WEBHOOK_QUERY = f"token=prvizHookQuery{secrets.token_hex(12)}&team=ops"
SECRET_ACCESS_KEY = f"prvizSecretKey/{secrets.token_urlsafe(24)}+Zz"
SESSION_TOKEN = f"prvizSessionToken/{secrets.token_urlsafe(32)}=="
WRONG_S3_SECRET = f"prvizWrongS3Secret/{secrets.token_urlsafe(24)}"
ALERT = Alert(
    kind="failure",
    asset="pr_curves",
    check="freshness_check",
    day="2025-01-07",
    severity="ERROR",
    description="pr_curves for 2025-01-07 did not exist by its deadline.",
    link="http://127.0.0.1:3000/assets/pr_curves?view=partitions&partition=2025-01-07",
    check_link="http://127.0.0.1:3000/assets/pr_curves?view=checks&checkDetail=freshness_check",
    evaluated_at="2025-01-08T06:01:00+00:00",
    run_id="run-1",
)


# -- the search ---------------------------------------------------------------------------------
def _base64_cores(secret: str) -> dict[str, str]:
    """What base64 of any text holding `secret` must contain, whatever the secret's offset."""
    cores = {}
    data = secret.encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        core = encoded[4 if shift else 0 : -4]  # drop the groups mixed with other bytes
        cores[f"base64@{shift}"] = core
        cores[f"base64url@{shift}"] = core.replace("+", "-").replace("/", "_")
    return cores


def forms(secret: str) -> dict[str, str]:
    """The secret as it would look raw, URL-quoted, escaped in JSON or repr, base64-encoded."""
    found = {
        "raw": secret,
        "url-quoted": urllib.parse.quote(secret, safe=""),
        "url-quoted-plus": urllib.parse.quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
        "repr": repr(secret)[1:-1],
        **_base64_cores(secret),
    }
    return {name: text for name, text in found.items() if len(text) >= 12}


def secret_values(s3_access_key: str = "") -> dict[str, str]:
    values = {
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "webhook path": WEBHOOK_PATH,
        "webhook token": WEBHOOK_PATH.rsplit("/", 1)[1],
        "webhook query": WEBHOOK_QUERY.split("&")[0],
        "wrong S3 secret": WRONG_S3_SECRET,
    }
    if s3_access_key:
        values["AWS_ACCESS_KEY_ID"] = s3_access_key  # an identifier, but never logged either
    return values


def leaks(surfaces: dict[str, str | bytes], values: dict[str, str]) -> dict[str, list[str]]:
    """{surface: ["<secret> as <form>", …]} for every secret form found in a surface."""
    found: dict[str, list[str]] = {}
    for surface, content in surfaces.items():
        for name, value in values.items():
            for form, text in forms(value).items():
                needle = text.encode() if isinstance(content, bytes) else text
                if needle in content:
                    found.setdefault(surface, []).append(f"{name} as {form}")
    return found


def test_the_search_finds_a_secret_in_every_form() -> None:
    """The search itself: each encoding of a secret, embedded in other text, is found."""
    values = {"token": SESSION_TOKEN}
    payload = f"Bearer {SESSION_TOKEN}".encode()
    surfaces: dict[str, str | bytes] = {
        "raw": f"x {SESSION_TOKEN} y",
        "quoted": "url=" + urllib.parse.quote(SESSION_TOKEN, safe=""),
        "plus": "q=" + urllib.parse.quote_plus(SESSION_TOKEN),
        "json": json.dumps({"t": SESSION_TOKEN}),
        "bytes": b"\x00" + SESSION_TOKEN.encode() + b"\xff",
    }
    for shift in range(3):
        surfaces[f"b64-{shift}"] = base64.b64encode(b"a" * shift + payload).decode()
        surfaces[f"b64url-{shift}"] = base64.urlsafe_b64encode(b"ab" * shift + payload).decode()
    found = leaks(surfaces, values)
    assert set(found) == set(surfaces)
    assert leaks({"clean": "nothing to see " * 20}, values) == {}


# -- a webhook server on loopback that records every request -----------------------------------
@dataclasses.dataclass
class Webhook:
    url: str
    requests: list[dict]
    status: list[int]  # answers, in turn; the last one repeats


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    requests: list[dict] = []
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append({"line": self.requestline, "headers": str(self.headers), "body": body})
            code = status.pop(0) if len(status) > 1 else status[0]
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code == 200 else b"no")

        def log_message(self, *args):  # keep the server quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield Webhook(f"http://127.0.0.1:{port}{WEBHOOK_PATH}?{WEBHOOK_QUERY}", requests, status)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _text(error: BaseException) -> str:
    """Everything an exception shows: its text, repr, traceback, causes and context."""
    return f"{error}\n{error!r}\n" + "".join(traceback.format_exception(error))


# -- the real run, its alerts, a failing S3 run -------------------------------------------------
@pytest.mark.spark
def test_a_run_its_alerts_and_its_failures_leak_no_secret(
    spark,
    s3_server: S3Server,
    webhook: Webhook,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for noisy in ("botocore", "urllib3", "s3transfer", "py4j"):  # as `prviz` sets them
        caplog.set_level(logging.WARNING, logger=noisy)
    home, instance_dir = tmp_path / "home", tmp_path / "dagster"
    instance_dir.mkdir()
    write_demo_data(home, dt.date.fromisoformat(DAY), 1, seed=7, spec=DemoSpec(records_per_day=96))
    # the standard AWS chain: the S3 server's access key with the wrong secret, and a token
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env = {
        "PRVIZ_HOME": str(home),
        "PRVIZ_START_DATE": "2025-01-01",
        "PRVIZ_ALERT_CHANNELS": "log,slack",
        "PRVIZ_SLACK_WEBHOOK_URL": webhook.url,
        # label coverage is below 100 % on the demo data: a failing (WARN) check, an alert
        "PRVIZ_MIN_LABEL_COVERAGE": "1.0",
        "PRVIZ_LABEL_COVERAGE_GRACE_DAYS": "0",
        "PRVIZ_MAX_QUARANTINE_RATE": "0.5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    defs = build_definitions(settings)
    reprs = [repr(settings), repr(settings.job_config()), repr(defs.resources)]

    with dg.instance_for_test(temp_dir=str(instance_dir)) as instance:
        # 1. the daily run: succeeds, its label-coverage and freshness checks fail
        run = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            instance=instance, partition_key=DAY
        )
        assert run.success

        # 2. the alert sensor, as the daemon ticks it: Slack refuses once, then takes them
        sensor = defs.resolve_sensor_def(ALERT_SENSOR)
        notifiers = {key: defs.resources[key] for key in sensor.required_resource_keys}
        webhook.status[:] = [500, 200]
        results, cursor = [], None
        for _ in range(2):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=notifiers, definitions=defs
            )
            result = sensor.evaluate_tick(context)
            cursor = result.cursor
            results.append(f"{result.skip_message}\n{result.cursor}")
        assert "not delivered via slack_notifier" in results[0]
        assert "alert(s) sent" in results[1]
        with dg.build_resources(notifiers) as built:
            reprs += [repr(built.slack_notifier), str(built.slack_notifier)]
            reprs += [repr(built.alert_log_notifier), repr(built)]

        # 3. the same code location on an S3 lake, signing with the wrong secret: it fails
        bucket = s3_server.make_bucket()
        monkeypatch.delenv("AWS_SESSION_TOKEN")  # so the store checks the signature itself
        on_s3 = Settings.from_env(
            {
                **env,
                "PRVIZ_LAKE_URI": f"s3://{bucket}/lake",
                "PRVIZ_GROUND_TRUTH_URI": f"s3://{bucket}/ground-truth",
                "PRVIZ_S3_ENDPOINT_URL": s3_server.endpoint_url,
                "PRVIZ_S3_REGION": REGION,
            }
        )
        s3_defs = build_definitions(on_s3)
        failed = s3_defs.resolve_job_def(DAILY_JOB).execute_in_process(
            instance=instance,
            partition_key=DAY,
            asset_selection=[dg.AssetKey("pr_curves_7d")],  # reads the lake (no retry policy)
            raise_on_error=False,
        )
        assert not failed.success
        failures = [
            event.event_specific_data.error.to_string()
            for event in failed.all_events
            if event.event_type_value == "STEP_FAILURE"
        ]
        # (a HEAD request's 403 has no body: the hint says what it means)
        assert failures and all("access denied: check the AWS credentials" in t for t in failures)
        reprs += [repr(on_s3), repr(on_s3.job_config().lake()), repr(s3_defs.resources)]

        # 4. the late-label sensor lists the S3 ground truth with the same wrong secret
        late = s3_defs.resolve_sensor_def(LATE_LABELS_SENSOR)
        with pytest.raises(Exception) as refused:  # noqa: PT011 - whatever it is, it is read
            late.evaluate_tick(
                dg.build_sensor_context(
                    instance=instance,
                    resources={"pipeline": s3_defs.resources["pipeline"]},
                    definitions=s3_defs,
                )
            )
        errors = [_text(refused.value)]
        assert "SIGNATURE_DOES_NOT_MATCH" in errors[0]

        # everything the instance holds about those runs
        runs = instance.get_runs()
        assert len(runs) == 2
        events, stored, metadata = [], [], []
        for each in runs:
            events += [dg.serialize_value(entry) for entry in instance.all_logs(each.run_id)]
            stored.append(dg.serialize_value(each))
            stored.append(dg.serialize_value(instance.get_job_snapshot(each.job_snapshot_id)))
            stored.append(
                dg.serialize_value(
                    instance.get_execution_plan_snapshot(each.execution_plan_snapshot_id)
                )
            )
        for key in instance.get_asset_keys():
            for record in instance.fetch_materializations(key, limit=1000).records:
                metadata.append(dg.serialize_value(record.asset_materialization.metadata))
            for record in instance.fetch_observations(key, limit=1000).records:
                metadata.append(dg.serialize_value(record.asset_observation.metadata))
        from dagster._core.remote_representation.external_data import RepositorySnap

        # what the UI shows of the code location, resources included (no public helper for it)
        ui = [
            dg.serialize_value(RepositorySnap.from_def(d.get_repository_def()))
            for d in (defs, s3_defs)
        ]

    captured = capfd.readouterr()
    logged = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in caplog.records)
    alert_log = (home / "alerts.log").read_text(encoding="utf-8")
    dashboard = (home / "lake" / "dashboard" / "index.html").read_text(encoding="utf-8")

    # the secrets were really there: the webhook URL was called with its token ...
    assert len(webhook.requests) >= 2
    for request in webhook.requests:
        assert request["line"] == f"POST {WEBHOOK_PATH}?{WEBHOOK_QUERY} HTTP/1.1"
    delivered = [json.loads(r["body"])["text"] for r in webhook.requests]
    assert any("label_coverage failed" in text for text in delivered), delivered
    assert "label_coverage" in alert_log and DAY in dashboard
    # ... and the output is there to be searched
    assert "Finished execution of run" in "".join(events) and "LakeError" in "".join(events)
    assert "Slack webhook answered HTTP 500" in captured.err + logged
    assert "average_precision" in "".join(metadata)
    assert "slack_notifier" in "".join(ui)

    surfaces: dict[str, str | bytes] = {
        "stdout": captured.out,
        "stderr": captured.err,
        "python logging": logged,
        "event log": "\n".join(events),
        "runs and snapshots": "\n".join(stored),
        "asset metadata": "\n".join(metadata),
        "code location (UI)": "\n".join(ui),
        "alert log": alert_log,
        "dashboard": dashboard,
        "webhook headers and bodies": "\n".join(
            f"{r['headers']}\n{r['body'].decode()}" for r in webhook.requests
        ),
        "sensor results": "\n".join(results),
        "exceptions": "\n".join([*errors, *failures]),
        "reprs": "\n".join(reprs),
    }
    for root in (home, instance_dir):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            surfaces[f"file {path.relative_to(tmp_path)}"] = path.read_bytes()
    assert any("lake/pr_summary" in name for name in surfaces)
    assert any(name.endswith(".db") for name in surfaces)  # the instance's SQLite storage
    assert leaks(surfaces, secret_values(s3_server.access_key)) == {}


# -- the S3 lake with a wrong secret --------------------------------------------------------------
def test_an_s3_lake_refusing_a_wrong_secret_never_repeats_it(s3_server: S3Server) -> None:
    """Every way of reaching the lake (boto3 and pyarrow) fails, says why, and holds no key."""
    bucket = s3_server.make_bucket()
    texts, errors = [], []
    for token in (None, SESSION_TOKEN):
        lake = Lake.from_uri(
            f"s3://{bucket}/lake",
            endpoint_url=s3_server.endpoint_url,
            region=REGION,
            access_key=s3_server.access_key,
            secret_key=WRONG_S3_SECRET,
            session_token=token,
        )
        texts += [repr(lake), repr(lake.s3_options), str(lake.s3_options)]
        for method, *args in (
            ("write_bytes", "dashboard/index.html", b"<p>x</p>"),
            ("read_partition", "pr_summary", DAY),
            ("has_partition", "pr_summary", DAY),
            ("list_days", "pr_summary"),
            ("read_dataset", "pr_summary"),
        ):
            with pytest.raises(LakeError) as refused:
                getattr(lake, method)(*args)
            assert str(refused.value).startswith("could not "), refused.value  # says what failed
            errors.append(_text(refused.value))
    joined = "\n".join(texts + errors)
    assert "SignatureDoesNotMatch" in joined or "SIGNATURE_DOES_NOT_MATCH" in joined
    assert "access denied: check the AWS credentials" in joined
    values = {**secret_values(s3_server.access_key), "server secret": s3_server.secret_key}
    values.pop("AWS_ACCESS_KEY_ID")  # S3Options shows the key id (an identifier), not secrets
    assert leaks({"lake errors and reprs": joined}, values) == {}
    assert WRONG_S3_SECRET not in repr(S3Options(None, None, "AKIAX", WRONG_S3_SECRET))


# -- configuration errors -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PRVIZ_LAKE_URI", f"s3://AKIAPRVIZ:{WRONG_S3_SECRET}@bucket/lake"),
        ("PRVIZ_CAPTURE_URI", f"s3://{WRONG_S3_SECRET}@bucket/capture"),
        ("PRVIZ_GROUND_TRUTH_URI", f"s3a://key:{WRONG_S3_SECRET}@bucket/gt"),
        ("PRVIZ_S3_ENDPOINT_URL", f"https://key:{WRONG_S3_SECRET}@minio.example.com"),
        ("PRVIZ_S3_ENDPOINT_URL", f"key:{WRONG_S3_SECRET}@minio.example.com:9000"),
        ("PRVIZ_S3_ENDPOINT_URL", f"http://key:{WRONG_S3_SECRET}@127.0.0.1:8333/path?x=1"),
        ("PRVIZ_UI_BASE_URL", f"https://admin:{WRONG_S3_SECRET}@dagster.example.com"),
        ("PRVIZ_UI_BASE_URL", f"htps://admin:{WRONG_S3_SECRET}@dagster.example.com"),
    ],
    ids=lambda value: value if str(value).startswith("PRVIZ_") else "",  # no secret in test ids
)
def test_a_setting_holding_credentials_is_refused_without_repeating_them(
    variable: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(ConfigError, match=f"{variable} contains credentials") as refused:
        Settings.from_env({variable: value})
    assert leaks({"error": _text(refused.value)}, secret_values()) == {}
    # the command line prints the error and nothing else
    from prviz.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, value)
        assert main(["summary", "--start", DAY, "--end", DAY]) != 0
    captured = capsys.readouterr()
    assert f"{variable} contains credentials" in captured.err
    assert leaks({"cli": captured.out + captured.err}, secret_values()) == {}


def test_urls_without_credentials_are_taken(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "PRVIZ_LAKE_URI": str(tmp_path / "me@example" / "lake"),  # a folder may hold '@'
            "PRVIZ_S3_ENDPOINT_URL": "http://127.0.0.1:8333",
            "PRVIZ_UI_BASE_URL": "https://dagster.example.com/prviz?team=a@b",
        }
    )
    assert settings.lake_uri.endswith("me@example/lake")
    assert MonitoringConfig.from_settings(settings).ui_base_url.startswith("https://dagster")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"http://hooks.example.com{WEBHOOK_PATH}?{WEBHOOK_QUERY}", "must be an https:// URL"),
        (f"hooks.slack.com{WEBHOOK_PATH}", "must be an https:// URL"),
        (f"https://hooks.slack.com{WEBHOOK_PATH}\n", "a space or a control character"),
        (f"https://hooks.slack.com{WEBHOOK_PATH} ", "a space or a control character"),
        (f"https://hooks.slack.com{WEBHOOK_PATH[:20]} {WEBHOOK_PATH[20:]}", "a space or a"),
        (f"https://hooks.slack.com:port{WEBHOOK_PATH}?{WEBHOOK_QUERY}", "request failed"),
        (f"http://127.0.0.1:99999{WEBHOOK_PATH}?{WEBHOOK_QUERY}", "unreachable"),
        (f"http://[::1{WEBHOOK_PATH}", "is not a valid URL"),
        (f"http://127.0.0.1:9{WEBHOOK_PATH}?{WEBHOOK_QUERY}", "unreachable"),
    ],
    ids=lambda value: "" if WEBHOOK_PATH[:20] in str(value) else str(value),  # no secret in ids
)
def test_a_malformed_webhook_url_is_never_repeated(url: str, message: str) -> None:
    """A webhook URL that cannot be used fails with a NotifierError that holds no part of it
    (not even a `repr`-escaped one) and no chained exception that would."""
    notifier = SlackWebhookNotifier(webhook_url=url, timeout_seconds=5)
    with pytest.raises(NotifierError, match=message) as refused:
        notifier.send(ALERT)
    error = refused.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    surfaces = {"error": _text(refused.value), "repr": repr(notifier) + str(notifier)}
    assert leaks(surfaces, secret_values()) == {}


def test_the_webhook_url_stays_an_environment_variable_in_the_definitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The code location holds the variable's name, not its value: resolved only when used."""
    url = f"https://hooks.slack.com{WEBHOOK_PATH}?{WEBHOOK_QUERY}"
    monkeypatch.setenv("PRVIZ_SLACK_WEBHOOK_URL", url)
    defs = build_definitions(dataclasses.replace(Settings(), alert_channels=("log", "slack")))
    notifier = defs.resources["slack_notifier"]
    assert isinstance(notifier.webhook_url, dg.EnvVar)
    assert notifier.webhook_url == "PRVIZ_SLACK_WEBHOOK_URL"  # the name, not the URL
    with dg.build_resources({"slack_notifier": notifier}) as built:
        assert built.slack_notifier.webhook_url == url  # resolved from the environment
        assert leaks({"built": repr(built.slack_notifier)}, secret_values()) == {}
    assert leaks({"definitions": repr(defs.resources)}, secret_values()) == {}
